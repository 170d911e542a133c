import type { CliArgs } from '../cli/args.js';
import { LAST_BOOT_REPORT, RUN_REPORT, loadReport } from '../boot/saved-report.js';
import { STATE_FILE } from '../boot/state.js';
import { ImprintError } from '../os/errors.js';
import { shredTreeFile, statTree } from '../os/files.js';
import { bootProcessRuns } from '../os/unit-state.js';
import { checkRoot } from './boot.js';

// `imprint clean`: forget this instance (its state and the saved reports) so the next boot
// provisions it again: for image builders who boot an image to test it before sealing it.
// Host keys, accounts and launch keys stay as they are; the next boot replaces them.

const FORGOTTEN = [STATE_FILE, RUN_REPORT, LAST_BOOT_REPORT] as const;

export async function cleanCommand(args: CliArgs): Promise<number> {
  const root = await checkRoot(args.root);
  if (!args.dryRun && process.getuid?.() !== 0) throw new ImprintError('clean removes /var/lib/imprint/state.json: run it as root (or use --dry-run)', 'usage');
  const current = await loadReport(root, RUN_REPORT);
  if (current.report?.status === 'running' && (await bootProcessRuns(current.report.pid))) {
    throw new ImprintError(`a boot is running (pid ${current.report.pid}): wait for it (imprint status --wait), then clean`);
  }
  const present: string[] = [];
  for (const file of FORGOTTEN) if ((await statTree(root, file)) !== null) present.push(file);
  for (const file of present) if (!args.dryRun) await shredTreeFile(root, file);
  const verb = args.dryRun ? 'would remove' : 'removed';
  if (args.json) {
    process.stdout.write(`${JSON.stringify({ command: 'clean', dryRun: args.dryRun, removed: args.dryRun ? [] : present, wouldRemove: args.dryRun ? present : [] }, null, 2)}\n`);
  } else {
    for (const file of present) process.stdout.write(`imprint: clean: ${verb} ${file}\n`);
    process.stdout.write(present.length === 0
      ? 'imprint: clean: nothing to forget; the next boot provisions this instance\n'
      : `imprint: clean: ${args.dryRun ? 'after this, ' : ''}the next boot provisions this instance again (new host keys, passwords, launch keys)\n`);
  }
  return 0;
}
