import type { Dirent, Stats } from 'node:fs';
import { lstat, readdir, readlink } from 'node:fs/promises';
import path from 'node:path';
import { parseAccountFile, passwdEntries } from '../parsers/accounts.js';
import { errorMessage } from '../os/errors.js';
import { readTreeText } from '../os/files.js';
import type { RootTree } from '../os/root.js';

// Reading a tree for the plan: lstat only, never through a link, with the results of each
// component cached (a plan is one look at the tree).

export type Probe =
  | { kind: 'absent' }
  /** A component above the path is a link (or not a directory): the path is not reachable without following it. */
  | { kind: 'blocked'; at: string; link: string | null }
  | { kind: 'symlink'; target: string }
  | { kind: 'file' | 'dir' | 'other'; stat: Stats };

export class TreeReader {
  private readonly cache = new Map<string, Promise<Stats | null>>();
  private readonly raw = new Map<string, Promise<string | Buffer | null>>();

  constructor(readonly root: RootTree) {}

  /**
   * The host path of an in-tree path. Names that are not valid UTF-8 come out of readdir with
   * U+FFFD in them; such a path is resolved to its bytes (a Buffer), component by component.
   * null when no entry matches.
   */
  host(inTree: string): Promise<string | Buffer | null> {
    const key = path.posix.normalize(inTree);
    if (!key.includes('\uFFFD')) return Promise.resolve(this.root.path(key));
    let hit = this.raw.get(key);
    if (!hit) {
      hit = (async () => {
        let where = Buffer.from(this.root.isLive ? '' : this.root.dir);
        for (const part of key.split('/').filter(Boolean)) {
          let name: Buffer | undefined = Buffer.from(part);
          if (part.includes('\uFFFD')) {
            const names = await readdir(where.length === 0 ? '/' : where, { encoding: 'buffer' }).catch(() => [] as Buffer[]);
            name = names.find((n) => n.toString('utf8') === part);
          }
          if (!name) return null;
          where = Buffer.concat([where, Buffer.from('/'), name]);
        }
        return where;
      })();
      this.raw.set(key, hit);
    }
    return hit;
  }

  lstat(inTree: string): Promise<Stats | null> {
    const key = path.posix.normalize(inTree);
    let hit = this.cache.get(key);
    if (!hit) {
      hit = this.host(key).then((where) => (where === null ? null : lstat(where))).catch((err: NodeJS.ErrnoException) => {
        if (err.code === 'ENOENT' || err.code === 'ENOTDIR' || err.code === 'ENAMETOOLONG') return null;
        throw err;
      });
      this.cache.set(key, hit);
    }
    return hit;
  }

  /** lstat without caching (for walks over many files). */
  async lstatOnce(inTree: string): Promise<Stats | null> {
    const where = await this.host(inTree);
    return where === null ? null : lstat(where).catch(() => null);
  }

  /** readdir of an in-tree directory (names as UTF-8, lossy), with types. */
  async readdir(inTree: string): Promise<Dirent[]> {
    const where = await this.host(inTree);
    if (where === null) return [];
    return readdir(where, { withFileTypes: true, encoding: 'utf8' } as { withFileTypes: true }) as Promise<Dirent[]>;
  }

  /** What is at an in-tree path, looking at every component below the root without following links. */
  async probe(inTree: string): Promise<Probe> {
    const parts = path.posix.normalize(inTree).split('/').filter(Boolean);
    let soFar = '';
    for (let i = 0; i < parts.length; i += 1) {
      soFar = `${soFar}/${parts[i] as string}`;
      const info = await this.lstat(soFar);
      if (!info) return { kind: 'absent' };
      const last = i === parts.length - 1;
      if (info.isSymbolicLink()) {
        const where = await this.host(soFar);
        const target = where === null ? '?' : await readlink(where, 'utf8').catch(() => '?');
        return last ? { kind: 'symlink', target } : { kind: 'blocked', at: soFar, link: target };
      }
      if (last) return { kind: info.isFile() ? 'file' : info.isDirectory() ? 'dir' : 'other', stat: info };
      if (!info.isDirectory()) return { kind: 'blocked', at: soFar, link: null };
    }
    const top = await this.lstat('/');
    return top ? { kind: 'dir', stat: top } : { kind: 'absent' };
  }

  /** Entries of a directory reached without links, with their types; [] when it is not one. */
  async entries(inTree: string): Promise<Dirent[]> {
    const probe = await this.probe(inTree);
    if (probe.kind !== 'dir') return [];
    try {
      return (await this.readdir(inTree)).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    } catch (err) {
      if (['ENOENT', 'ENOTDIR', 'EACCES'].includes((err as NodeJS.ErrnoException).code ?? '')) return [];
      throw err;
    }
  }

  /** Total size of the regular files under a directory (one filesystem, no links followed). */
  async treeBytes(inTree: string): Promise<{ bytes: number; files: number }> {
    const top = await this.lstat(inTree);
    if (!top) return { bytes: 0, files: 0 };
    if (!top.isDirectory()) return { bytes: top.isFile() ? top.size : 0, files: 1 };
    let bytes = 0;
    let files = 0;
    const walk = async (dir: string): Promise<void> => {
      for (const entry of await this.readdir(dir).catch(() => [] as Dirent[])) {
        const child = `${dir}/${entry.name}`;
        if (entry.isDirectory()) {
          const info = await this.lstatOnce(child);
          if (info?.isDirectory() && info.dev === top.dev) await walk(child);
        } else {
          files += 1;
          if (entry.isFile()) bytes += (await this.lstatOnce(child))?.size ?? 0;
        }
      }
    };
    await walk(path.posix.normalize(inTree));
    return { bytes, files };
  }
}

export interface WalkLimits {
  maxDepth: number;
  maxEntries: number;
}

export interface WalkResult {
  /** The walk stopped at maxEntries. */
  truncated: boolean;
  entries: number;
}

/**
 * Visits the regular files under a directory, depth first, never following a link and never
 * leaving the directory's filesystem. `skip(rel)` prunes a file or a directory.
 */
export async function walkFiles(
  reader: TreeReader,
  top: string,
  limits: WalkLimits,
  visit: (inTree: string, rel: string, stat: Stats) => Promise<void>,
  skip: (rel: string, isDir: boolean) => boolean = () => false,
): Promise<WalkResult> {
  const result: WalkResult = { truncated: false, entries: 0 };
  const start = await reader.probe(top);
  if (start.kind !== 'dir') return result;
  const dev = start.stat.dev;
  const walk = async (dir: string, rel: string, depth: number): Promise<void> => {
    let names: Dirent[];
    try {
      names = await reader.readdir(dir);
    } catch {
      return;
    }
    for (const entry of names) {
      if (result.entries >= limits.maxEntries) {
        result.truncated = true;
        return;
      }
      result.entries += 1;
      const childRel = rel === '' ? entry.name : `${rel}/${entry.name}`;
      const child = `${dir === '/' ? '' : dir}/${entry.name}`;
      if (entry.isSymbolicLink()) continue;
      if (entry.isDirectory()) {
        if (depth >= limits.maxDepth || skip(childRel, true)) continue;
        const info = await reader.lstatOnce(child);
        if (info?.isDirectory() && info.dev === dev) await walk(child, childRel, depth + 1);
        continue;
      }
      if (!entry.isFile() || skip(childRel, false)) continue;
      const info = await reader.lstatOnce(child);
      if (info?.isFile()) await visit(child, childRel, info);
    }
  };
  await walk(path.posix.normalize(top), '', 0);
  return result;
}

export interface Home {
  /** In-tree path, normalized. */
  home: string;
  /** Accounts whose home it is. */
  users: string[];
  /**
   * A person's home (root's, one under /home, or a login account's with uid ≥ UID_MIN): it is
   * scanned by content too, and a link in its path is reported. A system account's home (daemon's
   * /usr/sbin) only gets the named checks.
   */
  personal: boolean;
}

const SYSTEM_DIRS = new Set(['/', '/bin', '/boot', '/dev', '/etc', '/lib', '/lib64', '/proc', '/run', '/sbin', '/sys', '/usr', '/usr/bin', '/usr/sbin', '/var', '/nonexistent']);

/** UID_MIN from the tree's login.defs (1000 when absent or unreadable). */
async function uidMin(root: RootTree): Promise<number> {
  const text = await readTreeText(root, '/etc/login.defs').catch(() => null);
  const m = text ? /^\s*UID_MIN\s+(\d+)\s*$/m.exec(text) : null;
  return m ? Number.parseInt(m[1] as string, 10) : 1000;
}

/**
 * The homes of the tree: /root, every home in its /etc/passwd, and every directory under /home
 * (a home whose account was deleted still holds its files). Problems reading passwd are returned
 * so the plan can say it looked only at /root and /home.
 */
export async function treeHomes(reader: TreeReader): Promise<{ homes: Home[]; problem: string | null }> {
  const byPath = new Map<string, Home>();
  const add = (home: string, user: string | null, personal: boolean): void => {
    const normal = path.posix.normalize(home).replace(/(.)\/$/, '$1');
    const known = byPath.get(normal);
    const isPersonal = personal && !SYSTEM_DIRS.has(normal);
    if (known) {
      if (user && !known.users.includes(user)) known.users.push(user);
      known.personal ||= isPersonal;
    } else byPath.set(normal, { home: normal, users: user ? [user] : [], personal: isPersonal });
  };
  add('/root', null, true);
  let problem: string | null = null;
  try {
    const text = await readTreeText(reader.root, '/etc/passwd');
    if (text !== null) {
      const min = await uidMin(reader.root);
      for (const e of passwdEntries(parseAccountFile(text, 'passwd', '/etc/passwd'))) {
        if (!e.home.startsWith('/') || e.home.split('/').includes('..')) continue;
        const login = !/(nologin|\/false|\/sync|\/shutdown|\/halt)$/.test(e.shell);
        const personal = e.uid === 0 || e.home.startsWith('/home/') || (login && e.uid >= min && e.uid !== 65534);
        add(e.home, e.name, personal);
      }
    } else problem = 'the tree has no /etc/passwd';
  } catch (err) {
    problem = `cannot read /etc/passwd (${errorMessage(err)})`;
  }
  for (const entry of await reader.entries('/home')) {
    if (entry.isDirectory()) add(`/home/${entry.name}`, null, true);
    else if (entry.isSymbolicLink()) add(`/home/${entry.name}`, null, true);
  }
  return { homes: [...byPath.values()].sort((a, b) => (a.home < b.home ? -1 : 1)), problem };
}
