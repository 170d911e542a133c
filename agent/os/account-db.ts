import { constants } from 'node:fs';
import { link, open, stat, unlink } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { ImprintError } from './errors.js';
import { readTreeFile, statTree, writeTreeFileAtomic } from './files.js';
import type { RootTree } from './root.js';

// The account databases of an offline tree (/etc/passwd, /etc/shadow, /etc/group, /etc/gshadow),
// edited by imprint itself. shadow-utils' `--root` chroots into the tree and glibc then loads
// the NSS modules the tree's nsswitch.conf names, from the tree: the image's code, as root, on
// the host. So for a tree nothing of shadow-utils runs; imprint takes the locks shadow-utils
// takes, so that a useradd/chpasswd on the same tree cannot interleave with it:
//  - per file, "<file>.lock": a file "<file>.<pid>" holding the pid (NUL-terminated, synced) is
//    hard-linked to it; the lock is ours when link() succeeds and the file then has two links.
//    A lock whose pid no longer exists is stale: removed, and the link tried once more. A lock
//    file without a readable pid is left alone (shadow-utils refuses it too). 15 tries, a second
//    apart, as shadow-utils does. Taken in the order shadow-utils takes them (passwd, shadow,
//    group, gshadow, subuid, subgid), released in reverse.
//  - /etc/.pwd.lock (glibc's lckpwdf) is an fcntl() record lock, which Node cannot take without
//    a native addon. shadow-utils tools on a tree take the per-file locks as well, so those
//    exclude them; lckpwdf alone (pam_unix inside the image) never runs on an offline tree.
// Files are read and written as bytes (latin1 strings): every line imprint does not change is
// written back byte for byte, whatever its encoding. Each changed file is replaced atomically
// (temp, fsync, rename, fsync dir) with the original's owner and mode. No "-" backup is made:
// the previous content holds the hashes being replaced.

export type AccountDbPath = '/etc/passwd' | '/etc/shadow' | '/etc/group' | '/etc/gshadow' | '/etc/subuid' | '/etc/subgid';

const LOCK_ORDER: readonly AccountDbPath[] = ['/etc/passwd', '/etc/shadow', '/etc/group', '/etc/gshadow', '/etc/subuid', '/etc/subgid'];
const LOCK_TRIES = 15;
const LOCK_PAUSE_MS = 1000;

/** One account file's lines, editable; lines are latin1 strings (one char per byte). */
export class AccountTable {
  changed = false;

  constructor(
    readonly file: AccountDbPath,
    readonly lines: string[],
    readonly finalNewline: boolean,
    /** Owner and mode of the file as found (null: it does not exist). */
    readonly found: { uid: number; gid: number; mode: number } | null,
  ) {}

  /** The account name of a line: what precedes its first colon. */
  static nameOf(line: string): string {
    const colon = line.indexOf(':');
    return colon === -1 ? line : line.slice(0, colon);
  }

  /** NIS compat entries ("+", "+name", "-name", "+@netgroup"): never ours to edit. */
  static isNis(line: string): boolean {
    return line.startsWith('+') || line.startsWith('-');
  }

  /** Indexes of the lines for `name` (every one of them: a duplicate is as usable as the first). */
  indexesOf(name: string): number[] {
    const found: number[] = [];
    this.lines.forEach((l, i) => {
      if (!AccountTable.isNis(l) && AccountTable.nameOf(l) === name) found.push(i);
    });
    return found;
  }

  /** Replaces field `n` (0-based) of line `i`, keeping every other byte of the line. */
  setField(i: number, n: number, value: string): void {
    const fields = (this.lines[i] as string).split(':');
    if (n >= fields.length) throw new ImprintError(`internal: ${this.file} line ${i + 1} has no field ${n + 1}`);
    if (value.includes(':') || value.includes('\n')) throw new ImprintError(`internal: a field value with ":" or a line break for ${this.file}`);
    if (fields[n] === value) return;
    fields[n] = value;
    this.lines[i] = fields.join(':');
    this.changed = true;
  }

  /** Removes every (non-NIS) line for `name`; true when there was one. */
  removeEntries(name: string): boolean {
    const found = this.indexesOf(name);
    for (const i of found.reverse()) this.lines.splice(i, 1);
    if (found.length > 0) this.changed = true;
    return found.length > 0;
  }

  /** Adds an entry before the first NIS line, where shadow-utils puts new entries. Text is UTF-8. */
  add(line: string): void {
    const bytes = Buffer.from(line, 'utf8').toString('latin1');
    if (bytes.includes('\n')) throw new ImprintError(`internal: a line break in a new ${this.file} entry`);
    const nis = this.lines.findIndex((l) => AccountTable.isNis(l));
    if (nis === -1) this.lines.push(bytes);
    else this.lines.splice(nis, 0, bytes);
    this.changed = true;
  }

  text(): string {
    const body = this.lines.join('\n');
    return this.finalNewline || this.found === null ? `${body}\n` : body;
  }
}

/** Splits a file's bytes into lines, remembering whether it ended with a newline. */
export function splitLines(data: string): { lines: string[]; finalNewline: boolean } {
  if (data === '') return { lines: [], finalNewline: true };
  const finalNewline = data.endsWith('\n');
  return { lines: (finalNewline ? data.slice(0, -1) : data).split('\n'), finalNewline };
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

type LockAttempt = { ok: true } | { ok: false; why: string; final?: boolean };

async function linkLock(own: string, lock: string): Promise<boolean> {
  try {
    await link(own, lock);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw err;
  }
  // Two links (ours and the lock): the lock is the file we just wrote, not something else.
  if ((await stat(own)).nlink !== 2) throw new ImprintError(`${lock}: lock file already used`);
  return true;
}

async function tryLock(own: string, lock: string, display: string): Promise<LockAttempt> {
  const handle = await open(own, constants.O_WRONLY | constants.O_CREAT | constants.O_TRUNC | constants.O_NOFOLLOW, 0o600);
  try {
    await handle.writeFile(`${process.pid}\0`);
    // Crash safety: a lock left by a crash must hold its PID, or shadow-utils refuses it as not stale forever.
    await handle.datasync();
  } finally {
    await handle.close();
  }
  try {
    if (await linkLock(own, lock)) return { ok: true };
    let text: string;
    try {
      const h = await open(lock, constants.O_RDONLY | constants.O_NOFOLLOW);
      try {
        text = (await h.readFile()).toString('latin1');
      } finally {
        await h.close();
      }
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { ok: false, why: `${display} was just released` };
      throw err;
    }
    const pid = /^(\d+)\0?\n?$/.exec(text)?.[1];
    if (pid === undefined || Number(pid) <= 0) return { ok: false, why: `${display} exists without a valid pid (remove it if no account tool is running)`, final: true };
    if (processAlive(Number(pid))) return { ok: false, why: `${display} is held by pid ${pid}` };
    // Stale: its holder is gone.
    await unlink(lock).catch((err: NodeJS.ErrnoException) => {
      if (err.code !== 'ENOENT') throw err;
    });
    return (await linkLock(own, lock)) ? { ok: true } : { ok: false, why: `${display} was taken by another process` };
  } finally {
    await unlink(own).catch(() => undefined);
  }
}

async function lockFile(root: RootTree, file: AccountDbPath): Promise<string> {
  const lock = root.path(`${file}.lock`);
  const own = root.path(`${file}.${process.pid}`);
  let last = '';
  for (let i = 0; i < LOCK_TRIES; i += 1) {
    if (i > 0) await sleep(LOCK_PAUSE_MS);
    const attempt = await tryLock(own, lock, `${file}.lock`);
    if (attempt.ok) return lock;
    last = attempt.why;
    if (attempt.final) break;
  }
  throw new ImprintError(`cannot lock ${file}: ${last}; nothing changed`);
}

async function readTable(root: RootTree, file: AccountDbPath): Promise<AccountTable> {
  const data = await readTreeFile(root, file, 64 * 1024 * 1024);
  if (data === null) return new AccountTable(file, [], true, null);
  const info = await statTree(root, file);
  const { lines, finalNewline } = splitLines(data.toString('latin1'));
  return new AccountTable(file, lines, finalNewline, info ? { uid: info.uid, gid: info.gid, mode: info.mode & 0o7777 } : null);
}

const NEW_FILE_MODE: Record<AccountDbPath, number> = { '/etc/passwd': 0o644, '/etc/group': 0o644, '/etc/shadow': 0o640, '/etc/gshadow': 0o640, '/etc/subuid': 0o644, '/etc/subgid': 0o644 };

/**
 * Locks the named account files of a tree, reads them, lets `edit` change them, and writes back
 * the ones it changed; the locks are released whatever happens. Nothing is written if `edit`
 * throws. Files that do not exist appear empty (`found` null) and are created only if edited.
 */
export async function editAccountFiles<T>(root: RootTree, files: readonly AccountDbPath[], edit: (tables: Map<AccountDbPath, AccountTable>) => T | Promise<T>): Promise<T> {
  if (root.isLive) throw new ImprintError('internal: the live system\'s account files are changed by its own shadow-utils');
  await root.assertNoSymlinks('/etc/passwd');
  const held: string[] = [];
  try {
    for (const file of LOCK_ORDER.filter((f) => files.includes(f))) held.push(await lockFile(root, file));
    const tables = new Map<AccountDbPath, AccountTable>();
    for (const file of files) tables.set(file, await readTable(root, file));
    const result = await edit(tables);
    for (const file of LOCK_ORDER) {
      const table = tables.get(file);
      if (!table?.changed) continue;
      const own = table.found ?? { uid: 0, gid: 0, mode: NEW_FILE_MODE[file] };
      await writeTreeFileAtomic(root, file, Buffer.from(table.text(), 'latin1'), own);
    }
    return result;
  } finally {
    for (const lock of held.reverse()) await unlink(lock).catch(() => undefined);
  }
}

/** Reads an account file as lines of bytes, without locking (for decisions made before an edit). */
export async function readAccountTable(root: RootTree, file: AccountDbPath): Promise<AccountTable> {
  return readTable(root, file);
}
