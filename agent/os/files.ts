import { constants, type Stats } from 'node:fs';
import { chmod, chown, lstat, mkdir, open, readdir, rename, rmdir, unlink, type FileHandle } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { crashPoint } from './crash.js';
import { ImprintError } from './errors.js';
import type { RootTree } from './root.js';
import { restoreContexts } from './selinux.js';

export interface Ownership {
  mode: number;
  uid?: number;
  gid?: number;
}

const READ_FLAGS = constants.O_RDONLY | constants.O_NOFOLLOW;

/** Reads a file inside the tree without following a final symlink; null when it does not exist. */
export async function readTreeFile(root: RootTree, inTree: string, maxBytes = 4 * 1024 * 1024): Promise<Buffer | null> {
  await root.assertNoSymlinks(inTree);
  let handle: FileHandle;
  try {
    handle = await open(root.path(inTree), READ_FLAGS);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return null;
    if (code === 'ELOOP') throw new ImprintError(`refusing ${inTree}: it is a symlink`, 'unsafe-path');
    throw err;
  }
  try {
    const info = await handle.stat();
    if (!info.isFile()) throw new ImprintError(`refusing ${inTree}: not a regular file`, 'unsafe-path');
    if (info.size > maxBytes) throw new ImprintError(`refusing ${inTree}: larger than ${maxBytes} bytes`, 'unsafe-path');
    return await handle.readFile();
  } finally {
    await handle.close();
  }
}

export async function readTreeText(root: RootTree, inTree: string): Promise<string | null> {
  const data = await readTreeFile(root, inTree);
  return data === null ? null : data.toString('utf8');
}

export async function statTree(root: RootTree, inTree: string): Promise<Stats | null> {
  try {
    return await lstat(root.path(inTree));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  }
}

export async function listTreeDir(root: RootTree, inTree: string): Promise<string[]> {
  await root.assertNoSymlinks(inTree);
  try {
    return (await readdir(root.path(inTree))).sort();
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return [];
    throw err;
  }
}

/** Makes a directory's entries (renames, unlinks) durable; one call covers every change made in it so far. */
async function fsyncDir(hostDir: string): Promise<void> {
  const handle = await open(hostDir, constants.O_RDONLY | constants.O_DIRECTORY);
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** Creates a directory (and missing parents) inside the tree, never through a symlink. */
export async function ensureTreeDir(root: RootTree, inTree: string, mode = 0o755): Promise<void> {
  await root.assertNoSymlinks(inTree);
  const first = await mkdir(root.path(inTree), { recursive: true, mode });
  if (first !== undefined) {
    // The directories made, from the first one down to inTree, get the policy's labels.
    const made: string[] = [];
    for (let p = path.posix.normalize(inTree); ; p = path.posix.dirname(p)) {
      made.unshift(p);
      if (root.path(p) === path.resolve(first) || p === '/') break;
    }
    await restoreContexts(root, made);
  }
}

/**
 * Creates a file that must not exist yet (O_EXCL|O_NOFOLLOW: a planted file or link makes it
 * fail), with its content, owner and mode, fsynced; on any failure it is removed again.
 */
export async function writeNewFile(hostPath: string, data: string | Buffer, own: Ownership): Promise<void> {
  const handle = await open(hostPath, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600);
  try {
    await handle.writeFile(data);
    if (own.uid !== undefined || own.gid !== undefined) await handle.chown(own.uid ?? 0, own.gid ?? 0);
    await handle.chmod(own.mode);
    // Crash safety: the name must never be renamed onto blocks not yet on disk (an empty file after a crash).
    await handle.sync();
  } catch (err) {
    await handle.close();
    await unlink(hostPath).catch(() => undefined);
    throw err;
  }
  await handle.close();
}

/**
 * Writes a file the crash-safe way: a temp file beside the target (O_EXCL|O_NOFOLLOW, so a
 * planted link cannot redirect it), fsync, rename over the target, fsync the directory.
 * Killed at any instant, the target holds either the old or the new content, never a mix.
 */
export async function writeTreeFileAtomic(root: RootTree, inTree: string, data: string | Buffer, own: Ownership): Promise<void> {
  await root.assertNoSymlinks(inTree);
  const target = root.path(inTree);
  const dir = path.dirname(target);
  const existing = await statTree(root, inTree);
  if (existing && !existing.isFile()) throw new ImprintError(`refusing ${inTree}: not a regular file`, 'unsafe-path');
  const temp = path.join(dir, `.imprint-${randomBytes(6).toString('hex')}.tmp`);
  await writeNewFile(temp, data, own);
  crashPoint(`before rename ${inTree}`);
  await rename(temp, target);
  // Crash safety: the rename is on disk before the state file can record the change as done.
  await fsyncDir(dir);
  crashPoint(`after rename ${inTree}`);
  await restoreContexts(root, [inTree]);
}

/**
 * Moves a prepared file (already in the target's directory) over the target, durably. With
 * `syncDir: false` the caller makes it durable with the next rename in the same directory
 * (a key pair: the private half, then the public one, one directory sync for both).
 */
export async function replaceTreeFile(root: RootTree, fromHostPath: string, inTree: string, opts: { syncDir?: boolean } = {}): Promise<void> {
  await root.assertNoSymlinks(inTree);
  const target = root.path(inTree);
  if (path.dirname(fromHostPath) !== path.dirname(target)) throw new ImprintError(`internal: ${fromHostPath} is not beside ${inTree}`);
  crashPoint(`before rename ${inTree}`);
  await rename(fromHostPath, target);
  // Crash safety: the rename is on disk before the state file can record the change as done.
  if (opts.syncDir !== false) await fsyncDir(path.dirname(target));
  crashPoint(`after rename ${inTree}`);
  await restoreContexts(root, [inTree]);
}

export async function setTreeOwnership(root: RootTree, inTree: string, own: Ownership): Promise<void> {
  await root.assertNoSymlinks(inTree);
  const host = root.path(inTree);
  if (own.uid !== undefined || own.gid !== undefined) await chown(host, own.uid ?? 0, own.gid ?? 0);
  await chmod(host, own.mode);
}

/**
 * Overwrites a file's blocks with random bytes, then unlinks it. A file with other hard links
 * is only unlinked: overwriting it would destroy the other name's content. Honest limits:
 * journaling and copy-on-write filesystems and SSDs may keep old blocks elsewhere.
 */
export async function shredTreeFile(root: RootTree, inTree: string): Promise<'shredded' | 'unlinked' | 'absent'> {
  await root.assertNoSymlinks(path.posix.dirname(inTree));
  const host = root.path(inTree);
  const info = await statTree(root, inTree);
  if (!info) return 'absent';
  if (info.isSymbolicLink()) {
    // A link named like a key: remove the link itself, never touch what it points at.
    await unlink(host);
    crashPoint(`unlink ${inTree}`);
    return 'unlinked';
  }
  if (!info.isFile()) throw new ImprintError(`refusing to remove ${inTree}: not a regular file`, 'unsafe-path');
  let result: 'shredded' | 'unlinked' = 'unlinked';
  if (info.nlink === 1 && info.size > 0) {
    const handle = await open(host, constants.O_WRONLY | constants.O_NOFOLLOW);
    try {
      await handle.write(randomBytes(info.size), 0, info.size, 0);
      // Needed: the dirty pages of a file unlinked before writeback are dropped, never written, so without it the old key stays on disk.
      await handle.sync();
    } finally {
      await handle.close();
    }
    result = 'shredded';
    crashPoint(`shred ${inTree}`);
  }
  // No directory sync: the content is already overwritten on disk, so a crash that undoes the
  // unlink brings back random bytes only, and the task is not yet recorded done (it runs again).
  await unlink(host);
  crashPoint(`unlink ${inTree}`);
  return result;
}

export async function removeTreeDir(root: RootTree, inTree: string): Promise<void> {
  await root.assertNoSymlinks(inTree);
  await rmdir(root.path(inTree)).catch((err: NodeJS.ErrnoException) => {
    if (err.code !== 'ENOENT') throw err;
  });
}
