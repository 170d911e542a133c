import { parse as parseYaml } from 'yaml';
import { ImprintError } from '../../os/errors.js';
import { idText, instance, keyList, optionalText, overHttp, type Provider } from './provider.js';

// Hetzner Cloud: /hetzner/v1/metadata is a YAML document (instance-id, hostname, public-keys).

export const hetzner: Provider = {
  name: 'hetzner',
  addresses: ['169.254.169.254'],
  detectedBy: 'DMI sys_vendor "Hetzner"',
  read: (ctx) => overHttp('hetzner', ctx, {}, async (http) => {
    const where = '/hetzner/v1/metadata';
    const text = await http.get(where);
    if (text === null) throw new ImprintError(`${where}: HTTP 404`);
    let doc: unknown;
    try {
      doc = parseYaml(text, { maxAliasCount: 10 });
    } catch (err) {
      throw new ImprintError(`${where}: not YAML: ${(err as Error).message.split('\n')[0]}`);
    }
    if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) throw new ImprintError(`${where}: not a mapping`);
    const meta = doc as Record<string, unknown>;
    const rejected: string[] = [];
    const keys = keyList(meta['public-keys'], 'public-keys', rejected);
    const hostname = optionalText(meta.hostname);
    return instance('hetzner', idText(meta['instance-id']), keys, rejected, hostname ? { hostname } : {});
  }),
};
