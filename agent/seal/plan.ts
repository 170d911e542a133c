import { stat } from 'node:fs/promises';
import path from 'node:path';
import { hashScheme, parseAccountFile, passwdEntries, passwordState } from '../parsers/accounts.js';
import { ImprintError, errorMessage } from '../os/errors.js';
import { readTreeText } from '../os/files.js';
import type { RootTree } from '../os/root.js';
import { mountAbove, mountsBelow, treeMounts } from '../os/mountinfo.js';
import { isMemoryFilesystem, readHostHead, readTreeHead, treeSpace, ZERO_FILL_NAME } from '../os/tree-ops.js';
import { bundlingNameWhy, claimedByName, CREDENTIAL_RULES, HISTORY_RULES, sniffSecret, SNIFF_BYTES, SNIFF_MAX_FILE, sshUserKeyWhy, type HomeRule } from './detect.js';
import { itemKey, type SealAction, type SealItem, type SealNote, type SealPlan } from './item.js';
import { SEAL_OPERATIONS, type SealOperation } from './operations.js';
import { treeHomes, TreeReader, walkFiles, type Home, type WalkLimits } from './scan.js';

// What seal would remove, found by reading the tree only (lstat, readdir, the first bytes of
// small files): the plan is what --dry-run prints, what a real run then does item by item, and
// what `imprint audit` reports as leftovers. Nothing here writes.

export interface PlanOptions {
  /** zero-free-space: at most this many bytes per filesystem (null: until it is full). */
  zeroLimit?: number | null;
  /** Bounds of the content scan of each directory (homes, /tmp, /var/tmp, /mnt). */
  scanLimits?: WalkLimits;
  /** build-user: the build accounts to remove (--remove-user). */
  buildUsers?: readonly string[];
  /** machine-id: "uninitialized" (systemd's first-boot mode, --first-boot) instead of empty. */
  firstBoot?: boolean;
}

const SCAN_LIMITS: WalkLimits = { maxDepth: 24, maxEntries: 200_000 };
const LOG_LIMITS: WalkLimits = { maxDepth: 16, maxEntries: 200_000 };

interface Ctx {
  root: RootTree;
  reader: TreeReader;
  items: SealItem[];
  notes: SealNote[];
  homes: Home[];
  opts: PlanOptions;
}

const join = (dir: string, name: string): string => (dir === '/' ? `/${name}` : `${dir}/${name}`);

function add(ctx: Ctx, operation: SealOperation, p: string, action: SealAction, bytes: number, why: string, extra: Partial<SealItem> = {}): void {
  ctx.items.push({ operation, path: p, action, bytes, why, ...extra });
}

function skipLink(ctx: Ctx, operation: SealOperation, p: string, target: string): void {
  add(ctx, operation, p, 'skip', 0, `a symlink (to ${target}): never followed, left in place`);
}

/** A home is looked into when its path holds no link; a person's home behind a link is reported. */
async function reachableHome(ctx: Ctx, operation: SealOperation, home: Home): Promise<boolean> {
  const probe = await ctx.reader.probe(home.home);
  if (probe.kind === 'dir') return true;
  if (home.personal) {
    if (probe.kind === 'symlink') skipLink(ctx, operation, home.home, probe.target);
    else if (probe.kind === 'blocked' && probe.link !== null) skipLink(ctx, operation, probe.at, probe.link);
  }
  return false;
}

/** A file or directory named by a rule: added with its action, or reported when it is a link. */
async function named(ctx: Ctx, operation: SealOperation, home: Home, p: string, kind: 'file' | 'dir', why: string): Promise<void> {
  const probe = await ctx.reader.probe(p);
  switch (probe.kind) {
    case 'absent':
      return;
    case 'blocked':
      // A link in the middle (~/.config → elsewhere): what is behind it is not the tree's to touch.
      if (home.personal && probe.link !== null) skipLink(ctx, operation, probe.at, probe.link);
      return;
    case 'symlink':
      // A history linked to /dev/null is the usual way to switch history off: not a leftover.
      if (probe.target !== '/dev/null') skipLink(ctx, operation, p, probe.target);
      return;
    case 'file':
      add(ctx, operation, p, 'shred', probe.stat.size, why);
      return;
    case 'dir': {
      if (kind === 'file') {
        add(ctx, operation, p, 'skip', 0, `${why}: expected a file, found a directory; left in place`);
        return;
      }
      const { bytes } = await ctx.reader.treeBytes(p);
      add(ctx, operation, p, 'shred-tree', bytes, why);
      return;
    }
    case 'other':
      add(ctx, operation, p, 'skip', 0, `${why}: not a regular file (a FIFO, socket or device); left in place`);
  }
}

async function sshHostKeys(ctx: Ctx): Promise<void> {
  const probe = await ctx.reader.probe('/etc/ssh');
  if (probe.kind === 'symlink') return skipLink(ctx, 'ssh-host-keys', '/etc/ssh', probe.target);
  if (probe.kind !== 'dir') return;
  for (const entry of await ctx.reader.entries('/etc/ssh')) {
    if (!entry.name.startsWith('ssh_host_')) continue;
    const p = `/etc/ssh/${entry.name}`;
    const info = await ctx.reader.lstat(p);
    if (!info) continue;
    const pub = entry.name.endsWith('.pub');
    if (info.isSymbolicLink()) skipLink(ctx, 'ssh-host-keys', p, (await ctx.reader.probe(p) as { target?: string }).target ?? '?');
    else if (!info.isFile()) add(ctx, 'ssh-host-keys', p, 'skip', 0, 'named like a host key but not a regular file; left in place');
    else if (pub) add(ctx, 'ssh-host-keys', p, 'unlink', info.size, 'SSH host public key (every instance must make its own pair)');
    else add(ctx, 'ssh-host-keys', p, 'shred', info.size, 'SSH host private key (every instance must make its own)');
  }
}

async function sshUserKeys(ctx: Ctx): Promise<void> {
  for (const home of ctx.homes) {
    if (!(await reachableHome(ctx, 'ssh-user-keys', home))) continue;
    const dir = join(home.home, '.ssh');
    const probe = await ctx.reader.probe(dir);
    if (probe.kind === 'symlink') {
      if (home.personal) skipLink(ctx, 'ssh-user-keys', dir, probe.target);
      continue;
    }
    if (probe.kind !== 'dir') continue;
    for (const entry of await ctx.reader.entries(dir)) {
      const why = sshUserKeyWhy(entry.name);
      if (why) await named(ctx, 'ssh-user-keys', home, join(dir, entry.name), 'file', why);
    }
  }
}

async function homeRules(ctx: Ctx, operation: SealOperation, rules: readonly HomeRule[]): Promise<void> {
  for (const home of ctx.homes) {
    if (!(await reachableHome(ctx, operation, home))) continue;
    for (const rule of rules) await named(ctx, operation, home, join(home.home, rule.rel), rule.kind, rule.why);
  }
}

/** Files whose content is key material, and bundling material by name, under homes and scratch directories. */
async function credentialScan(ctx: Ctx): Promise<void> {
  const limits = ctx.opts.scanLimits ?? SCAN_LIMITS;
  const roots: { dir: string; home: boolean }[] = [
    ...ctx.homes.filter((h) => h.personal).map((h) => ({ dir: h.home, home: true })),
    { dir: '/tmp', home: false }, { dir: '/var/tmp', home: false }, { dir: '/mnt', home: false },
  ];
  const seen = new Set<string>();
  for (const { dir, home } of roots) {
    if (seen.has(dir) || [...seen].some((s) => dir.startsWith(`${s}/`))) continue;
    seen.add(dir);
    const result = await walkFiles(ctx.reader, dir, limits, async (p, _rel, info) => {
      const byName = bundlingNameWhy(path.posix.basename(p));
      if (byName) {
        add(ctx, 'credentials', p, 'shred', info.size, byName);
        return;
      }
      if (info.size === 0 || info.size > SNIFF_MAX_FILE) return;
      const where = await ctx.reader.host(p);
      const head = where === null ? null : await readHostHead(where, SNIFF_BYTES).catch(() => null);
      const why = head ? sniffSecret(head) : null;
      if (why) add(ctx, 'credentials', p, 'shred', info.size, why);
    }, (rel) => home && claimedByName(rel));
    if (result.truncated) {
      ctx.notes.push({ operation: 'credentials', severity: 'warning', path: dir, message: `stopped scanning ${dir} after ${limits.maxEntries} entries: files past that were not checked for keys` });
    }
  }
}

/** Crypt hashes in a shadow file's text, by account: what a lock must leave nowhere in the image. */
function shadowHashes(text: string, file: string): { name: string; line: number; state: string; scheme: string }[] {
  return parseAccountFile(text, 'shadow', file).lines.map((l) => {
    const field = l.fields[1] ?? '';
    return { name: l.fields[0] ?? '', line: l.line, state: passwordState(field), scheme: hashScheme(field) };
  });
}

async function passwords(ctx: Ctx): Promise<void> {
  let text: string | null;
  try {
    text = await readTreeText(ctx.root, '/etc/shadow');
  } catch (err) {
    ctx.notes.push({ operation: 'passwords', severity: 'error', path: '/etc/shadow', message: `cannot read /etc/shadow: ${errorMessage(err)}` });
    return;
  }
  if (text === null) {
    ctx.notes.push({ operation: 'passwords', severity: 'warning', path: '/etc/shadow', message: 'the tree has no /etc/shadow: no password to lock' });
    return;
  }
  let entries;
  try {
    entries = shadowHashes(text, '/etc/shadow');
  } catch (err) {
    ctx.notes.push({ operation: 'passwords', severity: 'error', path: '/etc/shadow', message: `cannot parse /etc/shadow (${errorMessage(err)}): no password was checked` });
    return;
  }
  let locks = 0;
  for (const e of entries) {
    const why = e.state === 'usable' ? `${e.name} has a usable ${e.scheme} password`
      : e.state === 'empty' ? `${e.name} has an empty password (no password needed)`
        : e.state === 'locked' ? `${e.name}'s password is locked but still holds its ${e.scheme} hash (crackable offline)` : null;
    if (why === null) continue;
    add(ctx, 'passwords', '/etc/shadow', 'lock', 0, why, { account: e.name, line: e.line });
    locks += 1;
  }
  // Copies of the hashes: shadow-utils' backup (which the locks themselves rewrite, holding the
  // state before the last change) and Debian's daily backup. Removed when they hold any hash.
  for (const copy of ['/etc/shadow-', '/var/backups/shadow.bak']) {
    const probe = await ctx.reader.probe(copy);
    if (probe.kind === 'symlink') {
      skipLink(ctx, 'passwords', copy, probe.target);
      continue;
    }
    if (probe.kind !== 'file' && !(copy === '/etc/shadow-' && locks > 0)) continue;
    let holds = copy === '/etc/shadow-' && locks > 0;
    if (!holds && probe.kind === 'file') {
      const copyText = await readTreeText(ctx.root, copy).catch(() => null);
      try {
        holds = copyText === null || shadowHashes(copyText, copy).some((e) => e.state !== 'disabled');
      } catch {
        holds = true;
      }
    }
    if (holds) add(ctx, 'passwords', copy, 'shred', probe.kind === 'file' ? probe.stat.size : 0, `a copy of /etc/shadow ${copy === '/etc/shadow-' ? "(shadow-utils' backup, rewritten by every usermod)" : "(Debian's daily backup)"} holding password hashes`);
  }
}

const ROTATED = /(\.\d+|-\d{8}(-\d+)?)(\.(gz|xz|bz2|zst|lz4|Z))?$|\.(gz|xz|bz2|zst|lz4|old)$/;
const JOURNAL_FILE = /\.journal~?$/;
const MACHINE_JOURNAL_DIR = /^[0-9a-f]{32}(\.[A-Za-z0-9_-]+)?$/;
const LOGIN_RECORDS: Record<string, string> = {
  wtmp: 'login records (wtmp, read by last), reset to empty',
  btmp: 'failed login records (btmp, read by lastb), reset to empty',
  lastlog: 'last login of each user (lastlog), reset to empty',
  faillog: 'failed login counters (faillog), reset to empty',
};

async function logs(ctx: Ctx): Promise<void> {
  for (const entry of await ctx.reader.entries('/var/log/journal')) {
    const p = `/var/log/journal/${entry.name}`;
    if (entry.isDirectory() && MACHINE_JOURNAL_DIR.test(entry.name)) {
      const { bytes, files } = await ctx.reader.treeBytes(p);
      add(ctx, 'logs', p, 'remove-tree', bytes, `systemd journal of machine ${entry.name.slice(0, 32)} (${files} file${files === 1 ? '' : 's'}; a new machine-id starts a new one)`);
    } else if (entry.isDirectory()) {
      await walkFiles(ctx.reader, p, LOG_LIMITS, async (f, _rel, info) => {
        if (JOURNAL_FILE.test(f)) add(ctx, 'logs', f, 'unlink', info.size, 'systemd journal file');
      });
    } else if (entry.isFile() && JOURNAL_FILE.test(entry.name)) {
      add(ctx, 'logs', p, 'unlink', (await ctx.reader.lstat(p))?.size ?? 0, 'systemd journal file');
    }
  }
  let links = 0;
  const result = await walkFiles(ctx.reader, '/var/log', LOG_LIMITS, async (p, rel, info) => {
    const name = path.posix.basename(p);
    if (ROTATED.test(name)) {
      add(ctx, 'logs', p, 'unlink', info.size, 'rotated or compressed log (nothing appends to it, and an emptied archive would be corrupt)');
      return;
    }
    if (info.size === 0) return;
    const why = LOGIN_RECORDS[rel] ?? 'log file, emptied in place (mode and owner kept)';
    if (info.nlink > 1) add(ctx, 'logs', p, 'skip', 0, `${why}: it has ${info.nlink} hard links, and emptying it would empty the other names too; left in place`);
    else add(ctx, 'logs', p, 'truncate', info.size, why);
  }, (rel, isDir) => {
    if (isDir && rel === 'journal') return true;
    return false;
  });
  for (const entry of await ctx.reader.entries('/var/log')) if (entry.isSymbolicLink()) links += 1;
  if (links > 0) ctx.notes.push({ operation: 'logs', severity: 'info', message: `${links} symlink(s) directly under /var/log left alone (links are never followed)` });
  if (result.truncated) ctx.notes.push({ operation: 'logs', severity: 'warning', path: '/var/log', message: `stopped after ${LOG_LIMITS.maxEntries} entries under /var/log` });
}

// systemd 247 and later (main.c): /etc/machine-id missing or "uninitialized" is a first boot,
// empty is not. Either way a new machine-id is made at boot. A first boot also runs
// `preset-all` (enable-only up to 255), which re-enables units the builder disabled: measured
// on Debian 12 (systemd 252), "uninitialized" re-enabled a disabled apt-daily-upgrade.timer and
// e2scrub_reap.service and enabled systemd-networkd.service; empty left the units as they were.
const EMPTY_WHY = 'machine identity: emptied (the file kept): systemd makes a new one at the next boot, without first-boot mode (unit presets are not re-applied)';
const FIRST_BOOT_WHY = 'machine identity: "uninitialized" (--first-boot): systemd makes a new one and runs its first-boot mode (ConditionFirstBoot= units, and preset-all, which can enable units the build disabled)';

async function machineId(ctx: Ctx): Promise<void> {
  const probe = await ctx.reader.probe('/etc/machine-id');
  if (probe.kind === 'symlink') skipLink(ctx, 'machine-id', '/etc/machine-id', probe.target);
  else if (probe.kind === 'file' && ctx.opts.firstBoot) {
    const text = (await readTreeHead(ctx.root, '/etc/machine-id', 64).catch(() => null))?.toString('utf8');
    if (text !== 'uninitialized\n') add(ctx, 'machine-id', '/etc/machine-id', 'mark-first-boot', probe.stat.size, FIRST_BOOT_WHY);
  } else if (probe.kind === 'file' && probe.stat.size > 0) {
    const text = (await readTreeHead(ctx.root, '/etc/machine-id', 64).catch(() => null))?.toString('utf8').trim();
    if (text !== 'uninitialized') add(ctx, 'machine-id', '/etc/machine-id', 'truncate', probe.stat.size, EMPTY_WHY);
  }
  const dbus = await ctx.reader.probe('/var/lib/dbus/machine-id');
  if (dbus.kind === 'symlink') add(ctx, 'machine-id', '/var/lib/dbus/machine-id', 'unlink', 0, `D-Bus machine id, a link to ${dbus.target}: the link is removed (dbus falls back to /etc/machine-id)`);
  else if (dbus.kind === 'file') add(ctx, 'machine-id', '/var/lib/dbus/machine-id', 'unlink', dbus.stat.size, 'D-Bus copy of the machine id (dbus falls back to /etc/machine-id)');
}

/** An entry to remove whole: a directory with its tree, a file, or a link (the link itself). */
async function entry(ctx: Ctx, operation: SealOperation, p: string, why: string, secret: boolean): Promise<void> {
  const info = await ctx.reader.lstat(p);
  if (!info) return;
  if (info.isDirectory()) add(ctx, operation, p, secret ? 'shred-tree' : 'remove-tree', (await ctx.reader.treeBytes(p)).bytes, why);
  else if (info.isFile()) add(ctx, operation, p, secret ? 'shred' : 'unlink', info.size, why);
  else add(ctx, operation, p, 'unlink', 0, why);
}

async function fileIn(ctx: Ctx, operation: SealOperation, p: string, why: string, secret: boolean): Promise<void> {
  const probe = await ctx.reader.probe(p);
  if (probe.kind === 'symlink') skipLink(ctx, operation, p, probe.target);
  else if (probe.kind === 'file') add(ctx, operation, p, secret ? 'shred' : 'unlink', probe.stat.size, why);
}

/** Directories a zero fill may happen in, one per filesystem; the tree's root first. */
const MOUNT_CANDIDATES = ['/', '/boot', '/home', '/opt', '/srv', '/tmp', '/usr', '/var', '/var/lib', '/var/log', '/var/tmp'];

async function state(ctx: Ctx): Promise<void> {
  const op = 'state';
  if ((await ctx.reader.probe('/var/lib/imprint')).kind === 'dir') {
    await entry(ctx, op, '/var/lib/imprint', "imprint's per-instance state", true);
  }
  // cloud-init: what `cloud-init clean` removes, except scripts/per-* (the builder's own boot
  // scripts, image configuration rather than instance state). seed/ is kept as cloud-init clean
  // keeps it: it is the image's own datasource configuration (NoCloud seeds).
  if ((await ctx.reader.probe('/var/lib/cloud')).kind === 'dir') {
    for (const e of await ctx.reader.entries('/var/lib/cloud')) {
      if (e.name === 'seed') continue;
      if (e.name === 'scripts' && e.isDirectory()) {
        if ((await ctx.reader.probe('/var/lib/cloud/scripts/vendor')).kind === 'dir') {
          await entry(ctx, op, '/var/lib/cloud/scripts/vendor', 'cloud-init vendor-data scripts of the build instance', true);
        }
        continue;
      }
      await entry(ctx, op, `/var/lib/cloud/${e.name}`, "cloud-init state of the build instance (what `cloud-init clean` removes)", true);
    }
  }
  const leaseDirs: [string, RegExp][] = [
    ['/var/lib/dhcp', /\.leases?$/], ['/var/lib/dhclient', /\.leases?$/], ['/var/lib/NetworkManager', /\.lease$/],
    ['/var/lib/dhcpcd', /\.lease6?$/], ['/var/lib/dhcpcd5', /\.lease6?$/], ['/var/lib/wicked', /^lease-/],
  ];
  for (const [dir, pattern] of leaseDirs) {
    for (const e of await ctx.reader.entries(dir)) {
      if (pattern.test(e.name)) await fileIn(ctx, op, `${dir}/${e.name}`, 'DHCP lease of the build instance', true);
    }
  }
  await fileIn(ctx, op, '/var/lib/systemd/random-seed', 'systemd random seed (every clone would start from the same seed)', true);
  await fileIn(ctx, op, '/var/lib/urandom/random-seed', 'random seed (every clone would start from the same seed)', true);
  await fileIn(ctx, op, '/var/lib/systemd/credential.secret', 'systemd-creds host secret (every clone could decrypt the others\' credentials)', true);
  await fileIn(ctx, op, '/var/lib/NetworkManager/secret_key', 'NetworkManager per-machine secret (stable-privacy IPv6 addresses and DHCP ids would repeat in every clone)', true);
  await fileIn(ctx, op, '/etc/udev/rules.d/70-persistent-net.rules', 'udev persistent-net rules (pin the build instance\'s MAC addresses to interface names)', false);
  for (const dir of ['/tmp', '/var/tmp']) {
    if ((await ctx.reader.probe(dir)).kind !== 'dir') continue;
    const space = await treeSpace(ctx.root, dir).catch(() => null);
    if (space && isMemoryFilesystem(space.type)) {
      ctx.notes.push({ operation: op, severity: 'info', path: dir, message: `${dir} is a memory filesystem: its contents are not part of the image` });
      continue;
    }
    // Unlinked, not overwritten: a file here may be open or running (a build script), and
    // overwriting it would corrupt what reads it. Keys here are shredded by credentials.
    for (const e of await ctx.reader.entries(dir)) await entry(ctx, op, join(dir, e.name), e.isDirectory() ? 'temporary directory' : 'temporary file', false);
  }
  for (const e of await ctx.reader.entries('/var/cache/apt/archives')) {
    if (e.name.endsWith('.deb') && e.isFile()) await entry(ctx, op, `/var/cache/apt/archives/${e.name}`, 'downloaded package (apt cache)', false);
  }
  for (const e of await ctx.reader.entries('/var/cache/apt/archives/partial')) await entry(ctx, op, `/var/cache/apt/archives/partial/${e.name}`, 'partly downloaded package (apt cache)', false);
  for (const e of await ctx.reader.entries('/var/cache/apt')) {
    if (e.isFile() && e.name.endsWith('.bin')) await entry(ctx, op, `/var/cache/apt/${e.name}`, 'apt package index cache (apt rebuilds it)', false);
  }
  for (const dir of ['/var/cache/dnf', '/var/cache/yum']) {
    for (const e of await ctx.reader.entries(dir)) await entry(ctx, op, `${dir}/${e.name}`, `package manager cache (${path.posix.basename(dir)})`, false);
  }
  for (const e of await ctx.reader.entries('/var/crash')) await entry(ctx, op, `/var/crash/${e.name}`, 'crash report (process memory may hold secrets)', true);
  for (const e of await ctx.reader.entries('/var/lib/systemd/coredump')) await entry(ctx, op, `/var/lib/systemd/coredump/${e.name}`, 'core dump (process memory may hold secrets)', true);
  for (const dir of MOUNT_CANDIDATES) {
    const p = join(dir, ZERO_FILL_NAME);
    const probe = await ctx.reader.probe(p);
    if (probe.kind === 'file') add(ctx, op, p, 'unlink', probe.stat.size, 'zero fill left by an interrupted zero-free-space run');
  }
}

async function cronSpool(ctx: Ctx): Promise<void> {
  for (const dir of ['/var/spool/cron/crontabs', '/var/spool/cron/tabs', '/var/spool/cron']) {
    for (const e of await ctx.reader.entries(dir)) {
      const p = `${dir}/${e.name}`;
      if (e.isSymbolicLink()) skipLink(ctx, 'cron-spool', p, (await ctx.reader.probe(p) as { target?: string }).target ?? '?');
      else if (e.isFile() && !e.name.startsWith('.')) await fileIn(ctx, 'cron-spool', p, `crontab of ${e.name}`, true);
    }
  }
}

async function mailSpool(ctx: Ctx): Promise<void> {
  for (const dir of ['/var/mail', '/var/spool/mail']) {
    // Debian's /var/spool/mail is a link to ../mail: the layout, not a leftover.
    if ((await ctx.reader.probe(dir)).kind !== 'dir') continue;
    for (const e of await ctx.reader.entries(dir)) {
      const p = `${dir}/${e.name}`;
      const info = await ctx.reader.lstat(p);
      if (!info) continue;
      if (info.isSymbolicLink()) skipLink(ctx, 'mail-spool', p, (await ctx.reader.probe(p) as { target?: string }).target ?? '?');
      else if (info.isDirectory()) await entry(ctx, 'mail-spool', p, `mail of ${e.name}`, true);
      else if (info.isFile() && info.size > 0 && !e.name.startsWith('.')) add(ctx, 'mail-spool', p, 'shred', info.size, `mailbox of ${e.name}`);
    }
  }
}

async function zeroFreeSpace(ctx: Ctx): Promise<void> {
  const limit = ctx.opts.zeroLimit ?? null;
  // The tree's own filesystems only: a --root directory on the host's filesystem would fill the
  // host's disk, so there it needs a limit.
  const hostDev = ctx.root.isLive ? null : (await stat(path.dirname(ctx.root.dir)).catch(() => null))?.dev ?? null;
  const seen = new Set<number>();
  for (const dir of MOUNT_CANDIDATES) {
    const probe = await ctx.reader.probe(dir);
    if (probe.kind !== 'dir' || seen.has(probe.stat.dev)) continue;
    seen.add(probe.stat.dev);
    const space = await treeSpace(ctx.root, dir).catch(() => null);
    if (!space) continue;
    if (isMemoryFilesystem(space.type)) {
      ctx.notes.push({ operation: 'zero-free-space', severity: 'info', path: dir, message: `${dir} is a memory filesystem: nothing to zero` });
      continue;
    }
    if (probe.stat.dev === hostDev && limit === null) {
      add(ctx, 'zero-free-space', dir, 'skip', 0, `${dir} of the tree is on the same filesystem as ${path.dirname(ctx.root.dir)} on this machine: zeroing it would fill this machine's disk (mount the image, or set IMPRINT_SEAL_ZERO_LIMIT)`);
      continue;
    }
    const bytes = limit === null ? space.free : Math.min(space.free, limit);
    add(ctx, 'zero-free-space', dir, 'zero-fill', bytes, `free space of the filesystem at ${dir}: zeros compress to nothing, and fstrim can then hand the blocks back`);
  }
}

/** Whether a sudoers line is a rule for the user: "NAME ..." or "Defaults:NAME ...". */
function sudoersLineFor(line: string, user: string): boolean {
  const first = line.trim().split(/\s+/)[0] ?? '';
  const subjects = first.startsWith('Defaults:') ? first.slice('Defaults:'.length) : first;
  return subjects.split(',').includes(user);
}

async function buildUsers(ctx: Ctx): Promise<void> {
  const names = ctx.opts.buildUsers ?? [];
  if (names.length === 0) return;
  const text = await readTreeText(ctx.root, '/etc/passwd').catch(() => null);
  const accounts = text === null ? [] : passwdEntries(parseAccountFile(text, 'passwd', '/etc/passwd'));
  const dropIns: { path: string; lines: string[] }[] = [];
  for (const entry of await ctx.reader.entries('/etc/sudoers.d')) {
    const p = `/etc/sudoers.d/${entry.name}`;
    if (!entry.isFile()) continue;
    const body = await readTreeText(ctx.root, p).catch(() => null);
    if (body !== null) dropIns.push({ path: p, lines: body.split('\n').filter((l) => l.trim() !== '' && !l.trim().startsWith('#')) });
  }
  const main = (await readTreeText(ctx.root, '/etc/sudoers').catch(() => null)) ?? '';
  for (const name of names) {
    const account = accounts.find((a) => a.name === name);
    if (!account) ctx.notes.push({ operation: 'build-user', severity: 'info', path: '/etc/passwd', message: `no account ${name}: nothing to remove` });
    else if (account.uid === 0) ctx.notes.push({ operation: 'build-user', severity: 'error', path: '/etc/passwd', message: `${name} has UID 0: never removed` });
    else add(ctx, 'build-user', '/etc/passwd', 'delete-user', 0, `build account (UID ${account.uid}, home ${account.home}): userdel --remove`, { account: name });
    for (const file of dropIns) {
      const mine = file.lines.filter((l) => sudoersLineFor(l, name));
      if (mine.length === 0) continue;
      if (mine.length === file.lines.length) add(ctx, 'build-user', file.path, 'unlink', 0, `sudoers rules for ${name} only`);
      else ctx.notes.push({ operation: 'build-user', severity: 'warning', path: file.path, message: `has rules for ${name} and for others: not edited; remove ${name}'s lines with visudo -f ${file.path}` });
    }
    if (main.split('\n').some((l) => !l.trim().startsWith('#') && sudoersLineFor(l, name))) {
      ctx.notes.push({ operation: 'build-user', severity: 'warning', path: '/etc/sudoers', message: `/etc/sudoers has a rule for ${name}: not edited; remove it with visudo` });
    }
  }
}

const PLANNERS: Record<SealOperation, (ctx: Ctx) => Promise<void>> = {
  'ssh-host-keys': sshHostKeys,
  'ssh-user-keys': sshUserKeys,
  'shell-history': (ctx) => homeRules(ctx, 'shell-history', HISTORY_RULES),
  credentials: async (ctx) => {
    await homeRules(ctx, 'credentials', CREDENTIAL_RULES);
    await credentialScan(ctx);
  },
  passwords,
  logs,
  'machine-id': machineId,
  state,
  'cron-spool': cronSpool,
  'mail-spool': mailSpool,
  'build-user': buildUsers,
  'zero-free-space': zeroFreeSpace,
};

const TREE_ACTIONS: readonly SealAction[] = ['shred-tree', 'remove-tree'];

/**
 * The full plan: items (in run order: by operation, then path) and notes (what could not be
 * looked at). A path claimed by two operations goes to the first in SEAL_OPERATIONS order; a
 * tree's bytes leave out what another item inside it accounts for.
 */
export async function planSealDetailed(root: RootTree, operations: ReadonlySet<string>, opts: PlanOptions = {}): Promise<SealPlan> {
  for (const op of operations) {
    if (!(SEAL_OPERATIONS as readonly string[]).includes(op)) throw new ImprintError(`unknown seal operation "${op}"`, 'usage');
  }
  const reader = new TreeReader(root);
  const { homes, problem } = await treeHomes(reader);
  const ctx: Ctx = { root, reader, items: [], notes: [], homes, opts };
  if (problem && ['ssh-user-keys', 'shell-history', 'credentials'].some((op) => operations.has(op))) {
    ctx.notes.push({ operation: 'ssh-user-keys', severity: 'warning', path: '/etc/passwd', message: `${problem}: only /root and /home/* were looked at` });
  }
  const items: SealItem[] = [];
  const claimed = new Set<string>();
  for (const op of SEAL_OPERATIONS) {
    if (!operations.has(op)) continue;
    ctx.items = [];
    await PLANNERS[op](ctx);
    const mine = ctx.items
      .filter((i) => !claimed.has(itemKey(i)))
      .sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : (a.line ?? 0) - (b.line ?? 0)));
    const unique = mine.filter((i, n) => mine.findIndex((j) => itemKey(j) === itemKey(i)) === n);
    for (const i of unique) claimed.add(itemKey(i));
    items.push(...unique);
  }
  await keepMountsOut(root, items, ctx.notes);
  for (const tree of items) {
    if (!TREE_ACTIONS.includes(tree.action)) continue;
    const inside = items.filter((i) => i !== tree && i.action !== 'skip' && i.path.startsWith(`${tree.path}/`));
    tree.bytes = Math.max(0, tree.bytes - inside.reduce((sum, i) => sum + i.bytes, 0));
  }
  return { items, notes: ctx.notes };
}

/**
 * Seal never removes through a mount point: what is mounted may be outside the tree (a bind
 * mount of the same filesystem is invisible to a device-number check). An item at a mount
 * point, or in an offline tree under one, is skipped; a tree with mount points below it is
 * removed around them (execute.ts leaves them), and the plan says which.
 */
async function keepMountsOut(root: RootTree, items: SealItem[], notes: SealNote[]): Promise<void> {
  const mounts = await treeMounts(root);
  if (mounts.problem) notes.push({ operation: 'state', severity: 'warning', message: mounts.problem });
  for (const item of items) {
    if (item.action === 'skip' || item.action === 'lock' || item.action === 'zero-fill') continue;
    const above = mountAbove(mounts.points, item.path);
    if (above !== null && (above === item.path || !root.isLive)) {
      item.why = `${item.why}; skipped: ${above === item.path ? 'a mount point' : `under the mount point ${above}`} (seal never removes through a mount)`;
      item.action = 'skip';
      item.bytes = 0;
    } else if (TREE_ACTIONS.includes(item.action)) {
      for (const m of mountsBelow(mounts.points, item.path)) {
        notes.push({ operation: item.operation, severity: 'warning', path: m, message: `${m} is a mount point inside ${item.path}: left in place, with what is mounted there` });
      }
    }
  }
}

/** What seal would remove from the tree, read-only. `imprint audit` reports these as leftovers. */
export async function planSeal(root: RootTree, operations: ReadonlySet<string>): Promise<SealItem[]> {
  return (await planSealDetailed(root, operations)).items;
}
