import { ImprintError } from '../../os/errors.js';
import type { LaunchKey } from '../types.js';
import { idText, instance, keyList, optionalText, overHttp, type Provider } from './provider.js';

// Akamai (Linode): a token first (PUT /v1/token, like IMDSv2), then /v1/instance and
// /v1/ssh-keys, whose keys come grouped by the user they are for.

const TOKEN_SHAPE = /^[A-Za-z0-9+/=_.-]{1,1024}$/;

export const akamai: Provider = {
  name: 'akamai',
  addresses: ['169.254.169.254', 'fd00:a9fe:a9fe::1'],
  detectedBy: 'DMI sys_vendor "Linode" or "Akamai"',
  read: (ctx) => overHttp('akamai', ctx, { Accept: 'application/json' }, async (http) => {
    const res = await http.send('/v1/token', { method: 'PUT', headers: { 'Metadata-Token-Expiry-Seconds': '3600' } });
    const token = res.body.trim();
    if (res.status !== 200 || !TOKEN_SHAPE.test(token)) throw new ImprintError(`/v1/token: ${res.status === 200 ? 'not a token' : `HTTP ${res.status}`}`);
    const auth = { headers: { 'Metadata-Token': token } };
    const [doc, sshKeys] = await Promise.all([http.json('/v1/instance', auth), http.json('/v1/ssh-keys', auth)]);
    if (doc === null) throw new ImprintError('/v1/instance: HTTP 404');
    const rejected: string[] = [];
    const keys: LaunchKey[] = [];
    const users = (sshKeys?.users ?? {}) as Record<string, unknown>;
    // "root" is where Akamai lists the launch keys chosen at creation: they are the login's
    // (authorized_keys.user, default_user, else root), as on any other platform.
    for (const [user, list] of Object.entries(users)) keys.push(...keyList(list, `users.${user}`, rejected, user === 'root' ? undefined : user));
    const hostname = optionalText(doc.label);
    return instance('akamai', idText(doc.id), keys, rejected, hostname ? { hostname } : {});
  }),
};
