import { realpath, stat } from 'node:fs/promises';
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import { flagError } from '../cli/flag-error.js';
import { ImprintError } from '../os/errors.js';
import { RootTree } from '../os/root.js';
import { acquireRunLock, EXIT_LOCKED, RunLockBusy, type RunLock } from '../os/run-lock.js';
import { executeSeal, type SealResult } from '../seal/execute.js';
import { planSealDetailed } from '../seal/plan.js';
import { DEFAULT_OPERATIONS, OPERATION_SUMMARY, OperationsError, parseOperations, SEAL_OPERATIONS, type SealOperation } from '../seal/operations.js';
import { buildReport, itemLine, SECURE_DELETION_CAVEAT, summaryTable } from '../seal/report.js';

// `imprint seal`: removes what must not be shared before an image is (host keys, users' keys,
// histories, credentials, logs, machine-id, instance state) and locks passwords. Parses its own
// flags, like emulate.

const wrap = (text: string, indent: string, width = 92): string[] => {
  const out: string[] = [];
  let line = '';
  for (const word of text.split(' ')) {
    if (line !== '' && indent.length + line.length + 1 + word.length > width) {
      out.push(`${indent}${line}`);
      line = word;
    } else line = line === '' ? word : `${line} ${word}`;
  }
  if (line !== '') out.push(`${indent}${line}`);
  return out;
};

const operationHelp = SEAL_OPERATIONS.map((op) => {
  const [first, ...rest] = wrap(OPERATION_SUMMARY[op], ' '.repeat(20));
  return [`  ${op.padEnd(17)} ${(first ?? '').trimStart()}`, ...rest].join('\n');
}).join('\n');

export const SEAL_HELP = `Usage: imprint seal [--root DIR] [--operations LIST] [--remove-user NAME]... [--first-boot]
                   [--dry-run] [--json] [--yes] [--verbose]

Removes what must not be shared from an image, as the last step of its build (inside the
build instance, as Packer runs it) or on a mounted image with --root. Run it twice and the
second run has nothing to do.

Options:
  --root DIR          The image's root directory (a mounted image). Every path is taken inside
                      DIR, no link is followed, and nothing outside DIR is touched. Without it
                      (or with --root /) seal works on THIS running system, which needs --yes
                      or a confirmation typed on a terminal (--dry-run needs neither).
  --operations LIST   Comma-separated. Signed entries change the defaults: "-logs,+zero-free-space".
                      A list with a bare name means exactly those: "ssh-host-keys,logs".
                      "defaults" and "all" name those sets ("all,-mail-spool").
  --remove-user NAME  Remove the build account NAME (a packer or distribution build user): its
                      account, home and mail spool (userdel --remove), and the files in
                      /etc/sudoers.d that hold only its rules (a rule among others, or in
                      /etc/sudoers, is named, not edited). Repeat for several; never root.
  --first-boot        Write "uninitialized" to /etc/machine-id instead of emptying it: the next
                      boot is systemd's first boot (ConditionFirstBoot= units run), which also
                      applies unit presets and can enable units the build disabled. Default:
                      empty, which gives a new machine-id without first-boot mode.
  --dry-run           List what each operation would remove, with sizes; change nothing.
  --json              One JSON report on stdout; the lines go to stderr.
  -y, --yes           Seal the running system without asking.
  -v, --verbose       Also print informational notes (memory filesystems, links left alone).
  -h, --help          Print this help.

Operations (* = on by default):
${operationHelp.split('\n').map((l) => (DEFAULT_OPERATIONS.some((op) => l.startsWith(`  ${op} `)) ? `*${l.slice(1)}` : l)).join('\n')}

Homes are root's, every home in the tree's /etc/passwd, and every directory under /home.
Named files are looked for in all of them; content (the first 8 KiB of files up to 1 MiB) is
checked in people's homes (root, /home/*, login accounts from UID_MIN), /tmp, /var/tmp and /mnt.

Links are never followed. A link where a key, history or credential would be is left in place
and reported as skipped (a history linked to /dev/null is the usual way to switch it off and is
not reported); inside a directory being removed, links are removed themselves. Only a regular
file with a single link is overwritten or truncated. /var/lib/dbus/machine-id is removed even
as a link (to /etc/machine-id): the link itself.

Secure deletion is best effort, and said plainly: keys, histories and credentials are
overwritten in place with random bytes and fsynced before they are unlinked, but journaling
and copy-on-write filesystems (btrfs, ZFS, ext4 data=journal), snapshots and SSDs (wear
levelling) may keep old copies of the blocks. zero-free-space, then fstrim on the image, help;
building on a fresh filesystem is the only certainty. Logs are truncated, not overwritten;
rotated logs, journal files, package caches and /tmp and /var/tmp contents are unlinked without
overwriting (a build script running from /tmp must not be corrupted); keys found there are
shredded by credentials.

Output: one line per item (operation, action, path, size, why), then a summary table
(operation, items, bytes). Nothing is printed for an item that is not there.

Environment:
  IMPRINT_SEAL_ZERO_LIMIT=SIZE   zero-free-space writes at most SIZE per filesystem (bytes, or
                                 with K, M, G). A --root directory on this machine's own
                                 filesystem is zeroed only with a limit: it would fill the disk.

Exit status: 0 sealed, or nothing to do; 1 an item could not be removed (each is named, the
others were done); 2 usage error, or the running system without --yes (nothing changed); 75 another
imprint run held the lock on the tree (flock on its root directory) for 60 s (nothing changed).
`;

const OPTIONS = {
  root: { type: 'string' },
  operations: { type: 'string', multiple: true },
  'dry-run': { type: 'boolean' },
  json: { type: 'boolean' },
  yes: { type: 'boolean', short: 'y' },
  verbose: { type: 'boolean', short: 'v' },
  help: { type: 'boolean', short: 'h' },
  'remove-user': { type: 'string', multiple: true },
  'first-boot': { type: 'boolean' },
} as const;

export interface SealIo {
  out: NodeJS.WritableStream;
  err: NodeJS.WritableStream;
  /** Where a confirmation is read from when sealing the running system without --yes. */
  input?: NodeJS.ReadableStream;
  /** Whether to ask on `input` (a terminal). Default: false unless the process's own stdin and stderr are terminals. */
  interactive?: boolean;
}

class UsageError extends Error {}

interface SealArgs {
  root: string | undefined;
  operations: Set<SealOperation>;
  dryRun: boolean;
  json: boolean;
  yes: boolean;
  verbose: boolean;
  removeUsers: string[];
  firstBoot: boolean;
}

/** "--operations -logs" is the documented form: parseArgs would take "-logs" for an option, so the pair is joined first. */
function joinOperations(argv: string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < argv.length; i += 1) {
    const arg = argv[i] as string;
    if (arg === '--') {
      out.push(...argv.slice(i));
      break;
    }
    if (arg === '--operations' && i + 1 < argv.length) {
      out.push(`--operations=${argv[i + 1] as string}`);
      i += 1;
    } else out.push(arg);
  }
  return out;
}

function parseFlags(argv: string[]): SealArgs | 'help' {
  let parsed;
  try {
    parsed = parseArgs({ args: joinOperations(argv), options: OPTIONS, allowPositionals: true, strict: true });
  } catch (err) {
    throw new UsageError(`seal: ${flagError(err, Object.keys(OPTIONS))}`);
  }
  const v = parsed.values;
  if (v.help) return 'help';
  if (parsed.positionals.length > 0) throw new UsageError(`seal: unexpected argument "${parsed.positionals[0]}"`);
  if (v.root !== undefined && v.root.trim() === '') throw new UsageError('seal: --root needs a directory');
  let operations: Set<SealOperation>;
  try {
    operations = v.operations ? parseOperations(v.operations.join(',')) : new Set(DEFAULT_OPERATIONS);
  } catch (err) {
    if (err instanceof OperationsError) throw new UsageError(`seal: ${err.message}`);
    throw err;
  }
  const removeUsers = v['remove-user'] ?? [];
  for (const name of removeUsers) {
    if (!/^[a-z_][a-z0-9_-]{0,31}\$?$/.test(name)) throw new UsageError(`seal: --remove-user: "${name}" is not a user name`);
    if (name === 'root') throw new UsageError('seal: --remove-user root: never');
  }
  // Naming a build account selects its operation, whatever --operations says.
  if (removeUsers.length > 0) operations.add('build-user');
  return {
    root: v.root, operations, dryRun: v['dry-run'] ?? false, json: v.json ?? false, yes: v.yes ?? false, verbose: v.verbose ?? false,
    removeUsers: [...new Set(removeUsers)], firstBoot: v['first-boot'] ?? false,
  };
}

/** IMPRINT_SEAL_ZERO_LIMIT: bytes, or with a K/M/G (binary) suffix. */
export function parseSize(text: string): number {
  const m = /^(\d+)\s*([KMGT])?(i?B)?$/i.exec(text.trim());
  if (!m) throw new UsageError(`seal: IMPRINT_SEAL_ZERO_LIMIT must be a size (bytes, or with K, M, G), not "${text}"`);
  const power = { K: 1, M: 2, G: 3, T: 4 }[(m[2] ?? '').toUpperCase() as 'K'] ?? 0;
  return Number.parseInt(m[1] as string, 10) * 1024 ** power;
}

/** The tree: --root (which must be a directory), and whether it is in fact this running system. */
async function resolveRoot(dir: string | undefined): Promise<{ root: RootTree; live: boolean }> {
  if (dir === undefined) return { root: new RootTree('/'), live: true };
  const info = await stat(dir).catch(() => null);
  if (!info?.isDirectory()) throw new UsageError(`seal: --root ${dir}: not a directory`);
  // "/", a link to it, or a bind mount of it: all the running system.
  const real = await realpath(dir);
  const slash = await stat('/');
  if (real === '/' || (info.dev === slash.dev && info.ino === slash.ino)) return { root: new RootTree('/'), live: true };
  return { root: new RootTree(real), live: false };
}

async function confirm(io: SealIo): Promise<boolean> {
  if (!io.input) return false;
  const rl = createInterface({ input: io.input, output: io.err, terminal: false });
  try {
    const answer = await new Promise<string>((resolve) => {
      rl.question('imprint: seal: this seals THE RUNNING SYSTEM (/): its host keys, users\' keys, histories, credentials, logs and machine-id are removed and passwords locked. Type "yes" to go on: ', resolve);
      rl.once('close', () => resolve(''));
    });
    return answer.trim() === 'yes';
  } finally {
    rl.close();
  }
}

const processIo = (): SealIo => ({
  out: process.stdout,
  err: process.stderr,
  input: process.stdin,
  interactive: Boolean(process.stdin.isTTY && process.stderr.isTTY),
});

export async function sealCommand(argv: string[], io?: SealIo): Promise<number> {
  const streams = io ?? processIo();
  const started = Date.now();
  let args: SealArgs | 'help';
  let zeroLimit: number | null = null;
  let target: { root: RootTree; live: boolean };
  try {
    args = parseFlags(argv);
    if (args === 'help') {
      streams.out.write(SEAL_HELP);
      return 0;
    }
    const limit = process.env.IMPRINT_SEAL_ZERO_LIMIT;
    if (limit !== undefined && limit !== '') zeroLimit = parseSize(limit);
    target = await resolveRoot(args.root);
    if (!args.dryRun && process.geteuid?.() !== 0) throw new UsageError('seal: removing other users\' files and locking passwords needs root (or use --dry-run)');
  } catch (err) {
    if (err instanceof UsageError) {
      streams.err.write(`imprint: ${err.message}\nimprint: see "imprint seal --help"\n`);
      return 2;
    }
    throw err;
  }
  const { root, live } = target;
  const lines = args.json ? streams.err : streams.out;
  const say = (text: string): void => {
    lines.write(`imprint: ${text}\n`);
  };

  if (live && !args.dryRun && !args.yes) {
    const interactive = streams.interactive ?? false;
    if (!interactive || !(await confirm(streams))) {
      streams.err.write(interactive
        ? 'imprint: seal: not confirmed; nothing was changed\n'
        : 'imprint: seal: refusing to seal the running system (/) without --yes: nothing was changed. Use --root DIR for a mounted image, --dry-run to see what would be removed, or --yes from the build\'s last step\n');
      return 2;
    }
  }

  // One run at a time per tree, as for boot (see os/run-lock.ts); a dry run changes nothing.
  let lock: RunLock | null = null;
  if (!args.dryRun) {
    try {
      lock = await acquireRunLock(root, 60_000, (m) => say(`seal: ${m}`));
    } catch (err) {
      if (!(err instanceof RunLockBusy)) throw err;
      streams.err.write(`imprint: seal: ${err.message}\n`);
      return EXIT_LOCKED;
    }
  }
  try {
    return await sealTree({ args, root, live, streams, say, lines, zeroLimit, started });
  } finally {
    await lock?.release();
  }
}

interface SealRun {
  args: SealArgs;
  root: RootTree;
  live: boolean;
  streams: SealIo;
  say: (text: string) => void;
  lines: NodeJS.WritableStream;
  zeroLimit: number | null;
  started: number;
}

async function sealTree({ args, root, live, streams, say, lines, zeroLimit, started }: SealRun): Promise<number> {
  let plan;
  try {
    plan = await planSealDetailed(root, args.operations, { zeroLimit, buildUsers: args.removeUsers, firstBoot: args.firstBoot });
  } catch (err) {
    if (err instanceof ImprintError) {
      streams.err.write(`imprint: error: seal: ${err.message}\n`);
      return 1;
    }
    throw err;
  }
  for (const note of plan.notes) {
    if (note.severity === 'info' && !args.verbose) continue;
    say(`seal: ${note.operation}: ${note.severity === 'info' ? '' : `${note.severity}: `}${note.message}`);
  }
  if (args.verbose) say(`seal: ${live ? 'the running system' : root.dir}: operations ${[...args.operations].join(', ')}`);

  let results: SealResult[];
  if (args.dryRun) {
    results = plan.items.map((item) => ({ ...item, status: item.action === 'skip' ? 'skipped' : 'planned' }) as SealResult);
    for (const r of results) say(itemLine({ ...r, status: 'planned' }));
  } else {
    results = await executeSeal(root, plan.items, { zeroLimit, onResult: (r) => say(itemLine(r)) });
  }

  const report = buildReport({ root: root.dir, live, dryRun: args.dryRun, operations: args.operations, results, notes: plan.notes, durationMs: Date.now() - started });
  if (report.status === 'nothing-to-do') {
    const skipped = results.length;
    say(`seal: nothing to do${skipped > 0 ? ` (${skipped} item${skipped === 1 ? '' : 's'} left in place, named above)` : ''}`);
  } else {
    say(`seal: ${args.dryRun ? 'would remove (dry run, nothing changed)' : 'summary'}:`);
    for (const row of summaryTable(report.summary, args.dryRun)) lines.write(`  ${row}\n`);
    const failed = results.filter((r) => r.status === 'failed');
    if (failed.length > 0) say(`seal: error: ${failed.length} item${failed.length === 1 ? '' : 's'} could not be removed: ${failed.map((r) => r.account ?? r.path).join(', ')}`);
    if (!args.dryRun && results.some((r) => r.outcome?.startsWith('shredded'))) say(`seal: note: ${SECURE_DELETION_CAVEAT}`);
  }
  if (args.json) streams.out.write(`${JSON.stringify(report, null, 2)}\n`);
  return report.exitCode;
}
