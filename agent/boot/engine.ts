import type { Config } from '../config.js';
import type { Console } from '../os/console.js';
import { errorMessage } from '../os/errors.js';
import { localIdentity } from '../os/identity.js';
import type { RootTree } from '../os/root.js';
import { defaultUserTask } from '../tasks/default-user.js';
import { hostKeysTask } from '../tasks/host-keys.js';
import { passwordsTask } from '../tasks/passwords.js';
import { sshdConfigTask } from '../tasks/sshd-config.js';
import { VERSION } from '../version.js';
import { TaskRecorder, type BootReport } from './report.js';
import { freshState, loadState, saveState, type InstanceState } from './state.js';
import type { Task, TaskContext } from './task.js';

/**
 * The local phase, in dependency order: host keys first (sshd cannot check a config without
 * them), then sshd (its effective UsePAM decides how passwords may be locked), the default
 * user, then passwords (which locks the default user too).
 */
export const LOCAL_TASKS: readonly Task[] = [hostKeysTask, sshdConfigTask, defaultUserTask, passwordsTask];

export interface BootOptions {
  root: RootTree;
  config: Config;
  dryRun: boolean;
  instanceId?: string;
  out: Console;
}

export async function runBoot(opts: BootOptions): Promise<BootReport> {
  const { root, config, out } = opts;
  const instance = await localIdentity(root, opts.instanceId);
  const loaded = await loadState(root);
  if (loaded.problem) out.warn('state', loaded.problem);
  const previous = loaded.state?.instance.id ?? null;
  // Only a state written for this very instance may skip work. No identity at all means no
  // state can be trusted: the work is done on every boot.
  const sameInstance = instance.source !== 'none' && loaded.state !== null && previous === instance.id;
  const state: InstanceState = sameInstance && loaded.state ? loaded.state : freshState(instance.id, instance.source);
  if (instance.source === 'none') out.warn('instance', 'no instance identity (no DMI UUID, no machine-id): doing all the work, and remembering none of it');
  else if (!sameInstance) out.info('instance', `${instance.id} (${instance.source})${previous ? `: new instance, was ${previous}` : ': first boot'}`);
  else out.info('instance', `${instance.id} (${instance.source}): already provisioned`);

  const report: BootReport = {
    command: 'boot', version: VERSION, root: root.dir, dryRun: opts.dryRun,
    instance: { id: instance.id, source: instance.source, previous }, tasks: [], status: 'ok', exitCode: 0,
  };
  const ctx: TaskContext = { root, config, instance, facts: {} };

  for (const task of LOCAL_TASKS) {
    const rec = new TaskRecorder(task.name, task.phase, out);
    const started = performance.now();
    const disabled = task.disabledBecause(config);
    try {
      if (disabled) {
        rec.report.status = 'skipped';
        rec.verbose(`skipped: ${disabled}`);
      } else if (state.completed[task.name]) {
        rec.report.status = 'unchanged';
        rec.action(`already done for this instance (${state.completed[task.name]})`);
      } else if (opts.dryRun) {
        rec.report.status = 'planned';
        for (const line of await task.plan(ctx)) rec.action(line);
      } else {
        const outcome = await task.run(ctx, rec);
        rec.report.status = outcome === 'skipped' ? 'skipped' : 'done';
        state.completed[task.name] = new Date().toISOString();
        if (instance.source !== 'none') await saveState(root, state);
      }
    } catch (err) {
      rec.report.status = 'failed';
      rec.report.error = errorMessage(err);
      out.error(task.name, rec.report.error);
    }
    rec.report.durationMs = Math.round(performance.now() - started);
    report.tasks.push(rec.report);
  }
  if (report.tasks.some((t) => t.status === 'failed')) {
    report.status = 'failed';
    report.exitCode = 1;
    out.error('boot', `failed: ${report.tasks.filter((t) => t.status === 'failed').map((t) => t.task).join(', ')}; the rest is done and will be retried at next boot`);
  }
  return report;
}
