import { dhcpServers } from '../../os/dhcp-leases.js';
import { ImprintError } from '../../os/errors.js';
import { delay } from '../deadline.js';
import { instance, keyList, NOTHING, optionalText, overHttp, urlFor, type PlatformContext, type Provider } from './provider.js';

// CloudStack and Exoscale (a CloudStack cloud): /latest/meta-data/instance-id, public-keys (one
// key a line) and local-hostname. Exoscale serves them at 169.254.169.254; plain CloudStack at
// its virtual router, which is the instance's DHCP server (os/dhcp-leases.ts says how that is
// found, and why only one private IPv4 literal is accepted).

async function readCloudStack(name: 'cloudstack' | 'exoscale', ctx: PlatformContext): ReturnType<Provider['read']> {
  return overHttp(name, ctx, {}, async (http) => {
    const rejected: string[] = [];
    const [id, keysText, hostname] = await Promise.all([
      http.get('/latest/meta-data/instance-id'),
      http.optional('/latest/meta-data/public-keys', rejected),
      http.optional('/latest/meta-data/local-hostname', rejected),
    ]);
    const keys = keyList(keysText ?? undefined, 'public-keys', rejected);
    const host = optionalText(hostname);
    return instance(name, (id ?? '').trim(), keys, rejected, host ? { hostname: host } : {});
  });
}

export const exoscale: Provider = {
  name: 'exoscale',
  addresses: ['169.254.169.254'],
  detectedBy: 'DMI product_name "Exoscale…"',
  read: (ctx) => readCloudStack('exoscale', ctx),
};

export const cloudstack: Provider = {
  name: 'cloudstack',
  // The virtual router's address differs per network: the unit cannot name it (a drop-in can).
  addresses: [],
  detectedBy: 'DMI product_name "CloudStack…"; the metadata service is the DHCP server (virtual router) from the lease',
  async read(ctx) {
    if (ctx.explicitUrl || !ctx.root.isLive) return readCloudStack('cloudstack', ctx);
    const router = await virtualRouter(ctx);
    if (router === null) return NOTHING;
    ctx.note(`cloudstack: virtual router ${router} (the DHCP server of the lease)`);
    return readCloudStack('cloudstack', { ...ctx, url: urlFor(router), explicitUrl: true });
  },
};

/**
 * The DHCP server of the lease. imprint starts before the network is up, so the DHCP client
 * may not have its lease yet: the leases are read again, with backoff, until the phase's
 * deadline. A lease that names only refused servers is final.
 */
async function virtualRouter(ctx: PlatformContext): Promise<string | null> {
  for (let attempt = 0; ; attempt += 1) {
    const { servers, refused } = await dhcpServers(ctx.root);
    if (servers.length > 1) throw new ImprintError(`cloudstack: the DHCP leases name several servers (${servers.join(', ')}); not guessing which is the virtual router`);
    if (refused.length > 0) ctx.note(`cloudstack: DHCP servers refused (not a private IPv4 address): ${refused.join(', ')}`);
    if (servers.length === 1) return servers[0] as string;
    if (refused.length > 0 || ctx.deadline.expired) {
      ctx.note('cloudstack: no DHCP lease names a virtual router');
      return null;
    }
    if (attempt === 0) ctx.note('cloudstack: no DHCP lease yet; waiting for one');
    ctx.hooks.waiting?.('waiting for a DHCP lease (the virtual router)', ctx.deadline);
    await delay(ctx.deadline.backoffMs(attempt));
  }
}
