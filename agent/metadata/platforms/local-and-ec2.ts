import { resolveMetadata } from '../resolve.js';
import { configDriveMetadata, readConfigDrive, readNoCloud } from '../seeds.js';
import { ImprintError } from '../../os/errors.js';
import { NOTHING, overHttp, type PlatformRead, type Provider } from './provider.js';

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

// OpenStack's metadata service serves the config drive's meta_data.json over HTTP.
export const openstack: Provider = {
  name: 'openstack',
  addresses: ['169.254.169.254', 'fe80::a9fe:a9fe'],
  detectedBy: 'DMI product_name "OpenStack Nova"/"OpenStack Compute", sys_vendor "OpenStack Foundation", or an OpenStack cloud\'s chassis_asset_tag',
  read: (ctx) => overHttp('openstack', ctx, {}, async (http) => {
    const where = '/openstack/latest/meta_data.json';
    const text = await http.get(where);
    if (text === null) throw new ImprintError(`${where}: HTTP 404`);
    const md = configDriveMetadata({ text, where });
    md.source = 'openstack';
    return md;
  }),
};
