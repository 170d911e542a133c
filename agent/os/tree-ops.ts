import { constants as C, type Stats } from 'node:fs';
import { lstat, open, readdir, readlink, rmdir, statfs, unlink, type FileHandle } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { crashPoint } from './crash.js';
import { ImprintError } from './errors.js';
import type { RootTree } from './root.js';

// Removing things from a tree (imprint seal) without ever following a link out of it. A
// directory is opened component by component from the tree's root with O_NOFOLLOW, and every
// later step names entries relative to the descriptor held, through /proc/self/fd/N/name (the
// kernel resolves that to the very directory we opened, whatever was renamed or swapped for a
// link since). Without /proc, the same steps use paths, checked for links just before.
// Files are opened O_NOFOLLOW|O_NONBLOCK (a FIFO swapped in cannot hang us) and checked on the
// descriptor: only a regular file with a single link is overwritten or truncated (a hard link
// could be /etc/shadow's other name). Trees are removed one filesystem at a time: a directory on
// another device (a mount point) is never descended into.

const DIR_FLAGS = C.O_RDONLY | C.O_DIRECTORY | C.O_NOFOLLOW;
const FILE_WRITE_FLAGS = C.O_WRONLY | C.O_NOFOLLOW | C.O_NONBLOCK;
const FILE_READ_FLAGS = C.O_RDONLY | C.O_NOFOLLOW | C.O_NONBLOCK;
const FILE_SHRED_FLAGS = C.O_RDWR | C.O_NOFOLLOW | C.O_NONBLOCK;
/** Granularity of the sparse-file overwrite: a block that reads all zeros is a hole or holds nothing. */
const BLOCK = 4096;
/** How much of a sparse file is read looking for its data (holes read fast, but not for free). */
const SPARSE_SCAN_LIMIT = 64 * 1024 * 1024 * 1024;
const CHUNK = 1024 * 1024;

let procFd: Promise<boolean> | null = null;

function haveProcFd(): Promise<boolean> {
  procFd ??= lstat('/proc/self/fd').then((s) => s.isDirectory(), () => false);
  return procFd;
}

function code(err: unknown): string | undefined {
  return (err as NodeJS.ErrnoException | undefined)?.code;
}

function checkName(name: string | Buffer): void {
  const s = typeof name === 'string' ? name : name.toString('latin1');
  if (s === '' || s === '.' || s === '..' || s.includes('/') || s.includes('\0')) throw new ImprintError(`internal: "${s}" is not a directory entry name`);
}

/** A directory of the tree held open; entries are addressed through its descriptor. */
export class TreeDir {
  private constructor(
    readonly handle: FileHandle,
    /** In-tree path, for messages. */
    readonly inTree: string,
    private readonly host: string,
    private readonly proc: boolean,
    readonly stat: Stats,
  ) {}

  /**
   * Opens an in-tree directory without following a link in any component below the root.
   * null when a component does not exist; an unsafe-path error when one is a link or a file.
   */
  static async open(root: RootTree, inTree: string): Promise<TreeDir | null> {
    const proc = await haveProcFd();
    const parts = path.posix.normalize(inTree).split('/').filter(Boolean);
    let host = root.isLive ? '/' : root.dir;
    const top = await open(host, C.O_RDONLY | C.O_DIRECTORY);
    let current = new TreeDir(top, '/', host, proc, await top.stat());
    let soFar = '';
    for (const part of parts) {
      soFar = `${soFar}/${part}`;
      let next: TreeDir | null;
      try {
        if (!proc) await root.assertNoSymlinks(soFar);
        // A name that is not valid UTF-8 reads with U+FFFD: reached by its bytes.
        const raw = (await current.resolve(part))[0];
        next = raw === undefined ? null : await current.openDir(raw, soFar);
      } catch (err) {
        await current.close();
        throw err;
      }
      await current.close();
      if (!next) return null;
      current = next;
      host = path.join(host, part);
    }
    return current;
  }

  /** Opens an entry of this directory as a directory: null if absent; refuses a link or a non-directory. */
  async openDir(name: string | Buffer, inTree: string): Promise<TreeDir | null> {
    checkName(name);
    let handle: FileHandle;
    try {
      handle = await open(this.at(name), DIR_FLAGS);
    } catch (err) {
      if (code(err) === 'ENOENT') return null;
      if (code(err) === 'ELOOP') throw new ImprintError(`refusing ${inTree}: it is a symlink (never followed)`, 'unsafe-path');
      if (code(err) === 'ENOTDIR') {
        const info = await lstat(this.at(name)).catch(() => null);
        throw new ImprintError(`refusing ${inTree}: ${info?.isSymbolicLink() ? 'it is a symlink (never followed)' : 'not a directory'}`, 'unsafe-path');
      }
      throw err;
    }
    const host = path.join(this.host, typeof name === 'string' ? name : name.toString('utf8'));
    return new TreeDir(handle, inTree, host, this.proc, await handle.stat());
  }

  /** A path naming `name` inside this very directory. */
  at(name: string | Buffer): string | Buffer {
    const prefix = this.proc ? `/proc/self/fd/${this.handle.fd}/` : `${this.host}/`;
    return typeof name === 'string' ? `${prefix}${name}` : Buffer.concat([Buffer.from(prefix), name]);
  }

  /** A path naming the directory itself (for readdir). */
  get self(): string {
    return this.proc ? `/proc/self/fd/${this.handle.fd}` : this.host;
  }

  async names(): Promise<Buffer[]> {
    return readdir(this.self, { encoding: 'buffer' });
  }

  /**
   * The raw names of the entries whose UTF-8 reading is `name`. Usually just `name`; a name that
   * is not valid UTF-8 reads with U+FFFD in it and can only be reached by its bytes.
   */
  async resolve(name: string): Promise<(string | Buffer)[]> {
    if (!name.includes('\uFFFD')) return [name];
    return (await this.names()).filter((n) => n.toString('utf8') === name);
  }

  async lstat(name: string | Buffer): Promise<Stats | null> {
    checkName(name);
    try {
      return await lstat(this.at(name));
    } catch (err) {
      if (code(err) === 'ENOENT') return null;
      throw err;
    }
  }

  async sync(): Promise<void> {
    // Seal: the image captured after seal must not get back an entry seal removed.
    await this.handle.sync();
  }

  async close(): Promise<void> {
    await this.handle.close().catch(() => undefined);
  }
}

let noise: Buffer | null = null;

/** Overwrites the first `size` bytes of an open file with random data, then fsyncs it. */
async function overwrite(handle: FileHandle, size: number): Promise<void> {
  noise ??= randomBytes(CHUNK);
  for (let pos = 0; pos < size;) {
    const { bytesWritten } = await handle.write(noise, 0, Math.min(CHUNK, size - pos), pos);
    if (bytesWritten <= 0) throw new ImprintError('short write while overwriting');
    pos += bytesWritten;
  }
  // Needed: an overwrite left in the page cache of a file about to be unlinked never reaches the disk.
  await handle.sync();
}

/**
 * Overwrites only the blocks of a sparse file that hold data (a block that reads non-zero is
 * allocated; writing over it allocates nothing, so a file far larger than its filesystem does
 * not fill the disk). Node has no SEEK_DATA, so the file is read; the read stops once as many
 * bytes as are allocated have been overwritten, or at SPARSE_SCAN_LIMIT. Returns what could not
 * be done, or null when all the data was overwritten.
 */
async function overwriteAllocated(handle: FileHandle, size: number, allocated: number): Promise<string | null> {
  noise ??= randomBytes(CHUNK);
  const buf = Buffer.alloc(CHUNK);
  const zero = Buffer.alloc(BLOCK);
  let pos = 0;
  let written = 0;
  while (pos < size && written < allocated && pos < SPARSE_SCAN_LIMIT) {
    const { bytesRead } = await handle.read(buf, 0, Math.min(CHUNK, size - pos), pos);
    if (bytesRead <= 0) break;
    for (let off = 0; off < bytesRead; off += BLOCK) {
      const len = Math.min(BLOCK, bytesRead - off);
      if (buf.subarray(off, off + len).equals(zero.subarray(0, len))) continue;
      const { bytesWritten } = await handle.write(noise, off % CHUNK, len, pos + off);
      if (bytesWritten !== len) throw new ImprintError('short write while overwriting');
      written += len;
    }
    pos += bytesRead;
  }
  // Needed: an overwrite left in the page cache of a file about to be unlinked never reaches the disk.
  await handle.sync();
  if (pos >= size || written >= allocated) return null;
  return `sparse file of ${size} bytes (${allocated} allocated): only its first ${pos} bytes were read and their data overwritten; the rest was unlinked without overwriting`;
}

export type ShredOutcome = 'shredded' | 'unlinked' | 'absent';

/**
 * Overwrites a regular file in place (random bytes, fsync) and unlinks it. A file with other
 * hard links, or an empty one, is only unlinked. A link, or anything but a regular file, is
 * refused: the caller decided on a file. Honest limit: journaling and copy-on-write filesystems
 * and SSDs may keep old blocks elsewhere.
 */
export async function shredAt(dir: TreeDir, name: string | Buffer, inTree: string, problems: string[] = []): Promise<ShredOutcome> {
  const info = await dir.lstat(name);
  if (!info) return 'absent';
  if (info.isSymbolicLink()) throw new ImprintError(`refusing ${inTree}: it is a symlink (never followed)`, 'unsafe-path');
  if (!info.isFile()) throw new ImprintError(`refusing ${inTree}: not a regular file`, 'unsafe-path');
  let outcome: ShredOutcome = 'unlinked';
  let handle: FileHandle;
  try {
    handle = await open(dir.at(name), FILE_SHRED_FLAGS);
  } catch (err) {
    if (code(err) === 'ENOENT') return 'absent';
    if (code(err) === 'ELOOP') throw new ImprintError(`refusing ${inTree}: it became a symlink (never followed)`, 'unsafe-path');
    throw err;
  }
  try {
    const held = await handle.stat();
    if (!held.isFile()) throw new ImprintError(`refusing ${inTree}: not a regular file`, 'unsafe-path');
    if (held.nlink === 1 && held.size > 0) {
      // The secret must go even when the overwrite cannot be done (a full disk, a
      // copy-on-write filesystem): the file is unlinked whatever happens here, and what the
      // overwrite could not do is said.
      try {
        const allocated = held.blocks * 512;
        const gap = allocated < held.size ? await overwriteAllocated(handle, held.size, allocated) : (await overwrite(handle, held.size), null);
        if (gap === null) outcome = 'shredded';
        else problems.push(`${inTree}: ${gap}`);
      } catch (err) {
        problems.push(`${inTree}: the overwrite failed (${code(err) ?? (err as Error).message}); unlinked without it`);
      }
      crashPoint(`shred ${inTree}`);
    }
  } finally {
    await handle.close();
  }
  await unlink(dir.at(name));
  crashPoint(`unlink ${inTree}`);
  return outcome;
}

/** Unlinks a name that is not a directory (a file, a link: never what a link points at). */
export async function unlinkAt(dir: TreeDir, name: string | Buffer, inTree: string): Promise<boolean> {
  const info = await dir.lstat(name);
  if (!info) return false;
  if (info.isDirectory()) throw new ImprintError(`refusing ${inTree}: a directory, not a file`, 'unsafe-path');
  try {
    await unlink(dir.at(name));
  } catch (err) {
    if (code(err) === 'ENOENT') return false;
    throw err;
  }
  crashPoint(`unlink ${inTree}`);
  return true;
}

/** Truncates a regular, singly linked file to zero bytes in place (inode, mode and owner kept). Returns the size it had. */
export async function truncateAt(dir: TreeDir, name: string | Buffer, inTree: string): Promise<number | null> {
  let handle: FileHandle;
  try {
    handle = await open(dir.at(name), FILE_WRITE_FLAGS);
  } catch (err) {
    if (code(err) === 'ENOENT') return null;
    if (code(err) === 'ELOOP') throw new ImprintError(`refusing ${inTree}: it is a symlink (never followed)`, 'unsafe-path');
    throw err;
  }
  try {
    const held = await handle.stat();
    if (!held.isFile()) throw new ImprintError(`refusing ${inTree}: not a regular file`, 'unsafe-path');
    if (held.nlink !== 1) throw new ImprintError(`refusing ${inTree}: it has ${held.nlink} hard links (emptying it would empty the other names too)`, 'unsafe-path');
    if (held.size === 0) return 0;
    await handle.truncate(0);
    // Seal: the emptied log is empty in the image captured afterwards, not only in the page cache.
    await handle.sync();
    crashPoint(`truncate ${inTree}`);
    return held.size;
  } finally {
    await handle.close();
  }
}

export interface TreeRemoval {
  files: number;
  bytes: number;
  shredded: number;
  /** Mount points met inside the tree: left in place, never descended into (nor their parents removed). */
  keptMounts: string[];
  /** What an overwrite could not do (the files were unlinked all the same). */
  problems: string[];
}

/**
 * Removes a directory and everything under it, bottom up. Regular files are shredded first when
 * `shred` (single-link ones; see shredAt); links and other non-directories are unlinked, never
 * followed. A directory on another filesystem than the top one is refused, not descended into.
 */
export async function removeTreeAt(dir: TreeDir, name: string | Buffer, inTree: string, shred: boolean, mounts: ReadonlySet<string> = new Set()): Promise<TreeRemoval> {
  const tally: TreeRemoval = { files: 0, bytes: 0, shredded: 0, keptMounts: [], problems: [] };
  const top = await dir.lstat(name);
  if (!top) return tally;
  if (!top.isDirectory()) throw new ImprintError(`refusing ${inTree}: ${top.isSymbolicLink() ? 'it is a symlink (never followed)' : 'not a directory'}`, 'unsafe-path');
  await removeEntry(dir, name, inTree, shred, dir.stat.dev, tally, mounts);
  await dir.sync();
  return tally;
}

/** Removes one entry; false when something had to be kept in it (a mount point), so it stays. */
async function removeEntry(dir: TreeDir, name: string | Buffer, inTree: string, shred: boolean, dev: number, tally: TreeRemoval, mounts: ReadonlySet<string>): Promise<boolean> {
  const info = await dir.lstat(name);
  if (!info) return true;
  // A mount point (from the kernel's table: a bind mount has the same device) or another
  // filesystem: what is there may be outside the tree. Never descended into, never removed.
  if (mounts.has(inTree) || (info.isDirectory() && info.dev !== dev)) {
    tally.keptMounts.push(inTree);
    return false;
  }
  if (info.isDirectory()) {
    const child = await dir.openDir(name, inTree);
    if (!child) return true;
    let whole = true;
    try {
      if (child.stat.dev !== dev || child.stat.ino !== info.ino) throw new ImprintError(`refusing ${inTree}: it changed while being removed`, 'unsafe-path');
      for (const entry of await child.names()) {
        whole = (await removeEntry(child, entry, `${inTree}/${entry.toString('utf8')}`, shred, dev, tally, mounts)) && whole;
      }
      await child.sync();
    } finally {
      await child.close();
    }
    if (!whole) return false;
    try {
      await rmdir(dir.at(name));
    } catch (err) {
      if (code(err) !== 'ENOENT') throw err;
    }
    crashPoint(`rmdir ${inTree}`);
    return true;
  }
  tally.files += 1;
  if (info.isFile()) tally.bytes += info.size;
  if (info.isFile() && shred) {
    const outcome = await shredAt(dir, name, inTree, tally.problems);
    if (outcome === 'shredded') tally.shredded += 1;
    return true;
  }
  await unlinkAt(dir, name, inTree);
  return true;
}

/** The first bytes of a regular file, never through a link and never blocking on a FIFO; null if it is not a regular file. */
export async function readTreeHead(root: RootTree, inTree: string, maxBytes: number): Promise<Buffer | null> {
  return readHostHead(root.path(inTree), maxBytes);
}

/** readTreeHead for a host path already resolved inside the tree (a Buffer for names that are not UTF-8). */
export async function readHostHead(hostPath: string | Buffer, maxBytes: number): Promise<Buffer | null> {
  let handle: FileHandle;
  try {
    handle = await open(hostPath, FILE_READ_FLAGS);
  } catch (err) {
    if (['ENOENT', 'ELOOP', 'EACCES', 'ENXIO', 'EPERM'].includes(code(err) ?? '')) return null;
    throw err;
  }
  try {
    const info = await handle.stat();
    if (!info.isFile()) return null;
    const buffer = Buffer.alloc(Math.min(maxBytes, info.size));
    let filled = 0;
    while (filled < buffer.length) {
      const { bytesRead } = await handle.read(buffer, filled, buffer.length - filled, filled);
      if (bytesRead === 0) break;
      filled += bytesRead;
    }
    return buffer.subarray(0, filled);
  } finally {
    await handle.close();
  }
}

/** Where a link points (for messages); null when it is not a link. */
export async function readTreeLink(root: RootTree, inTree: string): Promise<string | null> {
  return readlink(root.path(inTree)).catch(() => null);
}

export interface FilesystemSpace {
  /** Filesystem type magic (statfs f_type). */
  type: number;
  /** Bytes a root process may still write (reserved blocks included). */
  free: number;
}

const TMPFS = 0x01021994;
const RAMFS = 0x858458f6;
const VIRTUAL = new Set([TMPFS, RAMFS, 0x9fa0 /* proc */, 0x62656572 /* sysfs */, 0x1cd1 /* devpts */, 0x27e0eb /* cgroup */, 0x63677270 /* cgroup2 */]);

export function isMemoryFilesystem(type: number): boolean {
  return VIRTUAL.has(type);
}

export async function treeSpace(root: RootTree, inTree: string): Promise<FilesystemSpace | null> {
  try {
    const s = await statfs(root.path(inTree));
    return { type: s.type, free: s.bfree * s.bsize };
  } catch (err) {
    if (code(err) === 'ENOENT' || code(err) === 'ENOTDIR') return null;
    throw err;
  }
}

export const ZERO_FILL_NAME = '.imprint-zero-fill';

/**
 * Writes zeros to a new file in the held directory until the filesystem is full (ENOSPC,
 * EDQUOT, EFBIG) or `limit` bytes, fsyncs it, then removes it. Returns the bytes written.
 * Freed blocks then hold zeros, which compress to nothing; on a thin-provisioned disk, `fstrim`
 * afterwards hands them back.
 */
export async function zeroFill(dir: TreeDir, inTree: string, limit: number): Promise<number> {
  const name = ZERO_FILL_NAME;
  const handle = await open(dir.at(name), C.O_WRONLY | C.O_CREAT | C.O_EXCL | C.O_NOFOLLOW, 0o600);
  let written = 0;
  try {
    const zeros = Buffer.alloc(CHUNK);
    crashPoint(`zero-fill ${inTree}`);
    for (;;) {
      const want = Math.min(CHUNK, limit - written);
      if (want <= 0) break;
      try {
        const { bytesWritten } = await handle.write(zeros, 0, want, written);
        if (bytesWritten <= 0) break;
        written += bytesWritten;
      } catch (err) {
        if (['ENOSPC', 'EDQUOT', 'EFBIG'].includes(code(err) ?? '')) break;
        throw err;
      }
    }
    // Needed: zeros still in the page cache of a file about to be unlinked never reach the free blocks.
    await handle.sync().catch((err: unknown) => {
      if (code(err) !== 'ENOSPC') throw err;
    });
  } finally {
    await handle.close();
    await unlink(dir.at(name)).catch(() => undefined);
    await dir.sync().catch(() => undefined);
  }
  crashPoint(`zero-fill done ${inTree}`);
  return written;
}
