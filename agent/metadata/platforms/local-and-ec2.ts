import { resolveMetadata } from '../resolve.js';
import { configDriveMetadata, readConfigDrive, readNoCloud } from '../seeds.js';
import { ImprintError } from '../../os/errors.js';
import { linkLocalInterfaces } from '../../os/link-local.js';
import { zonedUrl } from '../../os/zoned-url.js';
import type { PlatformHttp } from './fetch.js';
import { firstToAnswer, NOTHING, overHttp, type PlatformRead, type Provider } from './provider.js';

// The sources imprint spoke before detection, behind the platform interface: wrapped, not
// rewritten (their rules live in ec2.ts, seeds.ts and resolve.ts).

const local = (metadata: PlatformRead['metadata']): PlatformRead => (metadata ? { metadata, close: async () => undefined } : NOTHING);

export const ec2: Provider = {
  name: 'ec2',
  addresses: ['169.254.169.254', 'fd00:ec2::254'],
  detectedBy: 'DMI sys_vendor or bios_vendor "Amazon EC2", product_uuid or /sys/hypervisor/uuid starting "ec2", sys_vendor "3DS Outscale"; also the fallback when nothing is identified',
  read: (ctx) => resolveMetadata({
    root: ctx.root, config: { ...ctx.config, sources: ['ec2'], url: ctx.url }, explicitUrl: ctx.explicitUrl,
    productCodes: ctx.productCodes, hooks: ctx.hooks, note: ctx.note,
  }),
};

export const nocloud: Provider = {
  name: 'nocloud',
  addresses: [],
  detectedBy: 'a filesystem labelled cidata, or ds=nocloud on the kernel command line',
  read: async (ctx) => local(await readNoCloud(ctx.root, ctx.config)),
};

export const configDrive: Provider = {
  name: 'config-drive',
  addresses: [],
  detectedBy: 'a filesystem labelled config-2',
  read: async (ctx) => local(await readConfigDrive(ctx.root, ctx.config)),
};

// OpenStack's metadata service serves the config drive's meta_data.json over HTTP, at
// 169.254.169.254 and, on IPv6 networks, at fe80::a9fe:a9fe on the instance's link. On a booted
// system both are asked at once (IPv6 through each interface with a link-local address): an
// IPv6-only instance is not left waiting for an IPv4 address it will never get.
const OPENSTACK_IPV6 = 'fe80::a9fe:a9fe';

async function openstackMetadata(http: PlatformHttp) {
  const where = '/openstack/latest/meta_data.json';
  const text = await http.get(where);
  if (text === null) throw new ImprintError(`${where}: HTTP 404`);
  const md = configDriveMetadata({ text, where });
  md.source = 'openstack';
  return md;
}

export const openstack: Provider = {
  name: 'openstack',
  addresses: ['169.254.169.254', OPENSTACK_IPV6],
  detectedBy: 'DMI product_name "OpenStack Nova"/"OpenStack Compute", sys_vendor "OpenStack Foundation", or an OpenStack cloud\'s chassis_asset_tag',
  read: (ctx) => {
    const links = ctx.root.isLive && !ctx.explicitUrl ? linkLocalInterfaces() : [];
    if (links.length === 0) return overHttp('openstack', ctx, {}, openstackMetadata);
    return firstToAnswer('openstack', ctx, [ctx.url, ...links.map((l) => zonedUrl(OPENSTACK_IPV6, l))], {}, openstackMetadata);
  },
};
