import path from 'node:path';
import type { Task, TaskContext } from '../boot/task.js';
import type { TaskRecorder } from '../boot/report.js';
import type { Config } from '../config.js';
import { INSTANCE_ID, type LaunchKey } from '../metadata/types.js';
import { ImprintError } from '../os/errors.js';
import { lookupUser, readHomeFile, writeHomeFile, type HomeUser } from '../os/home-files.js';
import { readSystemKeysFile, writeSystemKeysFile } from '../os/system-keys-file.js';
import { keysFileTarget, type KeysFileTarget } from '../sshd/authorized-keys-file.js';
import { readTreeText } from '../os/files.js';
import type { RootTree } from '../os/root.js';
import { keygenFingerprint } from '../os/ssh-keygen.js';
import {
  managedBlock,
  parseAuthorizedKeysFile,
  replaceManagedBlock,
  tcpServicesFrom,
  userKeyBlobs,
  validateLaunchKey,
  type AuthorizedKeysFile,
  type LaunchKeyContext,
} from '../parsers/authorized-keys.js';
import { configuredUser, keyOwners, type KeyOwner } from './key-owners.js';

// The launch key(s) from metadata into the file sshd reads keys from for that user
// (AuthorizedKeysFile as the image's sshd applies it to the user, sshd/authorized-keys-file.ts;
// ~/.ssh/authorized_keys by default). imprint owns one
// marked block in that file and replaces it on every run, so keys of a previous instance (a
// rebundled image) are removed instead of piling up; the user's own lines stay byte for byte.
// Every key is validated first (parsers/authorized-keys.ts); the write goes through
// os/home-files.ts, which refuses symlinks, hard links, wrong owners and writable directories.

export const AUTHORIZED_KEYS_FILE = '.ssh/authorized_keys';

export interface InstalledKey {
  origin: string;
  fingerprint: string;
  type: string;
  label: string;
}

interface Decision {
  user: HomeUser;
  file: string;
  target: KeysFileTarget;
  /** Keys that go into the block. */
  keys: InstalledKey[];
  /** New file content, or null when nothing is to be written. */
  text: string | null;
  /** Lines for the report (also the --dry-run plan, phrased as what happens). */
  actions: string[];
  warnings: string[];
  /** Instance ids of the blocks being removed or replaced that were written for another instance. */
  previous: string[];
  /** Valid launch keys left out because the user's own lines already have them. */
  alreadyTheUsers: number;
}

/** The account that gets the keys the platform gives to no one: the configured one, else the default user, else root. */
export function targetUser(config: Config): string {
  return configuredUser(config);
}

/** An origin from metadata (a config drive key name is free text) fit for a message. */
function originLabel(origin: string): string {
  const clean = origin.replace(/[^\x20-\x7e]/g, '?');
  return clean.length > 80 ? `${clean.slice(0, 80)}…` : clean || '(unnamed key)';
}

/** What key lines are judged against: now, and the tree's /etc/services for permitopen= ports by name. */
async function keyContext(root: RootTree): Promise<LaunchKeyContext> {
  const services = await readTreeText(root, '/etc/services').catch(() => null);
  return { now: Date.now() / 1000, env: services === null ? {} : { tcpService: tcpServicesFrom(services) } };
}

/**
 * Validates every line of every launch key, then reads each kept line back with the image's ssh-keygen -l;
 * duplicates (of each other, of the user's lines) are dropped.
 */
async function launchKeys(keys: readonly LaunchKey[], allowOptions: boolean, existing: AuthorizedKeysFile | null, d: Decision, context: LaunchKeyContext, root: RootTree): Promise<string[]> {
  const userBlobs = existing ? userKeyBlobs(existing) : new Set<string>();
  const seen = new Set<string>();
  const lines: string[] = [];
  for (const key of keys) {
    const origin = originLabel(key.origin);
    const text = typeof key.text === 'string' ? key.text : '';
    // One entry is one key: a line break inside it (CR or LF, other than at the end) is how a
    // second key or an option gets smuggled in, so the whole entry is refused.
    const body = text.replace(/\r?\n$/, '');
    if (/[\r\n]/.test(body)) {
      d.warnings.push(`${origin}: skipped: embedded line break (an entry holds exactly one key)`);
      continue;
    }
    if (body.trim() === '' || body.trim().startsWith('#')) {
      d.warnings.push(`${origin}: skipped: no key in it`);
      continue;
    }
    const candidates = [{ line: body, n: 1 }];
    for (const { line } of candidates) {
      const where = origin;
      const result = validateLaunchKey(line, where, allowOptions, context);
      if (!result.ok) {
        d.warnings.push(`${where}: skipped: ${result.reason}`);
        continue;
      }
      if (seen.has(result.base64)) {
        d.actions.push(`${where}: ${result.fingerprint} listed twice; written once`);
        continue;
      }
      seen.add(result.base64);
      if (userBlobs.has(result.base64)) {
        d.alreadyTheUsers += 1;
        d.actions.push(`${where}: ${result.fingerprint} (${result.label}) is already in ${d.file} outside imprint's block; the user's line applies`);
        continue;
      }
      const readBack = await keygenFingerprint(result.line, root);
      if (readBack !== result.fingerprint) {
        d.warnings.push(`${where}: skipped: ssh-keygen -l ${readBack === null ? 'cannot read the key line' : `reads another key (${readBack}) from the line`}, so sshd would not honour it as ${result.fingerprint}`);
        continue;
      }
      if (result.options.length > 0) d.actions.push(`${where}: ${result.fingerprint} keeps its options (${result.options.join(', ')})`);
      lines.push(result.line);
      d.keys.push({ origin: where, fingerprint: result.fingerprint, type: result.type, label: result.label });
    }
  }
  return lines;
}

/** A JS string as the latin1 "one character per byte" text the file is handled as. */
const toFileText = (text: string): string => Buffer.from(text, 'utf8').toString('latin1');

async function decide(ctx: TaskContext, owner: KeyOwner): Promise<Decision> {
  const md = ctx.facts.metadata;
  if (!md) throw new ImprintError('no metadata: the launch keys cannot be known');
  if (typeof md.instanceId !== 'string' || !INSTANCE_ID.test(md.instanceId)) {
    throw new ImprintError(`instance id ${JSON.stringify(String(md.instanceId).slice(0, 40))} is not a valid instance id`);
  }
  const user = await lookupUser(ctx.root, owner.user);
  const target = await keysFileTarget(ctx.root, user);
  if (target.file === '') {
    throw new ImprintError(`no file sshd reads keys from for ${user.name} can be written safely (AuthorizedKeysFile: ${target.sshdReads.join(' ') || 'none'}${target.skipped.length > 0 ? `; ${target.skipped.join('; ')}` : ''})`);
  }
  const file = target.file;
  const d: Decision = { user, file, target, keys: [], text: null, actions: [], warnings: [], previous: [], alreadyTheUsers: 0 };
  if (target.assumed) d.warnings.push(target.assumed);
  for (const s of target.skipped) d.warnings.push(`not written to ${s} (sshd would not read it)`);
  if (target.command) d.warnings.push(`AuthorizedKeysCommand ${target.command} is set: sshd also asks it for ${user.name}'s keys`);
  const sshdDefault = ['.ssh/authorized_keys', '.ssh/authorized_keys2'].map((f) => path.posix.join(user.home, f));
  if (target.sshdReads.join(' ') !== sshdDefault.join(' ') || target.file !== sshdDefault[0]) {
    d.actions.push(`sshd reads ${user.name}'s keys from ${target.sshdReads.join(', ')}; the launch keys go to ${file}`);
  }

  // The file is handled as latin1 text: one character per byte, so whatever bytes the user's
  // lines hold (even invalid UTF-8) are written back exactly; imprint's block is UTF-8 encoded
  // into that representation (toFileText).
  const raw = target.inHome !== null ? await readHomeFile(ctx.root, user, target.inHome) : await readSystemKeysFile(ctx.root, file);
  const oldText = raw === null ? null : raw.toString('latin1');
  const existing = oldText === null ? null : parseAuthorizedKeysFile(oldText);
  const blocks = existing?.parts.filter((p) => p.kind === 'imprint') ?? [];
  for (const b of blocks) {
    if (b.kind === 'imprint' && !b.terminated) {
      d.warnings.push(`${file}: imprint's block for ${b.instanceId ?? '?'} has no end marker; everything after its start (${b.lines.length} lines) is treated as imprint's and replaced`);
    }
  }
  const otherInstances = [...new Set(blocks.map((b) => (b.kind === 'imprint' ? b.instanceId ?? '?' : '')).filter((id) => id !== md.instanceId))];

  const lines = await launchKeys(owner.keys, ctx.config.authorizedKeys.allowOptions, existing, d, await keyContext(ctx.root), ctx.root);
  if (lines.length === 0) {
    const why = owner.keys.length === 0
      ? 'metadata has no launch keys'
      : d.alreadyTheUsers > 0 ? "every launch key is already among the user's own lines" : 'no usable launch key in metadata';
    if (existing === null || blocks.length === 0) {
      d.actions.push(`${why}; nothing written`);
      return d;
    }
    if (otherInstances.length === 0) {
      // Same instance as the block: a key list that went empty (or a metadata hiccup) must not lock out.
      d.actions.push(`${why}; the keys already installed for ${md.instanceId} are kept`);
      return d;
    }
    // A previous instance's launch keys do not belong to this one: they go, even with nothing to put instead.
    d.previous = otherInstances;
    d.text = replaceManagedBlock(existing, null);
    d.actions.push(`${why}; removed the launch keys of previous instance ${otherInstances.join(', ')} from ${file}`);
    return d;
  }

  const block = toFileText(managedBlock(md.instanceId, lines));
  const text = existing ? replaceManagedBlock(existing, block) : block;
  if (text === oldText) {
    d.actions.push(`${lines.length} launch key${lines.length === 1 ? '' : 's'} already in ${file}: ${d.keys.map((k) => `${k.fingerprint} (${k.label})`).join(', ')}`);
    return d;
  }
  d.text = text;
  d.previous = otherInstances;
  if (otherInstances.length > 0) d.actions.push(`replaced the launch keys of previous instance ${otherInstances.join(', ')}`);
  d.actions.push(`${lines.length} launch key${lines.length === 1 ? '' : 's'} for ${user.name} into ${file}: ${d.keys.map((k) => `${k.fingerprint} (${k.label})`).join(', ')}`);
  return d;
}

export const authorizedKeysTask: Task = {
  name: 'authorized-keys',
  phase: 'network',
  after: ['platform-users'],

  disabledBecause: (config) => (config.authorizedKeys.enabled ? null : 'authorized_keys.enabled is false'),

  async plan(ctx) {
    if (!ctx.facts.metadata) {
      return [`would put the launch keys from metadata into ~${targetUser(ctx.config)}/${AUTHORIZED_KEYS_FILE}`];
    }
    const { owners, refused } = keyOwners(ctx.facts.metadata, ctx.config);
    const lines = refused.map((r) => `would warn: ${r}`);
    for (const owner of owners) {
      const d = await decideOwner(ctx, owner, lines);
      if (!d) continue;
      lines.push(...d.warnings.map((w) => `would warn: ${w}`), ...d.actions.map((a) => (d.text === null ? a : `would write: ${a}`)));
    }
    return lines;
  },

  async run(ctx: TaskContext, rec: TaskRecorder) {
    const md = ctx.facts.metadata;
    if (!md) throw new ImprintError('no metadata: the launch keys cannot be known');
    const { owners, refused } = keyOwners(md, ctx.config);
    for (const r of refused) rec.warn(r);
    const skipped: string[] = [];
    const byUser: Record<string, unknown>[] = [];
    for (const owner of owners) {
      const d = await decideOwner(ctx, owner, skipped);
      if (!d) continue;
      await apply(ctx, rec, d, owner.fromPlatform ? byUser : null);
    }
    for (const s of skipped) rec.warn(s);
    if (byUser.length > 0) rec.detail('platformUsers', byUser);
    return undefined;
  },
};

const FIRST_LOGIN_UID = 1000;

/** A platform-named user that does not exist (metadata.platform_users: existing) is one skipped line, not a failed task. */
async function decideOwner(ctx: TaskContext, owner: KeyOwner, skipped: string[]): Promise<Decision | null> {
  if (!owner.fromPlatform) return decide(ctx, owner);
  try {
    // A platform may name any login; root and the system accounts (below the usual UID_MIN)
    // get keys only when the config names them, never because metadata says so.
    const account = await lookupUser(ctx.root, owner.user);
    if (account.uid < FIRST_LOGIN_UID) {
      skipped.push(`${owner.keys.length} key(s) for ${owner.user} skipped: a system account (uid ${account.uid}) gets keys only when authorized_keys.user names it`);
      return null;
    }
    return await decide(ctx, owner);
  } catch (err) {
    if (!(err instanceof ImprintError) || !/is not in \/etc\/passwd/.test(err.message)) throw err;
    skipped.push(`${owner.keys.length} key(s) for ${owner.user} skipped: no such user (metadata.platform_users: ${ctx.config.metadata.platformUsers})`);
    return null;
  }
}

/** Writes one user's block; the configured user's facts are the task's details, a platform user's a row of platformUsers. */
async function apply(ctx: TaskContext, rec: TaskRecorder, d: Decision, platformRows: Record<string, unknown>[] | null): Promise<void> {
  for (const w of d.warnings) rec.warn(w);
  if (platformRows) platformRows.push({ user: d.user.name, file: d.file, keys: d.keys, written: d.text !== null });
  else {
    rec.detail('user', d.user.name);
    rec.detail('file', d.file);
    rec.detail('sshdReads', d.target.sshdReads);
    if (d.target.command) rec.detail('authorizedKeysCommand', d.target.command);
    rec.detail('keys', d.keys);
    if (d.previous.length > 0) rec.detail('previousInstances', d.previous);
  }
  if (d.text !== null) {
    if (d.target.inHome === null) {
      await writeSystemKeysFile(ctx.root, d.file, Buffer.from(d.text, 'latin1'), d.user.uid);
    } else {
      const result = await writeHomeFile(ctx.root, d.user, d.target.inHome, Buffer.from(d.text, 'latin1'));
      for (const dir of result.createdDirs) rec.action(`created ${dir} (0700, ${d.user.name})`);
      if (result.previousMode !== null && result.previousMode !== 0o600) {
        rec.action(`${d.file} was mode 0${result.previousMode.toString(8)}; now 0600`);
      }
    }
  }
  if (!platformRows) rec.detail('written', d.text !== null);
  for (const a of d.actions) rec.action(a);
}
