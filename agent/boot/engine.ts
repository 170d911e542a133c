import type { Config } from '../config.js';
import { delay } from '../metadata/deadline.js';
import type { PlatformName } from '../metadata/platforms/names.js';
import type { Console } from '../os/console.js';
import { errorMessage } from '../os/errors.js';
import { cloudInitState, kernelCommandLine } from '../os/boot-environment.js';
import { localIdentity, type LocalIdentity } from '../os/identity.js';
import type { RootTree } from '../os/root.js';
import { notifyExtendTimeout, notifyStatus, notifySystemd } from '../os/systemd-notify.js';
import { VERSION } from '../version.js';
import { LATE_TASKS, LOCAL_TASKS, NETWORK_TASKS } from './phases.js';
import { TaskRecorder, type BootReport, type MetadataReport, type TaskReport } from './report.js';
import { freshState, loadState, matchState, saveState, type InstanceState, type StateMatch } from './state.js';
import type { Task, TaskContext } from './task.js';

export interface BootOptions {
  root: RootTree;
  config: Config;
  dryRun: boolean;
  instanceId?: string;
  /** The metadata endpoint was named explicitly (so an offline tree may use it). */
  explicitMetadataUrl?: boolean;
  /** --platform: the platform is named, not detected. */
  platform?: PlatformName;
  /** --wireserver-url (Azure's ready report). */
  wireserverUrl?: string;
  out: Console;
}

interface Run {
  opts: BootOptions;
  ctx: TaskContext;
  state: InstanceState;
  report: BootReport;
  /** State is remembered only when the instance has an identity to key it by. */
  persist: boolean;
  /** The state write in progress (writes are serialized). */
  saving: Promise<void>;
  /** Background tasks still running (awaited before the boot ends). */
  background: Promise<void>[];
  /** Metadata asked for at process start, in parallel with the local phase. */
  early?: Promise<Resolution>;
}

/** Runs one task and returns its report; failures are reported, never thrown. */
async function runTask(run: Run, task: Task, before: TaskReport[]): Promise<TaskReport> {
  const { opts, ctx } = run;
  const rec = new TaskRecorder(task.name, task.phase, opts.out);
  const started = performance.now();
  const disabled = task.disabledBecause(opts.config);
  const failedNeed = before.find((r) => task.needs?.includes(r.task) && r.status === 'failed');
  try {
    if (failedNeed) {
      rec.report.status = 'skipped';
      rec.action(`skipped: ${failedNeed.task} failed`);
    } else if (disabled) {
      rec.report.status = 'skipped';
      rec.verbose(`skipped: ${disabled}`);
    } else if (!task.everyBoot && run.state.completed[task.name]) {
      rec.report.status = 'unchanged';
      rec.action(`already done for this instance (${run.state.completed[task.name]})`);
    } else if (opts.dryRun) {
      rec.report.status = 'planned';
      for (const line of await task.plan(ctx)) rec.action(line);
    } else {
      const outcome = await task.run(ctx, rec);
      rec.report.status = outcome === 'skipped' ? 'skipped' : 'done';
      if (!task.everyBoot) {
        run.state.completed[task.name] = new Date().toISOString();
        if (run.persist) await remember(run);
      }
    }
  } catch (err) {
    rec.report.status = 'failed';
    rec.report.error = errorMessage(err);
    opts.out.error(task.name, rec.report.error);
  }
  rec.report.durationMs = Math.round(performance.now() - started);
  return rec.report;
}

/** State writes one at a time, each with everything completed so far. */
function remember(run: Run): Promise<void> {
  run.saving = run.saving.catch(() => undefined).then(() => saveState(run.opts.root, run.state));
  return run.saving;
}

/**
 * Runs a phase's tasks, each as soon as the tasks it comes after have finished (whatever their
 * outcome: a task that needs another's result checks it itself). Independent work overlaps:
 * the account tasks run while ssh-keygen searches for RSA primes.
 */
async function runTasks(run: Run, tasks: readonly Task[]): Promise<void> {
  const running = new Map<string, Promise<TaskReport>>();
  for (const task of tasks) {
    const before = task.after.map((name) => running.get(name)).filter((p): p is Promise<TaskReport> => p !== undefined);
    running.set(task.name, Promise.all(before).then((reports) => runTask(run, task, reports)));
  }
  const record = (report: TaskReport): void => {
    const earlier = run.report.tasks.findIndex((t) => t.task === report.task);
    if (earlier === -1) run.report.tasks.push(report);
    else run.report.tasks[earlier] = report; // redone for a newly discovered instance
  };
  for (const task of tasks) {
    const report = running.get(task.name) as Promise<TaskReport>;
    if (task.background) run.background.push(report.then(record));
    else record(await report);
  }
}

/** Asks the metadata sources who this instance is, then runs the network tasks. */
type Resolution = Awaited<ReturnType<typeof import('../metadata/platforms/resolve-platform.js').resolvePlatform>>;

function networkTasksWanted(opts: BootOptions): Task[] {
  return NETWORK_TASKS.filter((t) => t.disabledBecause(opts.config) === null);
}

/** Starts asking the metadata sources; the promise never rejects unobserved. */
function startResolution(opts: BootOptions): Promise<Resolution> {
  const asked = (async () => {
    // Loaded on demand: the HTTP stack is most of the bundle's start-up cost.
    const { resolvePlatform } = await import('../metadata/platforms/resolve-platform.js');
    let lastSaid = 0;
    return resolvePlatform({
      root: opts.root, config: opts.config.metadata, explicitUrl: opts.explicitMetadataUrl ?? false,
      ...(opts.platform ? { platform: opts.platform } : {}), ...(opts.wireserverUrl ? { wireserverUrl: opts.wireserverUrl } : {}),
      productCodes: opts.config.productCodes.expected.length > 0,
      note: (line) => opts.out.info('metadata', line),
      hooks: {
        log: (line) => opts.out.detail('metadata', line),
        waiting: (why, deadline) => {
          void notifyExtendTimeout(Math.min(deadline.remaining(), 10_000) + 5_000, why);
          // On the console too, at most every 5 s: a silent wait looks like a hang.
          if (performance.now() - lastSaid > 5_000) {
            lastSaid = performance.now();
            opts.out.info('metadata', `${why}; ${Math.ceil(deadline.remaining() / 1000)} s left`);
          }
        },
      },
    });
  })();
  asked.catch(() => undefined);
  return asked;
}

/**
 * On a boot whose local hint matches the state, the instance may still be a clone that kept
 * its machine-id (or a container sharing the host's DMI UUID). Before sshd is let start, ask
 * the metadata service who this is — for a bounded time, so a slow service does not hold sshd
 * back on an ordinary reboot.
 */
async function confirmInstance(run: Run, match: StateMatch, hint: LocalIdentity): Promise<void> {
  const { opts } = run;
  if (run.state.instanceId === null) return;
  const known = run.state.instanceId;
  let answer: string | null | undefined;
  const budget = Math.min(CONFIRM_BUDGET_MS, opts.config.metadata.deadlineMs);
  if (run.early) {
    answer = await Promise.race([run.early.then((r) => r.metadata?.instanceId ?? null, () => null), delay(budget, { unref: true }).then(() => undefined)]);
  } else if (match === 'same-hint') {
    return;
  }
  if (match === 'ask-metadata') {
    // The local hint is missing or changed: the instance-id alone says whether this is the
    // instance the state was kept for; without an answer, the safe guess is a new one.
    if (answer === known) {
      opts.out.info('instance', `metadata confirms ${known}: same instance, already provisioned`);
      run.state.hint = { id: hint.id, source: hint.source };
      run.persist = true;
      await remember(run);
      return;
    }
    const why = typeof answer === 'string' ? `metadata says ${answer}, the state was for ${known}: new instance` : `the metadata service did not confirm ${known}${answer === undefined && !opts.dryRun ? ` within ${budget / 1000} s` : ''}`;
    opts.out.info('instance', `${why}; doing the local work again`);
    run.state = freshState({ id: hint.id, source: hint.source });
    if (typeof answer === 'string') run.state.instanceId = answer;
    run.persist = hint.source !== 'none';
    return;
  }
  if (answer === undefined) {
    opts.out.warn('instance', `the metadata service has not confirmed the instance within ${budget / 1000} s; going on as ${known}`);
  } else if (answer !== null && answer !== known) {
    opts.out.info('instance', `metadata says ${answer}, the state was for ${known}: new instance, doing the local work again before sshd starts`);
    run.state = freshState(run.state.hint);
    run.state.instanceId = answer;
  }
}

const CONFIRM_BUDGET_MS = 5_000;

/**
 * Runs from process start, beside the local phase: the metadata is asked for (and the HTTP stack
 * loaded) while ssh-keygen works. Its tasks wait for the local phase's own tasks (`local`): they
 * need the key's user (default-user) and the account files left alone by passwords, and they ask
 * sshd where that user's keys go, which the sshd-config task may change. That is the moment
 * READY is sent, so the launch key lands right with it, not after another round trip.
 */
async function networkPhase(run: Run, local: Promise<void>): Promise<void> {
  const { opts, ctx, report } = run;
  const wanted = networkTasksWanted(opts);
  if (wanted.length === 0 || opts.dryRun) {
    await local;
    if (opts.dryRun && wanted.length > 0) opts.out.info('metadata', `would ask: ${opts.config.metadata.sources.join(', ')}`);
    await runTasks(run, NETWORK_TASKS);
    return;
  }
  const meta: MetadataReport = { source: null, instanceId: null, protocol: null, rejected: [], error: null, platform: null };
  report.metadata = meta;
  let resolved: Resolution;
  try {
    resolved = await (run.early ?? startResolution(opts));
  } catch (err) {
    await local;
    meta.error = errorMessage(err);
    if (wanted.every((t) => run.state.completed[t.name])) {
      // A reboot of a provisioned instance: its keys are in place; an unreachable service is
      // worth a warning, not a failed boot.
      opts.out.warn('metadata', `${meta.error}; this instance was provisioned before, keeping what is in place`);
      await runTasks(run, NETWORK_TASKS);
      return;
    }
    opts.out.error('metadata', meta.error);
    for (const task of wanted) {
      const outcome = task.ifMetadata ? { status: 'skipped' as const, actions: ['no metadata: nothing from the platform to apply'] } : { status: 'failed' as const, actions: [], error: 'no metadata' };
      report.tasks.push({ task: task.name, phase: 'network', warnings: [], durationMs: 0, details: {}, ...outcome });
    }
    return;
  }
  try {
    await local;
    const md = resolved.metadata;
    if (!md) {
      opts.out.info('metadata', `${resolved.platform ? `${resolved.platform} gave no metadata` : `no source answered (${opts.config.metadata.sources.join(', ')})`}; network tasks skipped`);
      for (const task of NETWORK_TASKS) report.tasks.push({ task: task.name, phase: 'network', status: 'skipped', actions: [], warnings: [], durationMs: 0, details: {} });
      return;
    }
    Object.assign(meta, { source: md.source, instanceId: md.instanceId, protocol: resolved.protocol ?? null, rejected: md.rejected, platform: { name: resolved.platform, why: resolved.why } });
    opts.out.info('metadata', `${md.source}${resolved.protocol ? ` (${resolved.protocol})` : ''}: instance ${md.instanceId}, ${md.keys.length} key(s)${md.productCodes ? `, product codes ${md.productCodes.join(',') || 'none'}` : ''}`);
    for (const r of md.rejected) opts.out.warn('metadata', `rejected ${r}`);
    ctx.facts.metadata = md;
    const known = run.state.instanceId;
    if (known !== null && known !== md.instanceId) {
      // Same local hint, other instance (a clone that kept its machine-id, containers sharing
      // a DMI UUID): everything done for the old instance is done again for this one.
      opts.out.info('instance', `metadata says ${md.instanceId}, the state was for ${known}: new instance, doing the local work again`);
      run.state = freshState(run.state.hint);
      run.state.instanceId = md.instanceId;
      await runTasks(run, LOCAL_TASKS);
    }
    run.state.instanceId = md.instanceId;
    report.instance.id = md.instanceId;
    if (!run.persist) {
      // No usable local hint: the instance-id alone keys the state, local work included.
      run.persist = true;
      await remember(run);
    }
    await runTasks(run, NETWORK_TASKS);
  } finally {
    await resolved.close();
  }
}

/** Why imprint must not act on this boot, or null. Said on the console; the boot exits 0. */
async function standAsideReason(opts: BootOptions): Promise<string | null> {
  const cmdline = await kernelCommandLine(opts.root);
  if (cmdline.includes('imprint=disabled')) return 'imprint=disabled is on the kernel command line: nothing done';
  const cloudInit = await cloudInitState(opts.root, cmdline);
  if (cloudInit.willRun && opts.config.coexist === 'stand-aside') {
    return `${cloudInit.why}: it provisions this instance, so imprint stands aside (coexist: take-over in /etc/imprint/imprint.yaml makes imprint do it)`;
  }
  if (cloudInit.willRun) opts.out.warn('boot', `${cloudInit.why}; coexist: take-over, so imprint provisions anyway`);
  return null;
}

export async function runBoot(opts: BootOptions): Promise<BootReport> {
  const { root, config, out } = opts;
  const aside = await standAsideReason(opts);
  if (aside) {
    out.info('boot', aside);
    if (!opts.dryRun) void notifySystemd({ READY: '1', STATUS: aside });
    return {
      command: 'boot', version: VERSION, root: root.dir, dryRun: opts.dryRun, instance: { id: '', source: 'none', previous: null },
      metadata: null, tasks: [], status: 'ok', exitCode: 0, stoodAside: aside,
    };
  }
  const hint = await localIdentity(root, opts.instanceId);
  const loaded = await loadState(root);
  if (loaded.problem) out.warn('state', loaded.problem);
  const { state, match } = matchState(hint, loaded.state);
  const previous = loaded.state?.hint.id || null;
  const said = hint.source === 'none' ? `no local identity (${hint.why ?? 'none'})` : `${hint.id} (${hint.source})`;
  if (match === 'ask-metadata') out.info('instance', `${said}${previous && hint.source !== 'none' ? `, was ${previous}` : ''}: asking the metadata service whether this is still ${state.instanceId}`);
  else if (hint.source === 'none') out.warn('instance', `${said}: doing the local work again`);
  else if (match === 'new') out.info('instance', `${said}${previous ? `: new instance, was ${previous}` : ': first boot'}`);
  else out.info('instance', `${said}: already provisioned${state.instanceId ? ` as ${state.instanceId}` : ''}`);

  const report: BootReport = {
    command: 'boot', version: VERSION, root: root.dir, dryRun: opts.dryRun,
    instance: { id: state.instanceId ?? hint.id, source: hint.source, previous }, metadata: null, tasks: [], status: 'ok', exitCode: 0,
  };
  const run: Run = { opts, ctx: { root, config, instance: hint, facts: {} }, state, report, persist: hint.source !== 'none' && match !== 'ask-metadata', saving: Promise.resolve(), background: [] };
  // Asked on every boot from the start: the HTTP stack loads and the key is fetched while
  // ssh-keygen works. Never on a dry run (it makes no request) nor when no network task is on.
  let keygenStarted: () => void = () => undefined;
  if (!opts.dryRun && networkTasksWanted(opts).length > 0) {
    if (state.instanceId !== null) {
      run.early = startResolution(opts); // the instance is confirmed before any local work
    } else {
      // Loading the HTTP stack compiles it on this thread: it waits until ssh-keygen runs, so
      // it never holds back the keys' start (or until the local phase ends, when no key is made).
      const started = new Promise<void>((resolve) => { keygenStarted = resolve; });
      run.ctx.facts.keygenStarted = keygenStarted;
      run.early = started.then(() => startResolution(opts));
      run.early.catch(() => undefined);
    }
  }
  await confirmInstance(run, match, hint);
  const local = runTasks(run, LOCAL_TASKS);
  void local.finally(keygenStarted).catch(() => undefined);
  const network = networkPhase(run, local);
  network.catch(() => undefined); // awaited below; a local failure must not leave it unobserved
  await local;
  // Host keys exist and sshd is keys-only: sshd may start while the network phase goes on.
  if (!opts.dryRun) void notifySystemd({ READY: '1', STATUS: 'local phase done; asking the metadata service' });
  await network;
  // Disk and package work: needs no metadata, and sshd is not waiting for it.
  await runTasks(run, LATE_TASKS);
  await Promise.all(run.background);
  const order = [...LOCAL_TASKS, ...NETWORK_TASKS, ...LATE_TASKS].map((t) => t.name);
  report.tasks.sort((a, b) => order.indexOf(a.task) - order.indexOf(b.task));
  if (report.tasks.some((t) => t.status === 'failed')) {
    report.status = 'failed';
    report.exitCode = 1;
    out.error('boot', `failed: ${report.tasks.filter((t) => t.status === 'failed').map((t) => t.task).join(', ')}; the rest is done, and what failed is retried at next boot`);
  }
  // STATUS= only where it tells an operator something: with READY, while waiting on metadata
  // (EXTEND_TIMEOUT_USEC), and here. main() waits for every notification before it exits.
  if (!opts.dryRun) void notifyStatus(report.status === 'ok' ? 'done' : `failed: ${report.tasks.filter((t) => t.status === 'failed').map((t) => t.task).join(', ')}`);
  return report;
}
