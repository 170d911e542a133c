import path from 'node:path';
import { randomBytes } from 'node:crypto';
import type { Task, TaskContext } from '../boot/task.js';
import type { TaskRecorder } from '../boot/report.js';
import { ImprintError } from '../os/errors.js';
import { listTreeDir, readTreeText, replaceTreeFile, setTreeOwnership, shredTreeFile } from '../os/files.js';
import { generateKeyPair, type HostKeyType } from '../os/ssh-keygen.js';
import { groupEntries, parseAccountFile } from '../parsers/accounts.js';
import { fingerprintLine, parsePublicKey } from '../parsers/ssh-public-key.js';
import { loadConfigSet } from '../sshd/config-set.js';
import { splitArgs } from '../parsers/sshd-config.js';
import { unlink } from 'node:fs/promises';

// Fresh SSH host keys for every instance: the image's keys are overwritten and unlinked, new
// ones are generated in parallel by the distribution's ssh-keygen and renamed into place.

interface WantedKey {
  type: HostKeyType;
  /** In-tree path of the private key. */
  path: string;
  bits?: number;
}

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

export const hostKeysTask: Task = {
  name: 'host-keys',
  phase: 'local',
  after: [],

  disabledBecause: (config) => (config.hostKeys.enabled ? null : 'host_keys.enabled is false'),

  async plan(ctx) {
    const lines: string[] = [];
    const wanted = await wantedKeys(ctx, (m) => lines.push(`warning: ${m}`));
    for (const f of await existingHostFiles(ctx, wanted)) lines.push(`would shred and remove ${f}`);
    for (const k of wanted) lines.push(`would generate ${k.type}${k.bits ? ` ${k.bits}` : ''} ${k.path}`);
    return lines;
  },

  async run(ctx: TaskContext, rec: TaskRecorder) {
    const wanted = await wantedKeys(ctx, (m) => rec.warn(m));
    for (const k of wanted) await ctx.root.assertNoSymlinks(path.posix.dirname(k.path));
    await removeStaleTemps(ctx, wanted);
    const comment = `root@${await hostname(ctx)}`;
    // New keys are made beside their final names first: if generation fails, the image's keys
    // are still there and sshd can still start. RSA (the slow prime search) starts first, and
    // everything else here happens while the keys are generated.
    const temps = [...wanted].sort((a, b) => Number(b.type === 'rsa') - Number(a.type === 'rsa'))
      .map((k) => ({ key: k, temp: `${path.posix.dirname(k.path)}/.imprint-new-${randomBytes(6).toString('hex')}` }));
    const started = Date.now();
    const generated = Promise.all(temps.map(({ key, temp }) => generateKeyPair(key.type, key.bits, ctx.root.path(temp), comment)));
    generated.catch(() => undefined); // observed below; never an unhandled rejection meanwhile
    const [oldFiles, group] = await Promise.all([existingHostFiles(ctx, wanted), sshKeysGroup(ctx)]);
    const oldFingerprints = (await Promise.all(oldFiles.filter((f) => f.endsWith('_key.pub')).map((f) => fingerprintOf(ctx, f)))).filter((f): f is string => f !== null);
    try {
      await generated;
    } catch (err) {
      await Promise.all(temps.flatMap(({ temp }) => [temp, `${temp}.pub`]).map((t) => unlink(ctx.root.path(t)).catch(() => undefined)));
      throw new ImprintError(`key generation failed, the image's keys are unchanged: ${(err as Error).message}`);
    }
    rec.verbose(`generated ${wanted.map((k) => k.type).join(', ')} in ${Date.now() - started} ms`);
    for (const { temp } of temps) {
      await setTreeOwnership(ctx.root, temp, group === undefined ? { mode: 0o600, uid: 0, gid: 0 } : { mode: 0o640, uid: 0, gid: group });
      await setTreeOwnership(ctx.root, `${temp}.pub`, { mode: 0o644, uid: 0, gid: 0 });
    }

    for (const f of oldFiles) {
      // Public halves are public: removing them is enough.
      const how = f.endsWith('.pub') ? await removePublicFile(ctx, f) : await shredTreeFile(ctx.root, f);
      if (how !== 'absent') rec.verbose(`${how} ${f}`);
    }
    if (oldFiles.length > 0) rec.action(`removed ${oldFiles.length} old host key file(s): ${oldFiles.map((f) => path.posix.basename(f)).join(', ')}`);

    const fingerprints: string[] = [];
    for (const { key, temp } of wanted.map((k) => temps.find((t) => t.key === k) as (typeof temps)[number])) {
      await replaceTreeFile(ctx.root, ctx.root.path(temp), key.path);
      await replaceTreeFile(ctx.root, ctx.root.path(`${temp}.pub`), `${key.path}.pub`);
      const fp = await fingerprintOf(ctx, `${key.path}.pub`);
      if (fp === null) throw new ImprintError(`${key.path}.pub was not written correctly`);
      fingerprints.push(fp);
      rec.action(`generated ${key.type} ${key.path} ${fp.split(' ')[1]}`);
    }
    rec.detail('old', oldFingerprints);
    rec.detail('new', fingerprints);
    rec.detail('files', wanted.map((k) => k.path));
    rec.block(['-----BEGIN SSH HOST KEY FINGERPRINTS-----', ...fingerprints, '-----END SSH HOST KEY FINGERPRINTS-----']);
  },
};
