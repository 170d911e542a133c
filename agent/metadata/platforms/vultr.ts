import { ImprintError } from '../../os/errors.js';
import { idText, instance, keyList, optionalText, overHttp, type Provider } from './provider.js';

// Vultr's native service: /v1.json (instanceid, hostname, public-keys).

export const vultr: Provider = {
  name: 'vultr',
  addresses: ['169.254.169.254'],
  detectedBy: 'DMI sys_vendor "Vultr"',
  read: (ctx) => overHttp('vultr', ctx, {}, async (http) => {
    const doc = await http.json('/v1.json');
    if (doc === null) throw new ImprintError('/v1.json: HTTP 404');
    const rejected: string[] = [];
    const keys = keyList(doc['public-keys'], 'public-keys', rejected);
    const hostname = optionalText(doc.hostname);
    return instance('vultr', idText(doc.instanceid), keys, rejected, hostname ? { hostname } : {});
  }),
};
