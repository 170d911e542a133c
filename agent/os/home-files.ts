import { constants as C, type Stats } from 'node:fs';
import { lstat, mkdir, open, readdir, rename, rmdir, unlink, type FileHandle } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { parseAccountFile, passwdEntries } from '../parsers/accounts.js';
import { ParseError } from '../parsers/errors.js';
import { crashPoint } from './crash.js';
import { ImprintError } from './errors.js';
import { readTreeText, writeNewFile } from './files.js';
import type { RootTree } from './root.js';
import { restoreContexts } from './selinux.js';

// Files in a user's home (~/.ssh/authorized_keys), written the way OpenSSH's StrictModes wants
// them and so that nobody who controls the home can redirect the write: every component from
// the tree's root down is opened with O_NOFOLLOW and checked on its descriptor (fstat), and
// every later step is taken relative to the descriptor already checked, through
// /proc/self/fd/N/name, which the kernel resolves to that very directory (openat without
// openat). Without /proc the same steps use paths, and the chain is checked again just before
// the rename. Rules, from OpenSSH's safe_path() and the design's invariant 2:
//  - no symlink anywhere below the root of the tree;
//  - every directory from / down to the home owned by root or the user, not group/world-writable;
//  - directories below the home (~/.ssh) owned by the user, not group/world-writable; when
//    missing, made under a temp name, chowned/chmodded 0700 on their descriptor, then renamed;
//  - an existing file is a regular file with one link (a hard link could be /etc/shadow), owned
//    by the user or by root (and then readable by the user: its content is handed to the user);
//  - the file is replaced atomically: temp file (O_CREAT|O_EXCL|O_NOFOLLOW) → fchown → fchmod
//    0600 → fsync → rename → fsync the directory.

export interface HomeUser {
  name: string;
  uid: number;
  gid: number;
  /** The home directory, an absolute path inside the tree. */
  home: string;
}

export interface HomeWriteResult {
  /** In-tree paths of the directories that were created (~/.ssh). */
  createdDirs: string[];
  /** The file existed before and was replaced. */
  replaced: boolean;
  /** The mode of the file that was replaced (null when there was none). */
  previousMode: number | null;
}

/** Largest file read back from a home (authorized_keys of thousands of keys fits). */
export const MAX_HOME_FILE_BYTES = 1024 * 1024;

/** The account from the tree's /etc/passwd: uid, gid and a home that is a plain absolute path. */
export async function lookupUser(root: RootTree, name: string): Promise<HomeUser> {
  const text = await readTreeText(root, '/etc/passwd');
  if (text === null) throw new ImprintError('/etc/passwd does not exist');
  let entry;
  try {
    entry = passwdEntries(parseAccountFile(text, 'passwd', '/etc/passwd')).find((e) => e.name === name);
  } catch (err) {
    if (err instanceof ParseError) throw new ImprintError(`cannot read /etc/passwd: ${err.message}`);
    throw err;
  }
  if (!entry) throw new ImprintError(`user ${name} is not in /etc/passwd`);
  if (!Number.isInteger(entry.uid) || entry.uid < 0 || !Number.isInteger(entry.gid) || entry.gid < 0) {
    throw new ImprintError(`user ${name} has no valid uid/gid in /etc/passwd`);
  }
  const home = entry.home.length > 1 ? entry.home.replace(/\/$/, '') : entry.home;
  const plain = home === '/' || (home.startsWith('/') && home.slice(1).split('/').every((c) => c !== '' && c !== '.' && c !== '..'));
  if (!plain) throw new ImprintError(`user ${name} has home "${entry.home}", not a plain absolute path`, 'unsafe-path');
  return { name, uid: entry.uid, gid: entry.gid, home };
}

/** The in-tree path of a file under the user's home. */
export function homePath(user: HomeUser, rel: string): string {
  return path.posix.join(user.home, rel);
}

// --- descriptors ----------------------------------------------------------------------------

let procFd: Promise<boolean> | null = null;

/** Whether /proc/self/fd resolves descriptors (Linux with procfs mounted). */
function haveProcFd(): Promise<boolean> {
  procFd ??= lstat('/proc/self/fd').then((s) => s.isDirectory(), () => false);
  return procFd;
}

/** Forces the way directories are addressed: true = /proc/self/fd, false = paths (as without /proc), null = detect. For tests. */
export function setProcFdMode(mode: boolean | null): void {
  procFd = mode === null ? null : Promise.resolve(mode);
}

interface HeldDir {
  handle: FileHandle;
  /** Host path, for the path-based fallback and for the final re-check. */
  host: string;
  inTree: string;
  stat: Stats;
}

class DirChain {
  readonly held: HeldDir[] = [];

  constructor(private readonly proc: boolean) {}

  /** A path that names `name` inside the held directory `dir`, whatever happened to its path since. */
  at(dir: HeldDir, name: string): string {
    return this.proc ? `/proc/self/fd/${dir.handle.fd}/${name}` : path.join(dir.host, name);
  }

  get last(): HeldDir {
    return this.held[this.held.length - 1] as HeldDir;
  }

  /** Every held directory still sits at its path (same device and inode): nothing was swapped. */
  async verify(): Promise<void> {
    for (const dir of this.held) {
      const now = await lstat(dir.host).catch(() => null);
      if (!now || now.isSymbolicLink() || now.dev !== dir.stat.dev || now.ino !== dir.stat.ino) {
        throw new ImprintError(`refusing ${dir.inTree}: it changed while imprint was writing (replaced or moved)`, 'unsafe-path');
      }
    }
  }

  async close(): Promise<void> {
    await Promise.all(this.held.map((d) => d.handle.close().catch(() => undefined)));
    this.held.length = 0;
  }
}

const TEMP_NAME = /^\.imprint-[0-9a-f]{12}\.tmp$/;
const DIR_FLAGS = C.O_RDONLY | C.O_DIRECTORY | C.O_NOFOLLOW;
const octal = (mode: number): string => `0${(mode & 0o7777).toString(8).padStart(3, '0')}`;

function refuse(inTree: string, why: string): never {
  throw new ImprintError(`refusing ${inTree}: ${why}`, 'unsafe-path');
}

/** Opens a directory entry of `parent` without following a link; null when it does not exist. */
async function openChildDir(chain: DirChain, parent: HeldDir, name: string, inTree: string): Promise<HeldDir | null> {
  const where = chain.at(parent, name);
  let handle: FileHandle;
  try {
    handle = await open(where, DIR_FLAGS);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return null;
    if (code === 'ELOOP') refuse(inTree, 'it is a symlink (nothing under a home is followed)');
    if (code === 'ENOTDIR') {
      const info = await lstat(where).catch(() => null);
      refuse(inTree, info?.isSymbolicLink() ? 'it is a symlink (nothing under a home is followed)' : 'it is not a directory');
    }
    throw err;
  }
  const dir: HeldDir = { handle, host: path.join(parent.host, name), inTree, stat: await handle.stat() };
  chain.held.push(dir);
  return dir;
}

function checkDir(dir: HeldDir, owners: readonly number[], whose: string): void {
  const { stat, inTree } = dir;
  if (!stat.isDirectory()) refuse(inTree, 'it is not a directory');
  if (!owners.includes(stat.uid)) refuse(inTree, `owned by uid ${stat.uid}, not ${whose} (StrictModes)`);
  if ((stat.mode & 0o022) !== 0) refuse(inTree, `group/world-writable (mode ${octal(stat.mode)}; StrictModes)`);
}

function splitRel(rel: string): string[] {
  const parts = rel.split('/');
  if (rel.startsWith('/') || parts.some((p) => p === '' || p === '.' || p === '..')) throw new ImprintError(`internal: ${rel} is not a plain relative path`);
  return parts;
}

/**
 * Opens and checks the chain root → home → the directories of `relDir` under the home.
 * Missing directories under the home are created (0700, the user's) when `create`; else the
 * result is null. A missing home is never created: null, or an error when `create`.
 */
async function openHomeChain(root: RootTree, user: HomeUser, relDirs: string[], create: boolean): Promise<{ chain: DirChain; created: string[] } | null> {
  const chain = new DirChain(await haveProcFd());
  const created: string[] = [];
  const rootOwners = [0, user.uid];
  try {
    const rootHost = root.isLive ? '/' : root.dir;
    const rootHandle = await open(rootHost, C.O_RDONLY | C.O_DIRECTORY);
    chain.held.push({ handle: rootHandle, host: rootHost, inTree: '/', stat: await rootHandle.stat() });
    checkDir(chain.last, rootOwners, `root or ${user.name}`);

    const homeParts = user.home.split('/').filter(Boolean);
    let inTree = '';
    for (const [i, name] of homeParts.entries()) {
      inTree = `${inTree}/${name}`;
      const dir = await openChildDir(chain, chain.last, name, inTree);
      if (!dir) {
        if (create) throw new ImprintError(`${user.name}'s home ${user.home} does not exist (${inTree} is missing); imprint does not create homes`);
        await chain.close();
        return null;
      }
      const isHome = i === homeParts.length - 1;
      checkDir(dir, rootOwners, isHome ? `${user.name} (the home's owner) or root` : `root or ${user.name}`);
    }

    for (const name of relDirs) {
      inTree = `${inTree}/${name}`;
      let dir = await openChildDir(chain, chain.last, name, inTree);
      if (!dir) {
        if (!create) {
          await chain.close();
          return null;
        }
        dir = await makeUserDir(chain, user, name, inTree);
        created.push(inTree);
      }
      checkDir(dir, [user.uid], user.name);
    }
    return { chain, created };
  } catch (err) {
    await chain.close();
    throw err;
  }
}

/**
 * Creates a directory for the user in the held parent so that it appears complete or not at
 * all: mkdir under a temp name (0700), open it without following, fchown/fchmod on that
 * descriptor, fsync, then rename it to its name. A crash leaves at most an empty temp directory,
 * never a root-owned ~/.ssh that the next run would have to refuse.
 */
async function makeUserDir(chain: DirChain, user: HomeUser, name: string, inTree: string): Promise<HeldDir> {
  const parent = chain.last;
  // What an earlier run killed mid-way left: empty temp directories of ours (rmdir neither
  // follows a link nor removes anything that is not an empty directory).
  for (const stale of (await readdir(chain.at(parent, '.')).catch(() => [] as string[])).filter((n) => TEMP_NAME.test(n))) {
    await rmdir(chain.at(parent, stale)).catch(() => undefined);
  }
  const tempName = `.imprint-${randomBytes(6).toString('hex')}.tmp`;
  const temp = chain.at(parent, tempName);
  await mkdir(temp, { mode: 0o700 });
  let made: Stats;
  try {
    const handle = await open(temp, DIR_FLAGS);
    try {
      made = await handle.stat();
      const me = process.geteuid?.() ?? 0;
      if (!made.isDirectory() || made.uid !== me) refuse(inTree, 'the directory being created was replaced');
      await handle.chown(user.uid, user.gid);
      await handle.chmod(0o700);
      // Crash safety: the directory's owner and mode are on disk before its name appears.
      await handle.sync();
    } finally {
      await handle.close();
    }
    crashPoint(`before rename ${inTree}`);
    await rename(temp, chain.at(parent, name));
  } catch (err) {
    await rmdir(temp).catch(() => undefined);
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOTDIR' || code === 'ENOTEMPTY' || code === 'EEXIST' || code === 'EISDIR') refuse(inTree, 'it appeared while imprint was creating it');
    throw err;
  }
  // Crash safety: ~/.ssh exists on disk before the key file written into it is recorded done.
  await parent.handle.sync();
  crashPoint(`after rename ${inTree}`);
  const dir = await openChildDir(chain, parent, name, inTree);
  if (!dir || dir.stat.dev !== made.dev || dir.stat.ino !== made.ino) refuse(inTree, 'it was replaced right after it was created');
  return dir;
}

/** The checks an existing file must pass before its content is read or it is replaced. */
function checkFile(info: Stats, user: HomeUser, inTree: string): void {
  if (info.isSymbolicLink()) refuse(inTree, 'it is a symlink (nothing under a home is followed)');
  if (!info.isFile()) refuse(inTree, 'it is not a regular file');
  if (info.nlink !== 1) refuse(inTree, `it has ${info.nlink} hard links (it could be another file, such as /etc/shadow)`);
  if (info.uid !== user.uid && info.uid !== 0) refuse(inTree, `owned by uid ${info.uid}, not ${user.name} or root`);
  if (info.uid === 0 && user.uid !== 0) {
    // Its content ends up in a file the user owns: only if the user could read it already.
    const readable = (info.mode & 0o004) !== 0 || ((info.mode & 0o040) !== 0 && info.gid === user.gid);
    if (!readable) refuse(inTree, `owned by root and not readable by ${user.name} (mode ${octal(info.mode)})`);
  }
}

async function lstatOrNull(p: string): Promise<Stats | null> {
  try {
    return await lstat(p);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  }
}

/**
 * Reads `rel` (".ssh/authorized_keys") under the user's home after checking the whole chain;
 * null when the home, a directory on the way or the file does not exist. Never follows a link,
 * never opens anything but a regular file with a single link, at most maxBytes.
 */
export async function readHomeFile(root: RootTree, user: HomeUser, rel: string, maxBytes = MAX_HOME_FILE_BYTES): Promise<Buffer | null> {
  const parts = splitRel(rel);
  const name = parts.pop() as string;
  const opened = await openHomeChain(root, user, parts, false);
  if (!opened) return null;
  const { chain } = opened;
  const inTree = homePath(user, rel);
  try {
    const where = chain.at(chain.last, name);
    const before = await lstatOrNull(where);
    if (!before) return null;
    checkFile(before, user, inTree);
    let handle: FileHandle;
    try {
      handle = await open(where, C.O_RDONLY | C.O_NOFOLLOW | C.O_NONBLOCK | C.O_NOCTTY);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ELOOP') refuse(inTree, 'it is a symlink (nothing under a home is followed)');
      throw err;
    }
    try {
      const info = await handle.stat();
      if (info.dev !== before.dev || info.ino !== before.ino) refuse(inTree, 'it was replaced while being read');
      checkFile(info, user, inTree);
      if (info.size > maxBytes) refuse(inTree, `larger than ${maxBytes} bytes`);
      const data = Buffer.alloc(info.size + 1);
      let got = 0;
      while (got < data.length) {
        const { bytesRead } = await handle.read(data, got, data.length - got, got);
        if (bytesRead === 0) break;
        got += bytesRead;
      }
      if (got > info.size) refuse(inTree, 'it grew while being read');
      return data.subarray(0, got);
    } finally {
      await handle.close();
    }
  } finally {
    await chain.close();
  }
}

/**
 * Replaces `rel` under the user's home with `data`, owned by the user, mode 0600, creating the
 * directories on the way (0700, the user's). Refuses, changing nothing, when any rule above is
 * broken; an existing file is checked as readHomeFile checks it.
 */
export async function writeHomeFile(root: RootTree, user: HomeUser, rel: string, data: string | Buffer): Promise<HomeWriteResult> {
  const parts = splitRel(rel);
  const name = parts.pop() as string;
  const inTree = homePath(user, rel);
  // Check the existing file before anything is created, so that a refusal changes nothing.
  const probe = await openHomeChain(root, user, parts, false);
  if (probe) {
    try {
      const existing = await lstatOrNull(probe.chain.at(probe.chain.last, name));
      if (existing) checkFile(existing, user, inTree);
    } finally {
      await probe.chain.close();
    }
  }
  const opened = await openHomeChain(root, user, parts, true);
  if (!opened) throw new ImprintError(`internal: ${inTree}: no directory chain`);
  const { chain, created } = opened;
  try {
    const dir = chain.last;
    const target = chain.at(dir, name);
    const existing = await lstatOrNull(target);
    if (existing) checkFile(existing, user, inTree);
    // Temp files an earlier, killed run left (unlink removes the name, never what a link points at).
    for (const stale of (await readdir(chain.at(dir, '.')).catch(() => [] as string[])).filter((n) => TEMP_NAME.test(n))) {
      if ((await lstatOrNull(chain.at(dir, stale)))?.isFile()) await unlink(chain.at(dir, stale)).catch(() => undefined);
    }
    const tempName = `.imprint-${randomBytes(6).toString('hex')}.tmp`;
    const temp = chain.at(dir, tempName);
    await writeNewFile(temp, data, { mode: 0o600, uid: user.uid, gid: user.gid });
    try {
      await chain.verify();
    } catch (err) {
      await unlink(temp).catch(() => undefined);
      throw err;
    }
    crashPoint(`before rename ${inTree}`);
    await rename(temp, target);
    // Crash safety: the launch key's rename is on disk before the state records it as written.
    await dir.handle.sync();
    crashPoint(`after rename ${inTree}`);
    await restoreContexts(root, [...created, inTree]);
    return { createdDirs: created, replaced: existing !== null, previousMode: existing ? existing.mode & 0o7777 : null };
  } finally {
    await chain.close();
  }
}
