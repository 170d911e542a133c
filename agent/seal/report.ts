import { VERSION } from '../version.js';
import type { SealAction, SealItem, SealNote } from './item.js';
import type { SealResult } from './execute.js';
import { SEAL_OPERATIONS, type SealOperation } from './operations.js';

// What seal says: one line per item as it is done (or would be, with --dry-run), a summary
// table, and with --json one report on stdout.

export const SECURE_DELETION_CAVEAT =
  'shredded files were overwritten in place and fsynced before being unlinked; journaling and copy-on-write filesystems (ext4 data=journal, btrfs, ZFS), snapshots and SSDs may still keep old copies of their blocks: zero-free-space and fstrim on the image help, a fresh filesystem is the only certainty';

const VERB: Record<SealAction, string> = {
  shred: 'shred',
  'shred-tree': 'shred and remove',
  unlink: 'remove',
  'remove-tree': 'remove',
  truncate: 'empty',
  lock: 'lock the password of',
  'zero-fill': 'zero the free space at',
  'delete-user': 'delete',
  'mark-first-boot': 'write "uninitialized" to',
  skip: 'skip',
};

/** A path as printed: names with control characters or invalid UTF-8 are quoted (no terminal escapes from a planted name). */
export function printablePath(p: string): string {
  return /[\x00-\x1f\x7f\u2028\u2029\uFFFD"]/.test(p) ? JSON.stringify(p) : p;
}

export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let u = -1;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u += 1;
  }
  return `${v.toFixed(v < 10 ? 1 : 0)} ${units[u] as string}`;
}

function subject(item: SealItem): string {
  if (item.action === 'delete-user') return `the account ${item.account ?? '?'}`;
  return item.action === 'lock' ? `${item.account ?? '?'} (${item.path} line ${item.line ?? '?'})` : printablePath(item.path);
}

function size(item: SealItem): string {
  return item.action === 'lock' || item.action === 'skip' || item.action === 'delete-user' ? '' : ` (${formatBytes(item.bytes)})`;
}

/** The line for a planned item (--dry-run) or a result. */
export function itemLine(r: SealResult): string {
  const head = `seal: ${r.operation}:`;
  switch (r.status) {
    case 'planned':
      return r.action === 'skip' ? `${head} would skip ${subject(r)}: ${r.why}` : `${head} would ${VERB[r.action]} ${subject(r)}${size(r)}: ${r.why}`;
    case 'skipped':
      return `${head} skipped ${subject(r)}: ${r.why}`;
    case 'failed':
      return `${head} error: could not ${VERB[r.action]} ${subject(r)}: ${r.error ?? 'unknown error'}`;
    case 'done':
      return `${head} ${r.outcome ?? 'done'} ${subject(r)}${size(r)}: ${r.why}`;
  }
}

export interface SummaryRow {
  operation: SealOperation | 'total';
  items: number;
  bytes: number;
  skipped: number;
  failed: number;
}

export function summarize(results: readonly SealResult[], operations: ReadonlySet<string>): SummaryRow[] {
  const rows: SummaryRow[] = [];
  for (const op of SEAL_OPERATIONS) {
    if (!operations.has(op)) continue;
    const mine = results.filter((r) => r.operation === op);
    const acted = mine.filter((r) => r.action !== 'skip');
    rows.push({
      operation: op,
      items: acted.filter((r) => r.status !== 'failed').length,
      bytes: acted.filter((r) => r.status !== 'failed').reduce((s, r) => s + r.bytes, 0),
      skipped: mine.filter((r) => r.action === 'skip').length,
      failed: mine.filter((r) => r.status === 'failed').length,
    });
  }
  rows.push({
    operation: 'total',
    items: rows.reduce((s, r) => s + r.items, 0),
    bytes: rows.reduce((s, r) => s + r.bytes, 0),
    skipped: rows.reduce((s, r) => s + r.skipped, 0),
    failed: rows.reduce((s, r) => s + r.failed, 0),
  });
  return rows;
}

/** The summary table, one string per line. */
export function summaryTable(rows: readonly SummaryRow[], dryRun: boolean): string[] {
  const withSkips = rows.some((r) => r.skipped > 0);
  const withFailures = rows.some((r) => r.failed > 0);
  const header = ['operation', dryRun ? 'would remove' : 'items', 'bytes', ...(withSkips ? ['skipped'] : []), ...(withFailures ? ['failed'] : [])];
  const body = rows.map((r) => [r.operation, String(r.items), `${r.bytes} (${formatBytes(r.bytes)})`, ...(withSkips ? [String(r.skipped)] : []), ...(withFailures ? [String(r.failed)] : [])]);
  const widths = header.map((h, c) => Math.max(h.length, ...body.map((row) => (row[c] as string).length)));
  const line = (cells: string[]): string => cells.map((cell, c) => (c === 0 ? cell.padEnd(widths[c] as number) : cell.padStart(widths[c] as number))).join('  ').trimEnd();
  return [line(header), ...body.map(line)];
}

export interface SealReport {
  command: 'seal';
  version: string;
  root: string;
  live: boolean;
  dryRun: boolean;
  operations: SealOperation[];
  /** sealed | nothing-to-do | would-seal (dry run) | failed */
  status: 'sealed' | 'nothing-to-do' | 'would-seal' | 'failed';
  exitCode: number;
  items: SealResult[];
  summary: SummaryRow[];
  notes: SealNote[];
  caveat: string;
  durationMs: number;
}

export function buildReport(args: {
  root: string; live: boolean; dryRun: boolean; operations: ReadonlySet<string>; results: SealResult[]; notes: SealNote[]; durationMs: number;
}): SealReport {
  const failed = args.results.some((r) => r.status === 'failed') || args.notes.some((n) => n.severity === 'error');
  const acting = args.results.some((r) => r.action !== 'skip');
  const status = failed ? 'failed' : !acting ? 'nothing-to-do' : args.dryRun ? 'would-seal' : 'sealed';
  return {
    command: 'seal',
    version: VERSION,
    root: args.root,
    live: args.live,
    dryRun: args.dryRun,
    operations: SEAL_OPERATIONS.filter((op) => args.operations.has(op)),
    status,
    exitCode: failed ? 1 : 0,
    items: args.results,
    summary: summarize(args.results, args.operations),
    notes: args.notes,
    caveat: SECURE_DELETION_CAVEAT,
    durationMs: args.durationMs,
  };
}
