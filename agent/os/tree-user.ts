import { constants, type Stats } from 'node:fs';
import { chmod, lchown, lstat, mkdir, open, readdir, readlink, rename, rm, symlink } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { AccountTable, editAccountFiles } from './account-db.js';
import { crashPoint } from './crash.js';
import { ImprintError } from './errors.js';
import { readTreeText, writeNewFile } from './files.js';
import { today } from './password-fields.js';
import type { RootTree } from './root.js';
import type { NewUser } from './shadow-utils.js';

// `useradd --create-home --user-group` for an offline tree, done by imprint itself (see
// account-db.ts for why shadow-utils' --root must not run): the same choices useradd makes from
// the tree's /etc/login.defs and /etc/default/useradd (first free uid above the highest in
// UID_MIN..UID_MAX, a group of the same name with gid = uid when free, PASS_* ageing, HOME and
// SKEL, the home's mode from HOME_MODE or UMASK), the password "!" (locked, no hash), and the
// home copied from the skeleton without following a link: made under a temp name, owned by the
// user, then renamed, before the account files name it (killed in between, the next run finds a
// complete home and no account, and makes the account with the same uid); subordinate ids in
// /etc/subuid and /etc/subgid where those files exist (the lowest free range of SUB_*_COUNT in
// SUB_*_MIN..SUB_*_MAX). Not done: mail spools (CREATE_MAIL_SPOOL).

function settings(text: string | null, sep: RegExp): Map<string, string> {
  const map = new Map<string, string>();
  for (const line of (text ?? '').split('\n')) {
    const m = sep.exec(line.trim());
    if (m && !line.trim().startsWith('#')) map.set(m[1] as string, m[2] as string);
  }
  return map;
}

function numberSetting(map: Map<string, string>, key: string, fallback: number): number {
  const raw = map.get(key);
  const n = raw === undefined ? NaN : Number.parseInt(raw, raw.startsWith('0') && raw.length > 1 ? 8 : 10);
  return Number.isInteger(n) && n >= 0 ? n : fallback;
}

/** Numeric ids used in a passwd or group file (field 3). */
function usedIds(table: AccountTable): Set<number> {
  const ids = new Set<number>();
  for (const line of table.lines) {
    const id = Number.parseInt(line.split(':')[2] ?? '', 10);
    if (Number.isInteger(id)) ids.add(id);
  }
  return ids;
}

/** useradd's rule: one above the highest id in use within [min, max], else the lowest free one. */
function nextId(used: Set<number>, min: number, max: number, prefer?: number): number {
  if (prefer !== undefined && prefer >= min && prefer <= max && !used.has(prefer)) return prefer;
  const inRange = [...used].filter((id) => id >= min && id <= max);
  const next = inRange.length === 0 ? min : Math.max(...inRange) + 1;
  if (next <= max) return next;
  for (let id = min; id <= max; id += 1) if (!used.has(id)) return id;
  throw new ImprintError(`no free id left between ${min} and ${max}`);
}

function hasName(table: AccountTable, name: string): boolean {
  return table.indexesOf(name).length > 0;
}

/** Adds `user` to the member list (field 4) of each named group, in group and gshadow. */
function addMemberships(group: AccountTable, gshadow: AccountTable, groups: readonly string[], user: string): void {
  for (const g of groups) {
    for (const table of [group, gshadow]) {
      for (const i of table.indexesOf(g)) {
        const fields = (table.lines[i] as string).split(':');
        if (fields.length !== 4) continue;
        const members = fields[3] === '' ? [] : (fields[3] as string).split(',');
        if (!members.includes(user)) table.setField(i, 3, [...members, user].join(','));
      }
    }
  }
}

/** The lowest start of `count` ids in [min, max] that no line of a subuid/subgid file uses. */
function freeSubRange(table: AccountTable, min: number, max: number, count: number): number | null {
  const ranges = table.lines.map((l) => l.split(':')).filter((f) => f.length === 3)
    .map((f) => [Number.parseInt(f[1] as string, 10), Number.parseInt(f[2] as string, 10)] as const)
    .filter(([start, n]) => Number.isInteger(start) && Number.isInteger(n) && n > 0)
    .sort((a, b) => a[0] - b[0]);
  let candidate = min;
  for (const [start, n] of ranges) {
    if (start < candidate + count && start + n > candidate) candidate = start + n;
  }
  return candidate + count - 1 <= max ? candidate : null;
}

function addSubIds(table: AccountTable, defs: Map<string, string>, kind: 'UID' | 'GID', name: string): void {
  if (table.found === null || hasName(table, name)) return;
  const count = numberSetting(defs, `SUB_${kind}_COUNT`, 65536);
  if (count === 0) return;
  const start = freeSubRange(table, numberSetting(defs, `SUB_${kind}_MIN`, 100000), numberSetting(defs, `SUB_${kind}_MAX`, 600100000), count);
  if (start === null) throw new ImprintError(`no free range of ${count} subordinate ${kind.toLowerCase()}s left`);
  table.add(`${name}:${start}:${count}`);
}

async function copyEntry(src: string, dest: string, info: Stats, uid: number, gid: number): Promise<void> {
  if (info.isSymbolicLink()) {
    await symlink(await readlink(src), dest);
    await lchown(dest, uid, gid);
  } else if (info.isDirectory()) {
    await mkdir(dest, { mode: 0o700 });
    await lchown(dest, uid, gid);
    for (const name of (await readdir(src)).sort()) {
      const child = await lstat(path.join(src, name));
      await copyEntry(path.join(src, name), path.join(dest, name), child, uid, gid);
    }
    await chmod(dest, info.mode & 0o7777);
  } else if (info.isFile()) {
    const handle = await open(src, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
    let data: Buffer;
    try {
      const now = await handle.stat();
      if (!now.isFile() || now.ino !== info.ino) throw new ImprintError(`refusing skeleton file ${src}: it changed while being copied`, 'unsafe-path');
      data = await handle.readFile();
    } finally {
      await handle.close();
    }
    await writeNewFile(dest, data, { mode: info.mode & 0o777, uid, gid });
  }
  // Devices, FIFOs and sockets in a skeleton are not copied.
}

/** Makes the home from the skeleton under a temp name and renames it into place; false when the home exists. */
async function createHome(root: RootTree, home: string, skel: string, mode: number, uid: number, gid: number): Promise<boolean> {
  const parent = path.posix.dirname(home);
  await root.assertNoSymlinks(home);
  if (await lstat(root.path(home)).then(() => true, () => false)) return false;
  await mkdir(root.path(parent), { recursive: true, mode: 0o755 });
  await root.assertNoSymlinks(home);
  const temp = root.path(`${parent}/.imprint-home-${randomBytes(6).toString('hex')}`);
  try {
    await mkdir(temp, { mode: 0o700 });
    await lchown(temp, uid, gid);
    await root.assertNoSymlinks(skel);
    const skelInfo = await lstat(root.path(skel)).catch(() => null);
    if (skelInfo?.isDirectory()) {
      for (const name of (await readdir(root.path(skel))).sort()) {
        const src = root.path(`${skel}/${name}`);
        await copyEntry(src, path.join(temp, name), await lstat(src), uid, gid);
      }
    }
    await chmod(temp, mode);
    crashPoint(`before rename ${home}`);
    await rename(temp, root.path(home));
    crashPoint(`after rename ${home}`);
  } catch (err) {
    await rm(temp, { recursive: true, force: true }).catch(() => undefined);
    throw err;
  }
  return true;
}

export interface AddedUser {
  uid: number;
  gid: number;
  home: string;
  /** False when the home directory existed already (left as it was, as useradd does). */
  homeCreated: boolean;
}

/** Adds the user to the tree's account files and makes the home. Throws, changing nothing, if the user or its group exists. */
export async function addUserToTree(root: RootTree, user: NewUser): Promise<AddedUser> {
  for (const [what, value] of [['name', user.name], ['shell', user.shell], ['gecos', user.gecos]] as const) {
    if (/[:\n]/.test(value)) throw new ImprintError(`default user ${what} "${value}" contains ":" or a line break`, 'config');
  }
  const defs = settings(await readTreeText(root, '/etc/login.defs'), /^(\S+)\s+(\S+)/);
  const defaults = settings(await readTreeText(root, '/etc/default/useradd'), /^([A-Z_]+)=(\S*)$/);
  return editAccountFiles(root, ['/etc/passwd', '/etc/shadow', '/etc/group', '/etc/gshadow', '/etc/subuid', '/etc/subgid'], async (tables) => {
    const passwd = tables.get('/etc/passwd') as AccountTable;
    const shadow = tables.get('/etc/shadow') as AccountTable;
    const group = tables.get('/etc/group') as AccountTable;
    const gshadow = tables.get('/etc/gshadow') as AccountTable;
    if (passwd.found === null) throw new ImprintError('/etc/passwd does not exist');
    if (hasName(passwd, user.name)) throw new ImprintError(`user ${user.name} already exists`);
    if (hasName(group, user.name)) throw new ImprintError(`group ${user.name} exists already (useradd --user-group refuses it too)`);
    const uid = nextId(usedIds(passwd), numberSetting(defs, 'UID_MIN', 1000), numberSetting(defs, 'UID_MAX', 60000));
    const gid = nextId(usedIds(group), numberSetting(defs, 'GID_MIN', 1000), numberSetting(defs, 'GID_MAX', 60000), uid);
    const base = defaults.get('HOME') ?? '/home';
    const home = path.posix.join(base.startsWith('/') ? base : '/home', user.name);
    const skel = defaults.get('SKEL') ?? '/etc/skel';
    const mode = numberSetting(defs, 'HOME_MODE', 0o777 & ~numberSetting(defs, 'UMASK', 0o022));
    const homeCreated = await createHome(root, home, skel.startsWith('/') ? skel : '/etc/skel', mode & 0o7777, uid, gid);

    passwd.add(`${user.name}:x:${uid}:${gid}:${user.gecos}:${home}:${user.shell}`);
    const inactive = defaults.get('INACTIVE');
    const ageing = [numberSetting(defs, 'PASS_MIN_DAYS', 0), numberSetting(defs, 'PASS_MAX_DAYS', 99999), numberSetting(defs, 'PASS_WARN_AGE', 7)];
    shadow.add(`${user.name}:!:${today()}:${ageing.join(':')}:${inactive !== undefined && /^\d+$/.test(inactive) ? inactive : ''}::`);
    group.add(`${user.name}:x:${gid}:`);
    if (gshadow.found !== null) gshadow.add(`${user.name}:!::`);
    addMemberships(group, gshadow, user.groups, user.name);
    addSubIds(tables.get('/etc/subuid') as AccountTable, defs, 'UID', user.name);
    addSubIds(tables.get('/etc/subgid') as AccountTable, defs, 'GID', user.name);
    return { uid, gid, home, homeCreated };
  });
}
