import { stat } from 'node:fs/promises';
import type { CliArgs } from '../cli/args.js';
import { loadConfig } from '../cli/load-config.js';
import { runBoot } from '../boot/engine.js';
import { metadataEndpoint } from '../metadata/endpoint.js';
import type { BootReport } from '../boot/report.js';
import { finished, saveFinished, saveRunning } from '../boot/saved-report.js';
import { Console } from '../os/console.js';
import { ImprintError, errorMessage } from '../os/errors.js';
import { RootTree } from '../os/root.js';
import { acquireRunLock } from '../os/run-lock.js';
import { sweepTempFiles } from '../boot/sweep.js';
import { VERSION } from '../version.js';

export async function checkRoot(dir: string): Promise<RootTree> {
  const info = await stat(dir).catch(() => null);
  if (!info?.isDirectory()) throw new ImprintError(`--root ${dir}: not a directory`, 'usage');
  return new RootTree(dir);
}

/**
 * How long a second run waits for the first: a manual run while the unit runs gets the unit's
 * result (nothing left to do). IMPRINT_TEST_LOCK_WAIT_MS shortens it for tests (it can only
 * make imprint give up sooner, never skip the lock).
 */
function lockWaitMs(): number {
  const test = Number.parseInt(process.env.IMPRINT_TEST_LOCK_WAIT_MS ?? '', 10);
  return Number.isInteger(test) && test >= 0 && test < 60_000 ? test : 60_000;
}

export async function bootCommand(args: CliArgs, out: Console): Promise<BootReport> {
  const root = await checkRoot(args.root);
  const config = await loadConfig(root, args.config);
  const { explicitUrl: explicitMetadataUrl } = metadataEndpoint(root, config.metadata, args.metadataUrl, (line) => out.warn('metadata', line));
  if (args.metadataDeadlineMs) config.metadata.deadlineMs = args.metadataDeadlineMs;
  if (!args.dryRun && process.getuid?.() !== 0) throw new ImprintError('boot changes host keys and /etc/shadow: run it as root (or use --dry-run)', 'usage');
  out.detail('config', config.source ?? 'built-in defaults');
  const opts = { root, config, dryRun: args.dryRun, out, explicitMetadataUrl, ...(args.instanceId ? { instanceId: args.instanceId } : {}),
    ...(args.platform ? { platform: args.platform } : {}), ...(args.wireserverUrl ? { wireserverUrl: args.wireserverUrl } : {}),
  };
  if (args.dryRun) return runBoot(opts);
  const lock = await acquireRunLock(root, lockWaitMs(), (m) => out.warn('lock', m));
  try {
    const swept = await sweepTempFiles(root);
    if (swept.length > 0) out.info('lock', `removed what a killed run left: ${swept.join(', ')}`);
    return await provisionAndSave(root, opts, out);
  } finally {
    await lock.release();
  }
}

/** Runs the boot with its report saved: "running" first, then the full report, even after a failure. */
async function provisionAndSave(root: RootTree, opts: Parameters<typeof runBoot>[0], out: Console): Promise<BootReport> {
  const startedAt = new Date();
  // A report that cannot be written costs `imprint status` its answer, not the boot its work.
  const keep = (write: Promise<void>): Promise<void> => write.catch((err: unknown) => out.warn('report', `not saved: ${errorMessage(err)}`));
  await keep(saveRunning(root, startedAt));
  let report: BootReport;
  try {
    report = await runBoot(opts);
  } catch (err) {
    const failed: BootReport = {
      command: 'boot', version: VERSION, root: root.dir, dryRun: false, instance: { id: '', source: 'none', previous: null },
      metadata: null, tasks: [], status: 'failed', exitCode: 1,
    };
    await keep(saveFinished(root, finished(failed, startedAt, errorMessage(err))));
    throw err;
  }
  await keep(saveFinished(root, finished(report, startedAt)));
  return report;
}
