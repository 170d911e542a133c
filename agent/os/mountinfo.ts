import { readFile, realpath } from 'node:fs/promises';
import path from 'node:path';
import type { RootTree } from './root.js';

// Mount points inside a tree, from /proc/self/mountinfo. A device-number change finds another
// filesystem mounted on a directory, but not a bind mount of the same filesystem (its files
// are somewhere else, maybe outside the tree), nor a file bind-mounted over a file; the
// kernel's table finds every one.

/** The mountinfo escapes: space, tab, newline and backslash as \ooo. */
function unescape(field: string): string {
  return field.replace(/\\([0-7]{3})/g, (_, oct: string) => String.fromCharCode(Number.parseInt(oct, 8)));
}

/** Every mount point of this mount namespace, as host paths. null when the table cannot be read. */
export async function mountPoints(mountinfo = '/proc/self/mountinfo'): Promise<string[] | null> {
  const text = await readFile(mountinfo, 'latin1').catch(() => null);
  if (text === null) return null;
  const points: string[] = [];
  for (const line of text.split('\n')) {
    // ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTIONS ...
    const field = line.split(' ')[4];
    if (field !== undefined) points.push(Buffer.from(unescape(field), 'latin1').toString('utf8'));
  }
  return points;
}

export interface TreeMounts {
  /** In-tree paths of the mount points strictly inside the tree ("/home/data"). */
  points: ReadonlySet<string>;
  /** Set when /proc/self/mountinfo could not be read (only device changes are then seen). */
  problem: string | null;
}

/** The mount points inside a tree (for the live system: every mount point but /). */
export async function treeMounts(root: RootTree): Promise<TreeMounts> {
  const all = await mountPoints();
  if (all === null) return { points: new Set(), problem: 'cannot read /proc/self/mountinfo: bind mounts inside the tree cannot be seen' };
  const top = root.isLive ? '/' : await realpath(root.dir).catch(() => path.resolve(root.dir));
  const points = new Set<string>();
  for (const p of all) {
    if (root.isLive) {
      if (p !== '/') points.add(p);
    } else if (p.startsWith(`${top}/`)) {
      points.add(p.slice(top.length));
    }
  }
  return { points, problem: null };
}

/** The mount point at or above an in-tree path, if any. */
export function mountAbove(points: ReadonlySet<string>, inTree: string): string | null {
  for (let p = path.posix.normalize(inTree); p !== '/' && p !== '.'; p = path.posix.dirname(p)) {
    if (points.has(p)) return p;
  }
  return null;
}

/** The mount points strictly below an in-tree directory. */
export function mountsBelow(points: ReadonlySet<string>, inTree: string): string[] {
  const prefix = inTree === '/' ? '/' : `${path.posix.normalize(inTree)}/`;
  return [...points].filter((p) => p.startsWith(prefix)).sort();
}
