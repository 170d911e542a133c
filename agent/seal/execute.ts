import path from 'node:path';
import { parseAccountFile, passwordState } from '../parsers/accounts.js';
import { errorMessage } from '../os/errors.js';
import { readTreeText, writeTreeFileAtomic } from '../os/files.js';
import type { RootTree } from '../os/root.js';
import { changePasswordFields } from '../os/password-fields.js';
import { deleteUser } from '../os/shadow-utils.js';
import { mountAbove, treeMounts } from '../os/mountinfo.js';
import { removeTreeAt, shredAt, TreeDir, truncateAt, unlinkAt, zeroFill } from '../os/tree-ops.js';
import { itemKey, type SealItem } from './item.js';
import { SEAL_OPERATIONS } from './operations.js';

// Carries out a plan, item by item, in operation order. An item that fails is named and the
// others still run. Each step is idempotent: killed at any point, a new seal finds what is left
// (a partly overwritten file is overwritten again and removed; a truncated log has nothing left).

export type SealStatus = 'planned' | 'done' | 'failed' | 'skipped';

export interface SealResult extends SealItem {
  status: SealStatus;
  /** What happened: shredded, unlinked, removed, truncated, locked, zeroed, already gone. */
  outcome?: string;
  error?: string;
}

export interface ExecuteOptions {
  /** zero-free-space: at most this many bytes per filesystem (null: until full). */
  zeroLimit?: number | null;
  /** Called as each item ends (for one line per item while the run goes on). */
  onResult?: (result: SealResult) => void;
}

type Outcome = { outcome: string; bytes?: number };

async function withParent(root: RootTree, item: SealItem, act: (dir: TreeDir, names: (string | Buffer)[]) => Promise<Outcome>): Promise<Outcome> {
  const dir = await TreeDir.open(root, path.posix.dirname(item.path));
  if (!dir) return { outcome: 'already gone' };
  try {
    const names = await dir.resolve(path.posix.basename(item.path));
    if (names.length === 0) return { outcome: 'already gone' };
    const result = await act(dir, names);
    await dir.sync();
    return result;
  } finally {
    await dir.close();
  }
}

async function runItem(root: RootTree, item: SealItem, opts: ExecuteOptions, mounts: ReadonlySet<string>): Promise<Outcome> {
  // Checked again here: a mount may have appeared since the plan was made.
  const above = item.action === 'zero-fill' ? null : mountAbove(mounts, item.path);
  if (above !== null && (above === item.path || !root.isLive)) {
    return { outcome: `skipped: ${above === item.path ? 'a mount point' : `under the mount point ${above}`} (seal never removes through a mount)` };
  }
  switch (item.action) {
    case 'shred':
      return withParent(root, item, async (dir, names) => {
        const outcomes = [];
        const problems: string[] = [];
        for (const n of names) outcomes.push(await shredAt(dir, n, item.path, problems));
        if (outcomes.every((o) => o === 'absent')) return { outcome: 'already gone' };
        const said = outcomes.includes('shredded') ? 'shredded' : 'unlinked';
        return { outcome: problems.length === 0 ? said : `${said}; ${problems.join('; ')}` };
      });
    case 'unlink':
      return withParent(root, item, async (dir, names) => {
        let any = false;
        for (const n of names) any = (await unlinkAt(dir, n, item.path)) || any;
        return { outcome: any ? 'unlinked' : 'already gone' };
      });
    case 'shred-tree':
    case 'remove-tree':
      return withParent(root, item, async (dir, names) => {
        const shred = item.action === 'shred-tree';
        const kept: string[] = [];
        const problems: string[] = [];
        for (const n of names) {
          const info = await dir.lstat(n);
          // A tree that became a single file since the plan: removed the same way, never followed.
          if (info && !info.isDirectory()) {
            if (shred && info.isFile()) await shredAt(dir, n, item.path, problems);
            else await unlinkAt(dir, n, item.path);
          } else {
            const removal = await removeTreeAt(dir, n, item.path, shred, mounts);
            kept.push(...removal.keptMounts);
            problems.push(...removal.problems);
          }
        }
        let outcome = shred ? 'shredded and removed' : 'removed';
        if (kept.length > 0) outcome += `, except the mount point${kept.length === 1 ? '' : 's'} ${kept.join(', ')} (left in place, with the directories above)`;
        if (problems.length > 0) outcome += `; ${problems.join('; ')}`;
        return { outcome };
      });
    case 'truncate':
      return withParent(root, item, async (dir, names) => {
        let before: number | null = null;
        for (const n of names) before = (await truncateAt(dir, n, item.path)) ?? before;
        return before === null ? { outcome: 'already gone' } : { outcome: 'emptied', bytes: before };
      });
    case 'zero-fill': {
      const dir = await TreeDir.open(root, item.path);
      if (!dir) return { outcome: 'already gone' };
      try {
        const written = await zeroFill(dir, item.path, opts.zeroLimit ?? Number.POSITIVE_INFINITY);
        return { outcome: 'zeroed', bytes: written };
      } finally {
        await dir.close();
      }
    }
    case 'delete-user':
    {
      const outcome = await deleteUser(root, item.account as string);
      return { outcome: outcome === 'absent' ? 'already gone' : outcome === 'deleted' ? 'deleted (with its home)' : `deleted (its home was not removed: ${outcome.homeLeft})` };
    }
    case 'mark-first-boot':
      await writeTreeFileAtomic(root, item.path, 'uninitialized\n', { mode: 0o444, uid: 0, gid: 0 });
      return { outcome: 'now "uninitialized"' };
    case 'lock':
    case 'skip':
      return { outcome: 'skipped' };
  }
}

/**
 * Sets every account of the passwords items to "!" (locked, and no hash left to crack offline)
 * in one step: on a tree by imprint itself under shadow-utils' locks (no code of the image
 * runs), on the live system by one `chpasswd -e`. Then re-reads /etc/shadow: an account whose
 * field still holds a hash, or still lets anyone in, is a failure.
 */
async function lockAccounts(root: RootTree, items: SealItem[], done: (r: SealResult) => void): Promise<void> {
  let changed: SealItem[] = [];
  try {
    changed = await changePasswordFields(root, (_passwd, shadow) => {
      const present = items.filter((item) => shadow.indexesOf(item.account as string).length > 0);
      const changes = present.map((item) => ({ account: item.account as string, field: '!', shadow: shadow.indexesOf(item.account as string), passwd: [] }));
      return { changes, result: present };
    });
  } catch (err) {
    for (const item of items) done({ ...item, status: 'failed', error: errorMessage(err) });
    return;
  }
  for (const item of items.filter((i) => !changed.includes(i))) done({ ...item, status: 'failed', error: 'no longer in /etc/shadow' });
  if (changed.length === 0) return;
  let fields: Map<string, string>;
  try {
    const text = await readTreeText(root, '/etc/shadow');
    const parsed = parseAccountFile(text ?? '', 'shadow', '/etc/shadow');
    fields = new Map(parsed.lines.map((l) => [l.fields[0] as string, l.fields[1] as string]));
  } catch (err) {
    for (const item of changed) done({ ...item, status: 'failed', error: `locked, but /etc/shadow cannot be read back: ${errorMessage(err)}` });
    return;
  }
  for (const item of changed) {
    const field = fields.get(item.account as string);
    const state = field === undefined ? 'missing' : passwordState(field);
    if (state === 'disabled') done({ ...item, status: 'done', outcome: 'locked (hash removed)' });
    else done({ ...item, status: 'failed', error: `still ${state} in /etc/shadow after locking` });
  }
}

/** Runs the plan. Skip items are passed through as skipped; nothing else is looked at. */
export async function executeSeal(root: RootTree, items: readonly SealItem[], opts: ExecuteOptions = {}): Promise<SealResult[]> {
  const results: SealResult[] = [];
  const mounts = (await treeMounts(root)).points;
  const done = (r: SealResult): void => {
    results.push(r);
    opts.onResult?.(r);
  };
  for (const op of SEAL_OPERATIONS) {
    const mine = items.filter((i) => i.operation === op);
    for (const item of mine.filter((i) => i.action === 'skip')) done({ ...item, status: 'skipped' });
    const locks = mine.filter((i) => i.action === 'lock');
    if (locks.length > 0) await lockAccounts(root, locks, done);
    for (const item of mine.filter((i) => i.action !== 'skip' && i.action !== 'lock')) {
      try {
        const { outcome, bytes } = await runItem(root, item, opts, mounts);
        if (outcome.startsWith('skipped:')) done({ ...item, why: `${item.why}; ${outcome}`, bytes: 0, status: 'skipped', outcome });
        else done({ ...item, ...(bytes === undefined ? {} : { bytes }), status: 'done', outcome });
      } catch (err) {
        done({ ...item, status: 'failed', error: errorMessage(err) });
      }
    }
  }
  // Back into plan order (locks are batched, skips come first within an operation).
  const key = (i: SealItem): string => `${i.operation}\0${i.action}\0${itemKey(i)}`;
  const order = new Map(items.map((item, n) => [key(item), n]));
  return results.sort((a, b) => (order.get(key(a)) ?? 0) - (order.get(key(b)) ?? 0));
}
