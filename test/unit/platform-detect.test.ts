import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describeDetection, detectPlatform } from '../../agent/metadata/platforms/detect.js';
import { choosePlatform } from '../../agent/metadata/platforms/resolve-platform.js';
import { RootTree } from '../../agent/os/root.js';
import { readPlatformSignals } from '../../agent/os/platform-signals.js';

// Detection from fixture trees (--root): DMI files, /sys/hypervisor/uuid, /proc/cmdline and
// /dev/disk/by-label as the firmware, kernel and udev would lay them out. This host's own
// DMI is never read: every tree here is a scratch directory.

interface Fixture {
  dmi?: Record<string, string>;
  hypervisor?: string;
  cmdline?: string;
  labels?: string[];
  files?: Record<string, string>;
}

let dirs: string[] = [];

async function tree(f: Fixture): Promise<RootTree> {
  const dir = await mkdtemp(path.join(tmpdir(), 'imprint-detect-'));
  dirs.push(dir);
  const put = async (rel: string, text: string): Promise<void> => {
    await mkdir(path.dirname(path.join(dir, rel)), { recursive: true });
    await writeFile(path.join(dir, rel), text);
  };
  for (const [field, value] of Object.entries(f.dmi ?? {})) await put(`sys/class/dmi/id/${field}`, `${value}\n`);
  if (f.hypervisor) await put('sys/hypervisor/uuid', `${f.hypervisor}\n`);
  if (f.cmdline) await put('proc/cmdline', `${f.cmdline}\n`);
  for (const label of f.labels ?? []) {
    await mkdir(path.join(dir, 'dev/disk/by-label'), { recursive: true });
    await symlink('../../sr0', path.join(dir, 'dev/disk/by-label', label));
  }
  for (const [rel, text] of Object.entries(f.files ?? {})) await put(rel, text);
  return new RootTree(dir);
}

async function detect(f: Fixture) {
  const root = await tree(f);
  return (await choosePlatform(root, undefined, 'auto'));
}

describe('platform detection from local signals', () => {
  afterEach(async () => {
    await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
    dirs = [];
  });

  const cases: [string, Fixture, string][] = [
    ['ec2 (Nitro)', { dmi: { sys_vendor: 'Amazon EC2', product_name: 'm5.large' } }, 'ec2'],
    ['ec2 (Xen, lower-case uuid)', { dmi: { product_uuid: 'ec2e1916-9099-7caf-fd21-012345abcdef', sys_vendor: 'Xen' } }, 'ec2'],
    ['ec2 (Xen hypervisor uuid only)', { hypervisor: 'ec2e1916-9099-7caf-fd21-012345abcdef' }, 'ec2'],
    ['Outscale', { dmi: { sys_vendor: '3DS Outscale', product_name: '3DS Outscale VM' } }, 'ec2'],
    ['gce', { dmi: { sys_vendor: 'Google', product_name: 'Google Compute Engine', product_serial: 'GoogleCloud-1234ABCD' } }, 'gce'],
    ['azure', { dmi: { sys_vendor: 'Microsoft Corporation', product_name: 'Virtual Machine', chassis_asset_tag: '7783-7084-3265-9085-8269-3286-77' } }, 'azure'],
    ['oci', { dmi: { sys_vendor: 'QEMU', chassis_asset_tag: 'OracleCloud.com' } }, 'oci'],
    ['digitalocean', { dmi: { sys_vendor: 'DigitalOcean', product_name: 'Droplet' } }, 'digitalocean'],
    ['hetzner', { dmi: { sys_vendor: 'Hetzner', product_name: 'vServer' } }, 'hetzner'],
    ['scaleway (DMI)', { dmi: { sys_vendor: 'Scaleway', product_name: 'SCW-DEV1-S' } }, 'scaleway'],
    ['scaleway (kernel command line)', { cmdline: 'root=/dev/vda1 scaleway quiet' }, 'scaleway'],
    ['vultr', { dmi: { sys_vendor: 'Vultr', product_name: 'VC2' } }, 'vultr'],
    ['akamai (Linode)', { dmi: { sys_vendor: 'Linode', product_name: 'Compute Instance' } }, 'akamai'],
    ['akamai', { dmi: { sys_vendor: 'Akamai', product_name: 'Compute Instance' } }, 'akamai'],
    ['exoscale', { dmi: { sys_vendor: 'Exoscale', product_name: 'Exoscale Compute Platform' } }, 'exoscale'],
    ['cloudstack', { dmi: { sys_vendor: 'Apache Software Foundation', product_name: 'CloudStack KVM Hypervisor' } }, 'cloudstack'],
    ['alibaba', { dmi: { sys_vendor: 'Alibaba Cloud', product_name: 'Alibaba Cloud ECS' } }, 'alibaba'],
    ['openstack (Nova)', { dmi: { sys_vendor: 'OpenStack Foundation', product_name: 'OpenStack Nova' } }, 'openstack'],
    ['openstack (Open Telekom Cloud tag)', { dmi: { sys_vendor: 'QEMU', chassis_asset_tag: 'OpenTelekomCloud' } }, 'openstack'],
    ['opennebula (CONTEXT label)', { dmi: { sys_vendor: 'QEMU' }, labels: ['CONTEXT'] }, 'opennebula'],
    ['opennebula (seed file in the tree)', { files: { 'var/lib/imprint/seed/opennebula/context.sh': "VMID='7'\n" } }, 'opennebula'],
    ['nocloud (cidata label)', { labels: ['cidata'] }, 'nocloud'],
    ['nocloud (kernel command line)', { cmdline: 'ro ds=nocloud;s=/var/lib/seed/' }, 'nocloud'],
    ['config-drive (config-2 label on OpenStack)', { dmi: { product_name: 'OpenStack Nova' }, labels: ['config-2'] }, 'config-drive'],
    ['imprint.platform= on the kernel command line beats DMI', { dmi: { sys_vendor: 'Google' }, cmdline: 'imprint.platform=azure' }, 'azure'],
  ];
  for (const [what, fixture, expected] of cases) {
    it(`identifies ${what}`, async () => {
      const d = await detect(fixture);
      assert.equal(d.platform, expected, d.why);
      assert.ok(d.evidence.length > 0 && d.evidence.every((m) => m.platform === expected));
      assert.match(d.why, new RegExp(`^platform ${expected} \\(`));
    });
  }

  it('names the evidence on the console line', async () => {
    const d = await detect({ dmi: { sys_vendor: 'Google', product_name: 'Google Compute Engine' } });
    assert.equal(d.why, 'platform gce (DMI sys_vendor "Google", DMI product_name "Google Compute Engine")');
  });

  it('chooses nothing when nothing matches (a plain KVM guest): the configured sources are tried in order', async () => {
    const d = await detect({ dmi: { sys_vendor: 'QEMU', product_name: 'Standard PC (Q35 + ICH9, 2009)' }, cmdline: 'root=/dev/vda1', labels: ['rootfs'] });
    assert.equal(d.platform, null);
    assert.equal(d.conflict, null);
    assert.match(d.why, /not identified.*configured sources in order/);
  });

  it('chooses nothing for an empty tree (no /sys, no /proc)', async () => {
    assert.equal((await detect({})).platform, null);
  });

  it('refuses to choose between firmware signals that disagree, and says which', async () => {
    const d = await detect({ dmi: { sys_vendor: 'Google', chassis_asset_tag: '7783-7084-3265-9085-8269-3286-77' } });
    assert.equal(d.platform, null);
    assert.match(d.why, /firmware signals disagree \(gce vs azure\)/);
    assert.match(d.why, /gce: DMI sys_vendor "Google"/);
    assert.match(d.why, /azure: DMI chassis_asset_tag/);
  });

  it('refuses to choose between two seed filesystems', async () => {
    const d = await detect({ labels: ['cidata', 'CONTEXT'] });
    assert.equal(d.platform, null);
    assert.match(d.why, /seed filesystem signals disagree \((nocloud vs opennebula|opennebula vs nocloud)\)/);
  });

  it('a seed filesystem attached to this boot outranks the firmware', async () => {
    assert.equal((await detect({ dmi: { sys_vendor: 'Google' }, labels: ['cidata'] })).platform, 'nocloud');
  });

  it('ignores an unknown imprint.platform= value and says so', async () => {
    const d = await detect({ dmi: { sys_vendor: 'Hetzner' }, cmdline: 'imprint.platform=mars' });
    assert.equal(d.platform, null);
    assert.match(d.why, /imprint\.platform="mars" names no known platform/);
  });

  it('--platform and metadata.platform skip detection', async () => {
    const root = await tree({ dmi: { sys_vendor: 'Google' } });
    assert.equal((await choosePlatform(root, 'azure', 'auto')).platform, 'azure');
    assert.equal((await choosePlatform(root, undefined, 'hetzner')).platform, 'hetzner');
    assert.match((await choosePlatform(root, 'azure', 'hetzner')).why, /--platform/);
  });

  it('does not follow a tree\'s link to this host\'s DMI', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'imprint-detect-'));
    dirs.push(dir);
    await mkdir(path.join(dir, 'sys/class/dmi'), { recursive: true });
    await symlink('/sys/class/dmi/id', path.join(dir, 'sys/class/dmi/id'));
    const signals = await readPlatformSignals(new RootTree(dir));
    assert.deepEqual(signals.dmi, {});
  });

  it('bounds and cleans what it shows of a DMI string', () => {
    const d = detectPlatform({ dmi: { product_serial: `GoogleCloud-${'x'.repeat(200)}\u0007` }, cmdline: [], labels: [] });
    assert.equal(d.platform, 'gce');
    assert.ok(describeDetection(d).length < 140);
    assert.doesNotMatch(describeDetection(d), /\u0007/);
  });
});
