import { createHash } from 'node:crypto';
import { lstat, readdir, readFile, readlink } from 'node:fs/promises';
import path from 'node:path';

/** path → a digest of type, mode, owner and content: enough to say which files changed. */
export async function snapshotTree(root: string): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  const walk = async (dir: string): Promise<void> => {
    for (const name of (await readdir(dir)).sort()) {
      const full = path.join(dir, name);
      const info = await lstat(full);
      const rel = `/${path.relative(root, full)}`;
      const meta = `${info.mode.toString(8)}:${info.uid}:${info.gid}`;
      if (info.isDirectory()) {
        out.set(rel, `dir:${meta}`);
        await walk(full);
      } else if (info.isSymbolicLink()) out.set(rel, `link:${await readlink(full)}`);
      else out.set(rel, `file:${meta}:${createHash('sha256').update(await readFile(full)).digest('hex')}`);
    }
  };
  await walk(root);
  return out;
}

export interface TreeDiff {
  added: string[];
  changed: string[];
  removed: string[];
}

export function diffSnapshots(before: Map<string, string>, after: Map<string, string>): TreeDiff {
  const diff: TreeDiff = { added: [], changed: [], removed: [] };
  for (const [p, v] of after) {
    if (!before.has(p)) diff.added.push(p);
    else if (before.get(p) !== v) diff.changed.push(p);
  }
  for (const p of before.keys()) if (!after.has(p)) diff.removed.push(p);
  return diff;
}
