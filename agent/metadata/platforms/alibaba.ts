import { ImprintError } from '../../os/errors.js';
import type { LaunchKey } from '../types.js';
import { instance, optionalText, overHttp, type Provider } from './provider.js';

// Alibaba Cloud ECS: EC2-shaped paths at 100.100.100.200, with its own token (PUT
// /latest/api/token, X-aliyun-ecs-metadata-token*). Keys: public-keys/N/openssh-key.

const TOKEN_SHAPE = /^[A-Za-z0-9+/=_.-]{1,1024}$/;

export const alibaba: Provider = {
  name: 'alibaba',
  addresses: ['100.100.100.200'],
  detectedBy: 'DMI product_name "Alibaba Cloud ECS" or sys_vendor "Alibaba Cloud"',
  read: (ctx) => overHttp('alibaba', ctx, {}, async (http) => {
    const res = await http.send('/latest/api/token', { method: 'PUT', headers: { 'X-aliyun-ecs-metadata-token-ttl-seconds': '21600' } });
    const token = res.body.trim();
    if (res.status !== 200 || !TOKEN_SHAPE.test(token)) throw new ImprintError(`/latest/api/token: ${res.status === 200 ? 'not a token' : `HTTP ${res.status}`}`);
    const auth = { headers: { 'X-aliyun-ecs-metadata-token': token } };
    const rejected: string[] = [];
    const [id, hostname, listing] = await Promise.all([
      http.get('/latest/meta-data/instance-id', auth),
      http.optional('/latest/meta-data/hostname', rejected, auth),
      http.get('/latest/meta-data/public-keys/', auth),
    ]);
    const indexes: string[] = [];
    for (const line of (listing ?? '').split('\n').map((l) => l.trim()).filter(Boolean)) {
      const m = /^(\d{1,4})\/?(=.*)?$/.exec(line);
      if (m) indexes.push(m[1] as string);
      else rejected.push(`public-keys/: line ${JSON.stringify(line.slice(0, 60))} is not an index`);
    }
    const texts = await Promise.all(indexes.map((n) => http.optional(`/latest/meta-data/public-keys/${n}/openssh-key`, rejected, auth)));
    const keys: LaunchKey[] = [];
    indexes.forEach((n, i) => {
      const text = texts[i];
      if (typeof text === 'string') keys.push({ origin: `public-keys/${n}`, name: '', text });
    });
    const name = optionalText(hostname);
    return instance('alibaba', (id ?? '').trim(), keys, rejected, name ? { hostname: name } : {});
  }),
};
