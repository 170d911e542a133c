import path from 'node:path';
import type { Account, AuditContext } from '../context.js';
import { SSHD_DEFAULTS } from '../context.js';
import { ev, finding, G } from '../guidelines.js';
import { CheckSkipped, type Check, type Finding } from '../types.js';
import { parseAuthorizedKeysFile, readKeyLine, tcpServicesFrom } from '../../parsers/authorized-keys.js';
import { splitArgs } from '../../parsers/sshd-config.js';

// Every key that lets someone log in: each account's authorized_keys files (the ones sshd's
// AuthorizedKeysFile names), with fingerprints. imprint's boot writes the launch keys from the
// metadata into one marked block ("# imprint: launch keys for instance <id>"); when imprint's
// state knows this instance, any key outside that block, or in a block for another instance,
// did not come from this instance's metadata and is an extra key.

export interface AuthorizedKey {
  user: string;
  uid: number;
  file: string;
  line: number;
  type: string;
  label: string;
  bits: number;
  fingerprint: string;
  comment: string;
  options: string | null;
  /** The instance id of the imprint block holding the key; null when it is one of the user's own lines. */
  block: string | null;
  certAuthority: boolean;
}

/** The files AuthorizedKeysFile names for an account (%h, %u, %U, %% expanded; relative to the home). */
export function authorizedKeysFiles(setting: string, account: Account): string[] {
  const out: string[] = [];
  for (const pattern of splitArgs(setting)) {
    if (pattern.toLowerCase() === 'none') continue;
    const expanded = pattern.replace(/%[%hUu]/g, (t) => (t === '%%' ? '%' : t === '%h' ? account.home : t === '%u' ? account.name : String(account.uid)));
    out.push(path.posix.normalize(expanded.startsWith('/') ? expanded : `${account.home}/${expanded}`));
  }
  return out;
}

async function keySetting(ctx: AuditContext): Promise<{ files: string; command: string }> {
  let facts = null;
  try {
    facts = await ctx.sshd();
  } catch {
    facts = null; // sshd's own checks report why; the default file names still apply
  }
  return {
    files: facts?.settings.get('authorizedkeysfile')?.[0] ?? SSHD_DEFAULTS.authorizedkeysfile as string,
    command: facts?.settings.get('authorizedkeyscommand')?.[0] ?? 'none',
  };
}

/** Every key line of every account's authorized_keys files, in passwd order. */
export async function authorizedKeys(ctx: AuditContext): Promise<AuthorizedKey[]> {
  const { files } = await keySetting(ctx);
  const out: AuthorizedKey[] = [];
  const seen = new Set<string>();
  const services = await ctx.text('/etc/services').catch(() => null);
  const env = services === null ? {} : { tcpService: tcpServicesFrom(services.text) };
  const now = Date.now() / 1000;
  for (const account of await ctx.accounts()) {
    if (!account.home.startsWith('/')) continue;
    for (const file of authorizedKeysFiles(files, account)) {
      const key = `${account.name}\0${file}`;
      if (seen.has(key)) continue;
      seen.add(key);
      const t = await ctx.text(file).catch(() => null);
      if (t === null) continue;
      let lineNo = 1;
      for (const part of parseAuthorizedKeysFile(t.text).parts) {
        const lines = part.text.split('\n');
        if (lines[lines.length - 1] === '') lines.pop();
        for (const raw of lines) {
          const n = lineNo;
          lineNo += 1;
          // The same reading as boot's (parsers/authorized-keys.ts readKeyLine): a line sshd
          // skips, or with which it denies every login, is not a way in and is not listed.
          const read = readKeyLine(raw, now, env);
          if (read.kind !== 'key') continue;
          const { key } = read;
          out.push({
            user: account.name, uid: account.uid, file, line: n, type: key.type, label: key.label, bits: key.bits,
            fingerprint: key.fingerprint, comment: read.line.comment, options: read.line.options,
            block: part.kind === 'imprint' ? (part.instanceId ?? '(unreadable id)') : null,
            certAuthority: read.certAuthority,
          });
        }
      }
    }
  }
  return out;
}

function describe(k: AuthorizedKey): string {
  const weak = k.type === 'ssh-dss' ? ' (DSA: refused by OpenSSH 7.0 and later)' : k.type === 'ssh-rsa' && k.bits < 2048 ? ` (RSA ${k.bits}: too small, refused by current OpenSSH)` : '';
  return `${k.bits} ${k.fingerprint} ${k.comment || 'no comment'} (${k.label})${weak}${k.options !== null ? ` options: ${k.options}` : ''}`;
}

function keyFacts(k: AuthorizedKey): Record<string, string | number | boolean | null> {
  return { user: k.user, fingerprint: k.fingerprint, type: k.type, bits: k.bits, block: k.block, certAuthority: k.certAuthority };
}

/**
 * The instance whose launch keys imprint's state knows (the keys are in imprint's block for it),
 * or why none is known: no state, no instance id yet, or a state written on another machine.
 */
export async function knownInstance(ctx: AuditContext): Promise<string | { why: string }> {
  const { state } = await ctx.state();
  if (!state?.instanceId) {
    return { why: 'imprint\'s state does not know this instance\'s metadata keys (no instance id in /var/lib/imprint/state.json): compare the keys ssh.authorized-keys lists with the ones you launched with' };
  }
  const identity = await ctx.identity();
  if (identity.id !== '' && state.hint.source === identity.source && state.hint.id !== identity.id) {
    return { why: `imprint's state was written on another machine (${state.hint.source} ${state.hint.id}, this is ${identity.id}): imprint boot has not run here yet` };
  }
  return state.instanceId;
}

/**
 * Whether ssh.extra-authorized-keys accounts for everything in a file: every line outside imprint's
 * block for `known` is blank, a comment, or a key it reads (and so reports). A line sshd cannot
 * read is not a way in, but it is still something left in the image: leftovers reports the file.
 */
export async function keyFileJudged(ctx: AuditContext, file: string, known: string): Promise<boolean> {
  const t = await ctx.text(file).catch(() => null);
  if (t === null) return true;
  for (const part of parseAuthorizedKeysFile(t.text).parts) {
    if (part.kind === 'imprint' && part.instanceId === known) continue;
    for (const raw of part.text.split('\n')) {
      const read = readKeyLine(raw);
      if (read.kind === 'blank' || read.kind === 'comment') continue;
      if (read.kind === 'ignored') return false;
    }
  }
  return true;
}

export const sshAuthorizedKeys: Check = {
  id: 'ssh.authorized-keys',
  title: 'SSH keys that can log in, per account, with fingerprints',
  severity: 'info',
  guidelines: [G.extraKeys],
  async run(ctx) {
    const out: Finding[] = [];
    for (const k of await authorizedKeys(ctx)) {
      const where = k.block !== null ? `imprint's block for instance ${k.block}` : 'the user\'s own lines';
      out.push(finding('info', `${k.user} can be logged into with ${k.certAuthority ? 'any key signed by the CA' : 'the key'} ${k.fingerprint} (${where})`, ev(k.file, k.line, describe(k)), keyFacts(k)));
    }
    const { command } = await keySetting(ctx);
    if (command.toLowerCase() !== 'none') {
      out.push(finding('info', 'sshd also asks a program for authorized keys at every login (AuthorizedKeysCommand)', ev('/etc/ssh/sshd_config', null, `authorizedkeyscommand ${command}`)));
    }
    return out;
  },
};

export const sshExtraAuthorizedKeys: Check = {
  id: 'ssh.extra-authorized-keys',
  title: 'SSH keys that did not come from this instance\'s metadata',
  severity: 'high',
  guidelines: [G.extraKeys],
  async run(ctx) {
    const known = await knownInstance(ctx);
    if (typeof known !== 'string') throw new CheckSkipped(known.why);
    const out: Finding[] = [];
    for (const k of await authorizedKeys(ctx)) {
      if (k.block === known) continue;
      const why = k.block === null
        ? `is not among the launch keys imprint installed for instance ${known}`
        : `was installed for another instance (${k.block}), not this one (${known})`;
      out.push(finding('high', `${k.user}: key ${k.fingerprint} ${why}`, ev(k.file, k.line, describe(k)), { ...keyFacts(k), instanceId: known }));
    }
    return out;
  },
};

export const AUTHORIZED_KEYS_CHECKS = [sshAuthorizedKeys, sshExtraAuthorizedKeys];
