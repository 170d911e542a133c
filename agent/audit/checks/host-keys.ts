import type { AuditContext } from '../context.js';
import { DEFAULT_HOST_KEYS } from '../context.js';
import { ev, finding, G } from '../guidelines.js';
import type { Check, Finding, Severity } from '../types.js';
import { errorMessage } from '../../os/errors.js';
import { parsePublicKey, type PublicKey } from '../../parsers/ssh-public-key.js';

// SSH host keys: missing, weak (DSA, RSA below 2048 bits, SSH-1), or the image's baked keys.
// Only public halves are read: private key material is never opened. Whether a key is the
// image's baked one is known only from a record: imprint's state says when boot made the keys
// for this instance (and for which machine); without such a record the answer is "unknown",
// not a guess. An offline image that ships host keys at all is reported by leftovers.

export interface HostKeyInfo {
  /** The private key's in-tree path. */
  path: string;
  /** sshd's configuration loads it (HostKey, or the defaults). */
  loaded: boolean;
  exists: boolean;
  pub: PublicKey | null;
  /** Why the .pub could not be read (missing, unparsable). */
  pubProblem: string | null;
  /** mtime of the key (the .pub when there is one) in ms. */
  mtimeMs: number | null;
}

export async function hostKeys(ctx: AuditContext): Promise<HostKeyInfo[]> {
  let loaded: string[] = [...DEFAULT_HOST_KEYS];
  try {
    const facts = await ctx.sshd();
    if (facts) loaded = facts.settings.get('hostkey') ?? loaded;
  } catch {
    /* sshd's checks report why sshd -T failed; the default key paths stand in */
  }
  const paths = new Set(loaded);
  for (const name of await ctx.list('/etc/ssh')) {
    if (/^ssh_host_.*key$/.test(name)) paths.add(`/etc/ssh/${name}`);
  }
  const out: HostKeyInfo[] = [];
  for (const p of [...paths].sort()) {
    const info = await ctx.stat(p);
    const pubInfo = await ctx.stat(`${p}.pub`);
    let pub: PublicKey | null = null;
    let pubProblem: string | null = null;
    try {
      const t = await ctx.text(`${p}.pub`);
      if (t === null) pubProblem = 'no .pub beside it';
      else pub = parsePublicKey(t.text.split('\n')[0] ?? '', `${p}.pub`);
    } catch (err) {
      pubProblem = errorMessage(err);
    }
    out.push({ path: p, loaded: loaded.includes(p), exists: info?.isFile() ?? false, pub, pubProblem, mtimeMs: (pubInfo ?? info)?.mtimeMs ?? null });
  }
  return out;
}

function describe(k: HostKeyInfo): string {
  if (k.pub) return `${k.pub.label} ${k.pub.bits} ${k.pub.fingerprint}${k.pub.comment ? ` ${k.pub.comment}` : ''}`;
  return `public half unreadable: ${k.pubProblem ?? 'unknown'}`;
}

export const hostKeysMissing: Check = {
  id: 'hostkeys.missing',
  title: 'Host keys sshd is configured to load but that do not exist',
  severity: 'medium',
  guidelines: [G.hostKeys, G.awsHostKeys],
  async run(ctx) {
    if ((await ctx.text('/etc/ssh/sshd_config').catch(() => null)) === null) return [];
    const keys = await hostKeys(ctx);
    const missing = keys.filter((k) => k.loaded && !k.exists);
    const none = keys.every((k) => !k.loaded || !k.exists);
    return missing.map((k) => {
      let severity: Severity;
      let message: string;
      if (!ctx.live) {
        severity = 'info';
        message = `${k.path} is not in the image: made at first boot (imprint boot, or sshd-keygen/ssh-keygen -A), which is what a shared image wants`;
      } else if (none) {
        severity = 'medium';
        message = `${k.path} does not exist and sshd has no host key at all: it cannot start`;
      } else {
        severity = 'low';
        message = `${k.path} is configured but does not exist: sshd skips it`;
      }
      return finding(severity, message, ev(k.path, null, 'absent'), { key: k.path });
    });
  },
};

export const hostKeysWeak: Check = {
  id: 'hostkeys.weak',
  title: 'Weak host keys (DSA, RSA below 2048 bits, SSH-1)',
  severity: 'medium',
  guidelines: [G.hostKeys],
  async run(ctx) {
    const out: Finding[] = [];
    for (const k of await hostKeys(ctx)) {
      if (!k.exists) continue;
      let why: string | null = null;
      if (k.pub?.type === 'ssh-dss' || (!k.pub && /_dsa_key$/.test(k.path))) why = 'a DSA key (1024 bits, disabled since OpenSSH 7.0)';
      else if (k.pub?.type === 'ssh-rsa' && k.pub.bits < 2048) why = `an RSA key of ${k.pub.bits} bits (at least 2048, 3072 recommended)`;
      else if (/\/ssh_host_key$/.test(k.path)) why = 'an SSH protocol 1 key';
      if (why) out.push(finding('medium', `${k.path} is ${why}`, ev(`${k.path}${k.pub ? '.pub' : ''}`, null, describe(k)), { key: k.path, type: k.pub?.type ?? null, bits: k.pub?.bits ?? null }));
    }
    return out;
  },
};

/** Keys older than imprint's host-keys run by more than this were not made by that run. */
const SLACK_MS = 60 * 60 * 1000;

export const hostKeysBaked: Check = {
  id: 'hostkeys.baked',
  title: 'Host keys that are the image\'s baked keys (shared by every instance)',
  severity: 'high',
  guidelines: [G.hostKeys, G.awsHostKeys],
  async run(ctx) {
    const keys = (await hostKeys(ctx)).filter((k) => k.exists);
    if (keys.length === 0) return [];
    const { state } = await ctx.state();
    const identity = await ctx.identity();
    const made = state?.completed['host-keys'];
    const out: Finding[] = [];
    for (const k of keys) {
      const facts = { key: k.path, fingerprint: k.pub?.fingerprint ?? null };
      const evidence = ev(`${k.path}${k.pub ? '.pub' : ''}`, null, describe(k));
      if (state && identity.id !== '' && state.hint.source === identity.source && state.hint.id !== identity.id) {
        out.push(finding('high', `${k.path} was kept from another machine: imprint's state was written for ${state.hint.source} ${state.hint.id}, this is ${identity.id}, and boot has not replaced the keys here`, evidence, { ...facts, baked: true }));
      } else if (state && made && !/\/ssh_host_(?:ed25519|ecdsa|rsa)_key$/.test(k.path)) {
        out.push(finding('info', `${k.path} was not made by imprint boot (it makes ed25519, ecdsa and rsa keys, and removes every other ssh_host_* key at first boot): added after it ran`, evidence, { ...facts, baked: null }));
      } else if (state && made) {
        const madeMs = Date.parse(made);
        if (k.mtimeMs !== null && Number.isFinite(madeMs) && k.mtimeMs < madeMs - SLACK_MS) {
          out.push(finding('high', `${k.path} is older than the keys imprint boot made for this instance (${made}): it was put back or kept from the image`, evidence, { ...facts, baked: true }));
        } else {
          out.push(finding('info', `${k.path} was made for this instance by imprint boot (${made})`, evidence, { ...facts, baked: false }));
        }
      } else {
        out.push(ctx.live
          ? finding('info', `${k.path}: unknown whether this is the image's baked key (no record says which keys the image had: imprint boot has not made keys here); compare the fingerprint with the first boot's console output`, evidence, { ...facts, baked: null })
          : finding('info', `${k.path} is shipped in this offline image (no record says first boot replaced it; leftovers reports it)`, evidence, { ...facts, baked: null }));
      }
    }
    return out;
  },
};

export const HOST_KEY_CHECKS = [hostKeysMissing, hostKeysWeak, hostKeysBaked];
