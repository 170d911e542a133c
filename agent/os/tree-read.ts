import type { Stats } from 'node:fs';
import { lstat, readlink } from 'node:fs/promises';
import path from 'node:path';
import { ImprintError } from './errors.js';
import { listTreeDir, readTreeFile } from './files.js';
import type { RootTree } from './root.js';

// Read-only access for `imprint audit`: paths are resolved the way a process chrooted into the
// tree would resolve them. A symlink's target is looked up inside the tree (an absolute target
// starts again at the tree's root, ".." stops at it), so an image's /etc/x → /etc/shadow link
// reads the image's shadow, never the host's. The resolved path has no symlink left in it and
// is then read with files.ts, which refuses symlinks in every component (O_NOFOLLOW).

const MAX_LINKS = 40;

/**
 * The in-tree path a path refers to once every symlink in it is followed inside the tree, or
 * null when a component does not exist. Throws on a loop (more than 40 links, as Linux does).
 */
export async function resolveInTree(root: RootTree, inTree: string): Promise<string | null> {
  if (!inTree.startsWith('/')) throw new ImprintError(`internal: path ${inTree} is not absolute`);
  const pending = inTree.split('/').filter((c) => c !== '' && c !== '.');
  let current = '/';
  let links = 0;
  while (pending.length > 0) {
    const part = pending.shift() as string;
    if (part === '..') {
      current = path.posix.dirname(current);
      continue;
    }
    const next = path.posix.join(current, part);
    let info: Stats;
    try {
      info = await lstat(root.path(next));
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' || code === 'ENOTDIR') return null;
      throw err;
    }
    if (!info.isSymbolicLink()) {
      if (pending.length > 0 && !info.isDirectory()) return null;
      current = next;
      continue;
    }
    links += 1;
    if (links > MAX_LINKS) throw new ImprintError(`${inTree}: too many levels of symbolic links`, 'unsafe-path');
    const target = await readlink(root.path(next));
    const parts = target.split('/').filter((c) => c !== '' && c !== '.');
    if (target.startsWith('/')) current = '/';
    pending.unshift(...parts);
  }
  return current;
}

export interface TreeText {
  /** The path asked for. */
  path: string;
  /** Where it led inside the tree (differs when a symlink was followed). */
  resolved: string;
  text: string;
}

/** A text file of the tree, symlinks followed inside the tree; null when it does not exist. */
export async function readResolvedText(root: RootTree, inTree: string, maxBytes = 4 * 1024 * 1024): Promise<TreeText | null> {
  const resolved = await resolveInTree(root, inTree);
  if (resolved === null) return null;
  const data = await readTreeFile(root, resolved, maxBytes);
  return data === null ? null : { path: inTree, resolved, text: data.toString('utf8') };
}

/** The names in a directory of the tree, symlinks followed inside the tree; [] when there is none. */
export async function listResolvedDir(root: RootTree, inTree: string): Promise<string[]> {
  const resolved = await resolveInTree(root, inTree);
  if (resolved === null) return [];
  return listTreeDir(root, resolved);
}

/** lstat of the final component (a link is reported as a link), after resolving its parents. */
export async function lstatResolved(root: RootTree, inTree: string): Promise<Stats | null> {
  const parent = await resolveInTree(root, path.posix.dirname(inTree));
  if (parent === null) return null;
  try {
    return await lstat(root.path(path.posix.join(parent, path.posix.basename(inTree))));
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return null;
    throw err;
  }
}

/** stat of what a path leads to (links followed inside the tree); null when it does not exist. */
export async function statResolved(root: RootTree, inTree: string): Promise<Stats | null> {
  const resolved = await resolveInTree(root, inTree);
  if (resolved === null) return null;
  return lstat(root.path(resolved)).catch(() => null);
}

/** The target of a symlink of the tree as written (not resolved); null when it is not a link. */
export async function readTreeLink(root: RootTree, inTree: string): Promise<string | null> {
  const parent = await resolveInTree(root, path.posix.dirname(inTree));
  if (parent === null) return null;
  try {
    return await readlink(root.path(path.posix.join(parent, path.posix.basename(inTree))));
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'EINVAL' || code === 'ENOTDIR') return null;
    throw err;
  }
}
