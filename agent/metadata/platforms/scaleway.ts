import { ImprintError } from '../../os/errors.js';
import type { LaunchKey } from '../types.js';
import { instance, optionalText, overHttp, type Provider } from './provider.js';

// Scaleway: its own address, 169.254.42.42; /conf?format=json gives id, hostname and
// ssh_public_keys as {key, fingerprint} objects.

export const scaleway: Provider = {
  name: 'scaleway',
  addresses: ['169.254.42.42'],
  detectedBy: 'DMI sys_vendor "Scaleway", or "scaleway" on the kernel command line',
  read: (ctx) => overHttp('scaleway', ctx, {}, async (http) => {
    const doc = await http.json('/conf?format=json');
    if (doc === null) throw new ImprintError('/conf: HTTP 404');
    const rejected: string[] = [];
    const keys: LaunchKey[] = [];
    const listed = doc.ssh_public_keys;
    if (listed !== undefined && !Array.isArray(listed)) rejected.push('ssh_public_keys: not a list');
    (Array.isArray(listed) ? listed : []).forEach((entry: unknown, i) => {
      const key = (entry as Record<string, unknown> | null)?.key;
      if (typeof key === 'string') keys.push({ origin: `ssh_public_keys[${i}]`, name: '', text: key });
      else rejected.push(`ssh_public_keys[${i}]: no key`);
    });
    const hostname = optionalText(doc.hostname);
    return instance('scaleway', optionalText(doc.id) ?? '', keys, rejected, hostname ? { hostname } : {});
  }),
};
