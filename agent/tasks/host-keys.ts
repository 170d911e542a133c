import path from 'node:path';
import { randomBytes } from 'node:crypto';
import type { Task, TaskContext } from '../boot/task.js';
import type { TaskRecorder } from '../boot/report.js';
import { ImprintError } from '../os/errors.js';
import { listTreeDir, readTreeText, replaceTreeFile, setTreeOwnership, shredTreeFile } from '../os/files.js';
import { generateKeyPair, type HostKeyType } from '../os/ssh-keygen.js';
import { lowerPriority } from '../os/priority.js';
import { groupEntries, parseAccountFile } from '../parsers/accounts.js';
import { fingerprintLine, parsePublicKey } from '../parsers/ssh-public-key.js';
import { sshdOracle } from '../os/sshd-oracle.js';
import { loadConfigSet } from '../sshd/config-set.js';
import { splitArgs } from '../parsers/sshd-config.js';
import { unlink } from 'node:fs/promises';

// Fresh SSH host keys for every instance: the image's keys are overwritten and unlinked, new
// ones are generated in parallel by the distribution's ssh-keygen and renamed into place.

export interface WantedKey {
  type: HostKeyType;
  /** In-tree path of the private key. */
  path: string;
  bits?: number;
}

/** A key being generated beside its final name; `done` settles when its ssh-keygen exits. */
export interface KeyInProgress {
  key: WantedKey;
  temp: string;
  done: Promise<void>;
  /** Its ssh-keygen's process id, once started. */
  pid?: number;
}

/** Keys still being generated when the host-keys task finished, for host-keys-late. */
export interface PendingHostKeys {
  keys: KeyInProgress[];
  generated: Promise<void>;
  group: number | undefined;
  /** Every key of the instance, for the fingerprint block printed when the last one is in. */
  all: WantedKey[];
}

/**
 * RSA's prime search takes 0.2 to 2 s; ed25519 and ecdsa take milliseconds: sshd is let start on
 * the fast keys, and RSA is installed when it is ready.
 *  - Up to OpenSSH 9.7 sshd re-executes itself for every connection and loads the host keys
 *    from disk each time: the next connection is offered RSA, with no reload.
 *  - From 9.8 the listener loads the keys once, when it starts, and hands them to sshd-session
 *    (seen with Debian 13's OpenSSH 10.0: a key added after start is not offered). A reload
 *    would offer it, but SIGHUP makes the listener close its listening sockets and re-execute
 *    itself (sshd.c sighup_restart: close_listen_socks, then execv): connections arriving
 *    meanwhile are refused and those queued are dropped, just when the first login is being
 *    tried. So there is no reload: sshd serves ed25519 and ecdsa until its next restart (the
 *    next boot), per-connection sshd (`sshd -i`, sshd@.service) serves RSA at once, and the
 *    console says so. The cost of waiting instead: the whole RSA search on sshd's path
 *    (about 1 s in Debian 13 boots), for clients that accept only RSA host keys (OpenSSH
 *    before 5.7, PuTTY before 0.63), which are refused until sshd restarts.
 */
const SLOW_TYPES: ReadonlySet<HostKeyType> = new Set(['rsa']);

const HOST_KEY_NAME = /^ssh_host_(ed25519|ecdsa|rsa|dsa)_key$/;
const DEFAULT_TYPES: HostKeyType[] = ['ed25519', 'ecdsa', 'rsa'];

async function hostKeyLines(ctx: TaskContext): Promise<string[]> {
  try {
    const set = await loadConfigSet(ctx.root);
    return set.order.filter((r) => r.global && r.line.kind === 'directive' && r.line.key === 'hostkey').map((r) => splitArgs(r.line.value)[0] ?? '');
  } catch {
    return []; // no or unreadable sshd_config: the defaults apply, and the sshd task reports the problem
  }
}

/** The keys to make: the types the config names, else what sshd's HostKey lines ask for, else the defaults. */
export async function wantedKeys(ctx: TaskContext, warn: (m: string) => void): Promise<WantedKey[]> {
  const { types, rsaBits, ecdsaBits } = ctx.config.hostKeys;
  const bitsFor = (type: HostKeyType): number | undefined => (type === 'rsa' ? rsaBits : type === 'ecdsa' ? ecdsaBits : undefined);
  const fromSshd = new Map<HostKeyType, string>();
  for (const p of await hostKeyLines(ctx)) {
    const type = HOST_KEY_NAME.exec(path.posix.basename(p))?.[1];
    if (type === 'dsa') warn(`HostKey ${p}: DSA keys are obsolete; not generated`);
    else if (type && p.startsWith('/')) fromSshd.set(type as HostKeyType, path.posix.normalize(p));
    else warn(`HostKey ${p}: cannot tell its key type from its name; left to the image`);
  }
  const chosen = types === 'auto' ? (fromSshd.size > 0 ? [...fromSshd.keys()] : DEFAULT_TYPES) : types;
  if (types !== 'auto' && fromSshd.size > 0) {
    for (const t of chosen) if (!fromSshd.has(t)) warn(`${t} key generated, but sshd_config's HostKey lines do not load it`);
  }
  return chosen.map((type) => {
    const bits = bitsFor(type);
    return { type, path: fromSshd.get(type) ?? `/etc/ssh/ssh_host_${type}_key`, ...(bits === undefined ? {} : { bits }) };
  });
}

/** Every ssh_host_* file of the image: keys, public keys, certificates, old SSH-1 keys. */
async function existingHostFiles(ctx: TaskContext, wanted: WantedKey[]): Promise<string[]> {
  const dirs = new Set(['/etc/ssh', ...wanted.map((k) => path.posix.dirname(k.path))]);
  const found: string[] = [];
  for (const dir of dirs) {
    for (const name of await listTreeDir(ctx.root, dir)) if (name.startsWith('ssh_host_')) found.push(`${dir}/${name}`);
  }
  return found;
}

async function sshKeysGroup(ctx: TaskContext): Promise<number | undefined> {
  const text = await readTreeText(ctx.root, '/etc/group');
  if (text === null) return undefined;
  return groupEntries(parseAccountFile(text, 'group', '/etc/group')).find((g) => g.name === 'ssh_keys')?.gid;
}

async function hostname(ctx: TaskContext): Promise<string> {
  const name = (await readTreeText(ctx.root, '/etc/hostname').catch(() => null))?.trim() ?? '';
  return /^[A-Za-z0-9.-]{1,253}$/.test(name) ? name : 'localhost';
}

async function fingerprintOf(ctx: TaskContext, pubInTree: string): Promise<string | null> {
  try {
    const text = await readTreeText(ctx.root, pubInTree);
    return text === null ? null : fingerprintLine(parsePublicKey(text, pubInTree));
  } catch {
    return null;
  }
}

async function removePublicFile(ctx: TaskContext, f: string): Promise<'unlinked' | 'absent'> {
  await ctx.root.assertNoSymlinks(path.posix.dirname(f));
  return unlink(ctx.root.path(f)).then(() => 'unlinked' as const, (err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return 'absent' as const;
    throw err;
  });
}

/** A run killed during generation leaves half-made keys under hidden names: remove them. */
async function removeStaleTemps(ctx: TaskContext, wanted: WantedKey[]): Promise<void> {
  for (const dir of new Set(['/etc/ssh', ...wanted.map((k) => path.posix.dirname(k.path))])) {
    for (const name of await listTreeDir(ctx.root, dir)) if (name.startsWith('.imprint-new-')) await shredTreeFile(ctx.root, `${dir}/${name}`);
  }
}

/** The version of the sshd that will serve the keys, when it loads them once at start (9.8+), else null. */
async function sshdLoadingKeysOnce(ctx: TaskContext): Promise<string | null> {
  const version = await sshdOracle(ctx.root).then((o) => o.version(), () => null);
  if (version === null || version[0] < 9 || (version[0] === 9 && version[1] < 8)) return null;
  return `OpenSSH ${version[0]}.${version[1]}`;
}

async function generate(ctx: TaskContext, keys: WantedKey[], comment: string, background = false): Promise<{ inProgress: KeyInProgress[]; generated: Promise<void> }> {
  for (const k of keys) await ctx.root.assertNoSymlinks(path.posix.dirname(k.path));
  // RSA first: it is the long one. New keys are made beside their final names, so if
  // generation fails the image's keys are still there and sshd can still start.
  const inProgress = [...keys].sort((a, b) => Number(SLOW_TYPES.has(b.type)) - Number(SLOW_TYPES.has(a.type))).map((key) => {
    const temp = `${path.posix.dirname(key.path)}/.imprint-new-${randomBytes(6).toString('hex')}`;
    const entry: KeyInProgress = { key, temp, done: Promise.resolve() };
    entry.done = generateKeyPair(key.type, key.bits, ctx.root.path(temp), comment, (pid) => {
      entry.pid = pid;
      if (background) lowerPriority(pid);
    });
    entry.done.catch(() => undefined); // awaited by whoever installs the key; never unhandled meanwhile
    return entry;
  });
  const generated = allDone(inProgress);
  generated.catch(() => undefined); // the same: a failure is reported by whoever awaits it
  return { inProgress, generated };
}

function allDone(keys: KeyInProgress[]): Promise<void> {
  return Promise.all(keys.map((k) => k.done)).then(() => undefined);
}

/**
 * Removes the temp files of keys that were not installed. Waits for every ssh-keygen still
 * running first: one that ends after the removal would leave a private key behind.
 */
async function discard(ctx: TaskContext, keys: KeyInProgress[]): Promise<void> {
  await Promise.allSettled(keys.map((k) => k.done));
  await Promise.all(keys.flatMap(({ temp }) => [temp, `${temp}.pub`]).map((t) => unlink(ctx.root.path(t)).catch(() => undefined)));
}

/** Sets modes and renames generated keys into place; returns their fingerprint lines. */
async function install(ctx: TaskContext, rec: TaskRecorder, keys: KeyInProgress[], group: number | undefined): Promise<string[]> {
  const lines: string[] = [];
  for (const { key, temp } of keys) {
    await setTreeOwnership(ctx.root, temp, group === undefined ? { mode: 0o600, uid: 0, gid: 0 } : { mode: 0o640, uid: 0, gid: group });
    await setTreeOwnership(ctx.root, `${temp}.pub`, { mode: 0o644, uid: 0, gid: 0 });
    // One directory sync for the pair: the .pub's rename, in the same directory, makes both durable.
    await replaceTreeFile(ctx.root, ctx.root.path(temp), key.path, { syncDir: false });
    await replaceTreeFile(ctx.root, ctx.root.path(`${temp}.pub`), `${key.path}.pub`);
    const fp = await fingerprintOf(ctx, `${key.path}.pub`);
    if (fp === null) throw new ImprintError(`${key.path}.pub was not written correctly`);
    lines.push(fp);
    rec.action(`generated ${key.type} ${key.path} ${fp.split(' ')[1]}`);
  }
  return lines;
}

/** "type base64" of a public key file (no comment: the host name is not the key), or null. */
async function publicKeyLine(ctx: TaskContext, pubInTree: string): Promise<string | null> {
  try {
    const text = await readTreeText(ctx.root, pubInTree);
    if (text === null) return null;
    const key = parsePublicKey(text, pubInTree);
    return `${key.type} ${key.blob.toString('base64')}`;
  } catch {
    return null;
  }
}

/**
 * The console's host key blocks, once per boot, as cloud-init prints them: the fingerprints,
 * and the public keys themselves, from which a user's side builds known_hosts
 * (`imprint known-hosts`) after checking them against the fingerprints.
 */
async function printFingerprints(ctx: TaskContext, rec: TaskRecorder, keys: WantedKey[]): Promise<string[]> {
  const lines = (await Promise.all(keys.map((k) => fingerprintOf(ctx, `${k.path}.pub`)))).filter((f): f is string => f !== null);
  const publics = (await Promise.all(keys.map((k) => publicKeyLine(ctx, `${k.path}.pub`)))).filter((f): f is string => f !== null);
  rec.block([
    '-----BEGIN SSH HOST KEY FINGERPRINTS-----', ...lines, '-----END SSH HOST KEY FINGERPRINTS-----',
    '-----BEGIN SSH HOST KEY KEYS-----', ...publics, '-----END SSH HOST KEY KEYS-----',
  ]);
  return lines;
}

interface Replaced {
  /** Installed now. */
  now: KeyInProgress[];
  /** Left to host-keys-late. */
  late: KeyInProgress[];
  group: number | undefined;
  oldFingerprints: string[];
}

/** Waits for the keys sshd needs now, removes the image's keys and installs the new ones. */
async function replaceKeys(ctx: TaskContext, rec: TaskRecorder, wanted: WantedKey[], inProgress: KeyInProgress[], started: number): Promise<Replaced> {
  // Everything else happens while ssh-keygen works.
  const [oldFiles, group] = await Promise.all([existingHostFiles(ctx, wanted), sshKeysGroup(ctx)]);
  const oldFingerprints = (await Promise.all(oldFiles.filter((f) => f.endsWith('_key.pub')).map((f) => fingerprintOf(ctx, f)))).filter((f): f is string => f !== null);
  const fast = inProgress.filter((k) => !SLOW_TYPES.has(k.key.type));
  const late = fast.length > 0 ? inProgress.filter((k) => SLOW_TYPES.has(k.key.type)) : [];
  const now = inProgress.filter((k) => !late.includes(k));
  // sshd does not wait for these: they yield the cores to the keys and checks it does wait for.
  for (const k of late) lowerPriority(k.pid);
  try {
    await allDone(now);
  } catch (err) {
    throw new ImprintError(`key generation failed, the image's keys are unchanged: ${(err as Error).message}`);
  }
  rec.verbose(`generated ${now.map((k) => k.key.type).join(', ')} in ${Date.now() - started} ms`);

  // A file that cannot be removed (immutable, read-only) does not stop the others, nor the new
  // keys going in: stopping half-way could leave sshd with no host key at all.
  const problems: string[] = [];
  const removed: string[] = [];
  for (const f of oldFiles) {
    try {
      // Public halves are public: removing them is enough.
      const how = f.endsWith('.pub') ? await removePublicFile(ctx, f) : await shredTreeFile(ctx.root, f);
      if (how !== 'absent') rec.verbose(`${how} ${f}`);
      removed.push(f);
    } catch (err) {
      problems.push(`cannot remove the image's ${f}: ${(err as Error).message}`);
    }
  }
  if (removed.length > 0) rec.action(`removed ${removed.length} old host key file(s): ${removed.map((f) => path.posix.basename(f)).join(', ')}`);
  for (const k of wanted.map((w) => now.find((t) => t.key === w)).filter((t): t is KeyInProgress => t !== undefined)) {
    try {
      await install(ctx, rec, [k], group);
    } catch (err) {
      problems.push(`cannot install ${k.key.path}: ${(err as Error).message}`);
    }
  }
  if (problems.length > 0) throw new ImprintError(problems.join('; '));
  return { now, late, group, oldFingerprints };
}

export const hostKeysTask: Task = {
  name: 'host-keys',
  phase: 'local',
  after: [],

  disabledBecause: (config) => (config.hostKeys.enabled ? null : 'host_keys.enabled is false'),

  async plan(ctx) {
    const lines: string[] = [];
    const wanted = await wantedKeys(ctx, (m) => lines.push(`warning: ${m}`));
    for (const f of await existingHostFiles(ctx, wanted)) lines.push(`would ${f.endsWith('.pub') ? 'remove' : 'shred and remove'} ${f}`);
    for (const k of wanted) lines.push(`would generate ${k.type}${k.bits ? ` ${k.bits}` : ''} ${k.path}`);
    return lines;
  },

  async run(ctx: TaskContext, rec: TaskRecorder) {
    const wanted = await wantedKeys(ctx, (m) => rec.warn(m));
    for (const k of wanted) await ctx.root.assertNoSymlinks(path.posix.dirname(k.path));
    await removeStaleTemps(ctx, wanted);
    const started = Date.now();
    const { inProgress } = await generate(ctx, wanted, `root@${await hostname(ctx)}`);
    ctx.facts.keygenStarted?.();
    let replaced: Replaced;
    try {
      replaced = await replaceKeys(ctx, rec, wanted, inProgress, started);
    } catch (err) {
      // Whatever failed (a key, the disk, an immutable directory), no private key is left
      // under a temp name; keys already installed are complete pairs.
      await discard(ctx, inProgress);
      throw err;
    }
    const { now, late, group, oldFingerprints } = replaced;
    rec.detail('old', oldFingerprints);
    rec.detail('files', wanted.map((k) => k.path));
    if (late.length > 0) {
      const generated = allDone(late);
      generated.catch(() => undefined); // awaited, and reported, by host-keys-late
      ctx.facts.pendingHostKeys = { keys: late, generated, group, all: wanted };
      rec.action(`${late.map((k) => k.key.type).join(', ')} still generating: sshd starts on ${now.map((k) => k.key.type).join(', ')}; host-keys-late installs it when it is ready`);
      // One block per boot, complete: host-keys-late prints it when RSA is in (or has failed).
      rec.detail('new', (await Promise.all(now.map((k) => fingerprintOf(ctx, `${k.key.path}.pub`)))).filter((f): f is string => f !== null));
    } else {
      rec.detail('new', await printFingerprints(ctx, rec, wanted));
    }
    return undefined;
  },
};

/** The slow host keys, installed after the others without holding sshd back. */
export const hostKeysLateTask: Task = {
  name: 'host-keys-late',
  phase: 'local',
  after: ['host-keys'],
  needs: ['host-keys'],
  background: true,

  disabledBecause: (config) => (config.hostKeys.enabled ? null : 'host_keys.enabled is false'),

  async plan() {
    return [];
  },

  async run(ctx: TaskContext, rec: TaskRecorder) {
    let pending = ctx.facts.pendingHostKeys;
    if (!pending) {
      // A run killed before the slow keys were in: make whichever of them is still missing.
      const wanted = await wantedKeys(ctx, () => undefined);
      const missing: WantedKey[] = [];
      for (const k of wanted) {
        // A refused path throws here: "unreadable" must never read as "missing, make one".
        const pub = await readTreeText(ctx.root, `${k.path}.pub`);
        if (pub === null || (await readTreeText(ctx.root, k.path)) === null) missing.push(k);
      }
      if (missing.length === 0) return 'skipped';
      const { inProgress, generated } = await generate(ctx, missing, `root@${await hostname(ctx)}`, true);
      pending = { keys: inProgress, generated, group: await sshKeysGroup(ctx), all: wanted };
    }
    try {
      await pending.generated;
    } catch (err) {
      await discard(ctx, pending.keys);
      // The keys sshd does serve still get their block on the console.
      if (ctx.facts.pendingHostKeys) await printFingerprints(ctx, rec, pending.all.filter((k) => !pending?.keys.some((p) => p.key === k)));
      throw new ImprintError(`key generation failed; sshd serves the other host keys: ${(err as Error).message}`);
    }
    const once = await Promise.all([install(ctx, rec, pending.keys, pending.group), sshdLoadingKeysOnce(ctx)]).then(([, v]) => v);
    const types = pending.keys.map((k) => k.key.type).join(', ');
    if (once === null) rec.action(`sshd loads host keys for each connection: ${types} is offered from now on`);
    else rec.action(`sshd (${once}) loads its host keys once, when it starts: one started before now offers ${types} from its next restart, not before (no reload: it would close sshd's listening socket); until then a client that accepts only ${types} host keys is refused`);
    rec.detail('servedFrom', once === null ? 'next connection' : 'next sshd restart');
    rec.detail('new', await printFingerprints(ctx, rec, pending.all));
    return undefined;
  },
};
