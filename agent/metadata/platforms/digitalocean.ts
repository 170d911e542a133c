import { ImprintError } from '../../os/errors.js';
import { idText, instance, keyList, optionalText, overHttp, type Provider } from './provider.js';

// DigitalOcean: one JSON document, /metadata/v1.json (droplet_id, hostname, public_keys).

export const digitalocean: Provider = {
  name: 'digitalocean',
  addresses: ['169.254.169.254'],
  detectedBy: 'DMI sys_vendor "DigitalOcean"',
  read: (ctx) => overHttp('digitalocean', ctx, {}, async (http) => {
    const doc = await http.json('/metadata/v1.json');
    if (doc === null) throw new ImprintError('/metadata/v1.json: HTTP 404');
    const rejected: string[] = [];
    const keys = keyList(doc.public_keys, 'public_keys', rejected);
    const hostname = optionalText(doc.hostname);
    return instance('digitalocean', idText(doc.droplet_id), keys, rejected, hostname ? { hostname } : {});
  }),
};
