import { stat } from 'node:fs/promises';
import type { CliArgs } from '../cli/args.js';
import { loadConfig } from '../cli/load-config.js';
import { DEFAULT_METADATA_URL } from '../config.js';
import { runBoot } from '../boot/engine.js';
import type { BootReport } from '../boot/report.js';
import { finished, saveFinished, saveRunning } from '../boot/saved-report.js';
import { Console } from '../os/console.js';
import { ImprintError, errorMessage } from '../os/errors.js';
import { RootTree } from '../os/root.js';
import { VERSION } from '../version.js';

export async function checkRoot(dir: string): Promise<RootTree> {
  const info = await stat(dir).catch(() => null);
  if (!info?.isDirectory()) throw new ImprintError(`--root ${dir}: not a directory`, 'usage');
  return new RootTree(dir);
}

export async function bootCommand(args: CliArgs, out: Console): Promise<BootReport> {
  const root = await checkRoot(args.root);
  const config = await loadConfig(root, args.config);
  if (args.metadataUrl) config.metadata.url = args.metadataUrl;
  if (args.metadataDeadlineMs) config.metadata.deadlineMs = args.metadataDeadlineMs;
  const explicitMetadataUrl = args.metadataUrl !== undefined || config.metadata.url !== DEFAULT_METADATA_URL;
  if (!args.dryRun && process.getuid?.() !== 0) throw new ImprintError('boot changes host keys and /etc/shadow: run it as root (or use --dry-run)', 'usage');
  out.detail('config', config.source ?? 'built-in defaults');
  const opts = { root, config, dryRun: args.dryRun, out, explicitMetadataUrl, ...(args.instanceId ? { instanceId: args.instanceId } : {}) };
  if (args.dryRun) return runBoot(opts);
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
