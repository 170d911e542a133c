import { ImprintError } from '../../os/errors.js';
import type { LaunchKey } from '../types.js';
import type { PlatformHttp } from './fetch.js';
import { instance, optionalText, overHttp, type Provider } from './provider.js';

// Google Compute Engine. Every request carries Metadata-Flavor: Google (the server refuses
// requests without it, so a proxy cannot be tricked into asking), and every answer must carry
// it back: a body without it came from something that is not the metadata server. Keys are
// "user:key" lines in the instance's and the project's ssh-keys; the instance may block the
// project's keys; keys the guest tooling adds carry a "google-ssh" JSON comment whose
// expireOn, once past, makes the key void.

const FLAVOR = { 'Metadata-Flavor': 'Google' };
const V1 = '/computeMetadata/v1';
const KEY_LINE = /^([^:\s]{1,64}):(.*)$/;

async function flavoured(http: PlatformHttp, path: string): Promise<string | null> {
  const res = await http.send(`${V1}${path}`);
  if (res.status === 404) return null;
  if (res.status !== 200) throw new ImprintError(`${V1}${path}: HTTP ${res.status}`);
  if (res.headers['metadata-flavor'] !== 'Google') throw new ImprintError(`${V1}${path}: the answer lacks Metadata-Flavor: Google; not the metadata server`);
  return res.body;
}

/** When a google-ssh key expires, or null when it does not; throws on an unreadable expiry. */
export function googleExpiry(keyText: string): Date | null {
  const m = /\sgoogle-ssh\s+(\{.*)$/.exec(keyText);
  if (!m) return null;
  let doc: unknown;
  try {
    doc = JSON.parse(m[1] as string);
  } catch {
    throw new Error('its google-ssh comment is not JSON');
  }
  const expireOn = (doc as Record<string, unknown> | null)?.expireOn;
  if (expireOn === undefined) return null;
  const at = typeof expireOn === 'string' ? Date.parse(expireOn) : NaN;
  if (Number.isNaN(at)) throw new Error('its expireOn is not a date');
  return new Date(at);
}

/** ssh-keys text → keys each with its user; expired and malformed lines are rejected one by one. */
export function gceKeys(text: string, origin: string, rejected: string[], now: Date): LaunchKey[] {
  const keys: LaunchKey[] = [];
  text.split('\n').forEach((raw, i) => {
    const line = raw.replace(/\r$/, '');
    if (line.trim() === '') return;
    const where = `${origin}[${i}]`;
    const m = KEY_LINE.exec(line);
    if (!m) {
      rejected.push(`${where}: not "user:key"`);
      return;
    }
    const [, user, key] = m as unknown as [string, string, string];
    try {
      const expires = googleExpiry(key);
      if (expires && expires.getTime() <= now.getTime()) {
        rejected.push(`${where}: key for ${user} expired on ${expires.toISOString()}`);
        return;
      }
    } catch (err) {
      rejected.push(`${where}: key for ${user} skipped: ${(err as Error).message}`);
      return;
    }
    keys.push({ origin: where, name: user, text: key, user });
  });
  return keys;
}

export const gce: Provider = {
  name: 'gce',
  addresses: ['169.254.169.254'],
  detectedBy: 'DMI sys_vendor "Google", product_name "Google Compute Engine" or product_serial "GoogleCloud-…"',
  read: (ctx) => overHttp('gce', ctx, FLAVOR, async (http) => {
    const rejected: string[] = [];
    const [id, hostname, instanceKeys, block, projectKeys] = await Promise.all([
      flavoured(http, '/instance/id'),
      flavoured(http, '/instance/hostname'),
      flavoured(http, '/instance/attributes/ssh-keys'),
      flavoured(http, '/instance/attributes/block-project-ssh-keys'),
      flavoured(http, '/project/attributes/ssh-keys'),
    ]);
    const now = new Date();
    const keys = gceKeys(instanceKeys ?? '', 'instance ssh-keys', rejected, now);
    if (block?.trim().toLowerCase() === 'true') {
      if (projectKeys) ctx.note('gce: block-project-ssh-keys is set: the project\'s keys are not used');
    } else {
      keys.push(...gceKeys(projectKeys ?? '', 'project ssh-keys', rejected, now));
    }
    const name = optionalText(hostname);
    return instance('gce', (id ?? '').trim(), keys, rejected, name === undefined ? {} : { hostname: name });
  }),
};
