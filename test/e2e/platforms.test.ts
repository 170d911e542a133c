// One image, every cloud, booted (issue 11): the same installed imprint image, with no
// per-cloud configuration, booted in sequence as a GCE, an Azure and an OpenNebula instance.
// Each boot: the platform is detected from local signals inside the container, the launch key
// lands for the platform's user only (GCE's "user:" key, Azure's adminUsername, OpenNebula's
// USERNAME), a real ssh login as that user works, the key opens no other account, and the unit
// ends active. Azure's wireserver (168.63.129.16, a second emulator in the metadata namespace
// of the testbed, never in this machine's) must record the ready report.
//
// How the signals get into the container, since nspawn cannot give it firmware of its own:
// - DMI: this machine's kernel has no /sys/class/dmi at all, so files cannot be bound over
//   /sys/class/dmi/id/*; nspawn cannot create mount points in sysfs. Instead /sys/class is
//   overlaid read-only (this machine's /sys/class below, a directory with dmi/id/FIELD files
//   above), so imprint reads /sys/class/dmi/id/sys_vendor etc. exactly as on a VM.
// - OpenNebula's context CD: an image file labelled CONTEXT holding context.sh, attached as a
//   read-only loop device and bound into the container's /dev. There is no udev in the
//   container (no /dev/disk/by-label), so imprint finds the label with blkid, as it does before
//   udev has made its links. The filesystem is ext4, not ISO 9660: this kernel has no isofs.
//   imprint mounts whatever filesystem carries the label, so the path is the same.

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdir, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import type { Container, Testbed } from './harness.js';
import { childEnv, killPid, mustRun, run, trackedPids, waitFor } from './proc.js';
import { Lab, acquireSuite, parseShow, releaseSuite, type Golden, type Key, type Suite } from './suite.js';

const LOGIN_DEADLINE_MS = 120_000;
const WIRESERVER = '168.63.129.16';
const AZURE_ASSET_TAG = '7783-7084-3265-9085-8269-3286-77';
const ROUTER = '10.1.1.1';

function log(line: string): void {
  process.stderr.write(`      ${line}\n`);
}

async function settledUnit(c: Container): Promise<Record<string, string>> {
  return waitFor('imprint.service settled', async () => {
    const r = await c.exec(['systemctl', 'show', '-p', 'ActiveState,SubState,Result,StatusText', 'imprint.service'], 15_000);
    const show = parseShow(r.stdout);
    return show.ActiveState && !['activating', 'inactive'].includes(show.ActiveState) && show.SubState !== 'start' ? show : null;
  }, 120_000, 100);
}

/** nspawn options that overlay /sys/class with DMI fields of our choosing (see the top). */
async function fakeFirmware(suite: Suite, name: string, dmi: Record<string, string>): Promise<string[]> {
  const dir = suite.ws.path(`dmi-${name}`);
  await mkdir(join(dir, 'dmi/id'), { recursive: true });
  for (const [field, value] of Object.entries(dmi)) await writeFile(join(dir, 'dmi/id', field), `${value}\n`);
  return [`--overlay-ro=/sys/class:${dir}:/sys/class`];
}

/** Files holding the key, from inside the container: the key must be in the platform user's file only. */
async function filesWithKey(c: Container, key: Key): Promise<string[]> {
  const blob = key.public.split(/\s+/)[1] as string;
  const r = await c.exec(['grep', '-rlF', '--', blob, '/root', '/home', '/etc/ssh'], 15_000);
  return r.stdout.split('\n').filter(Boolean).sort();
}

/** The key opens its user's account and nobody else's (root, the image's own user, other platform users). */
async function assertOnlyFor(bed: Testbed, c: Container, key: Key, user: string, alsoNot: string[] = []): Promise<void> {
  assert.match(await bed.sshOk(key.private, user, 'id -un'), new RegExp(`^${user}$`, 'm'));
  for (const other of ['root', 'debian', ...alsoNot].filter((u) => u !== user)) {
    const r = await bed.ssh(key.private, other, 'true', 15_000);
    assert.notEqual(r.code, 0, `the ${user} key also logs in as ${other}`);
  }
  assert.deepEqual(await filesWithKey(c, key), [`/home/${user}/.ssh/authorized_keys`]);
}

async function journal(c: Container): Promise<string> {
  return (await c.exec(['journalctl', '-b', '--no-pager', '-o', 'cat', '-u', 'imprint.service'], 15_000)).stdout;
}

describe('e2e: one image, every cloud (GCE, Azure, OpenNebula booted)', function () {
  this.timeout(900_000);
  let suite: Suite;
  let golden: Golden;
  const lab = new Lab(() => suite, 'clouds', { extraServiceAddresses: [WIRESERVER], router: ROUTER });
  const loops: string[] = [];
  const seconds: Record<string, number> = {};

  before(async function () {
    this.timeout(1_200_000);
    suite = await acquireSuite('bookworm');
    golden = await suite.golden('imprint');
  });
  after(async () => {
    try {
      await lab.teardown();
    } finally {
      for (const l of loops.splice(0)) await run('losetup', ['-d', l]);
      await releaseSuite();
      log(`seconds per boot (container start to all checks done): ${JSON.stringify(seconds)}`);
    }
  });
  afterEach(async function () {
    if (this.currentTest?.state === 'failed') process.stderr.write(`${await lab.diagnostics()}\n`);
    for (const c of lab.containers) if (c.running) await c.stop();
  });

  it('GCE: detected by DMI; the "alice:" key lands for alice only, the "bob:" key for bob only; unit active', async () => {
    const key = await suite.newKey('gce');
    const bob = await suite.newKey('gce-bob');
    const tree = await lab.tree(golden.dir, 'gce');
    const firmware = await fakeFirmware(suite, 'gce', { sys_vendor: 'Google', product_name: 'Google Compute Engine' });
    const emu = await lab.startEmulator({
      instanceId: '4820000000000000001', keys: [key.public], platform: 'gce', user: 'alice', hostname: 'gce-e2e', userKeys: [{ user: 'bob', key: bob.public }],
    });
    const t0 = performance.now();
    const c = await lab.boot(tree, 'gce', firmware);
    const login = await c.waitForLogin(key.private, 'alice', LOGIN_DEADLINE_MS);
    log(`gce: first key login as alice ${Math.round(login.ms)} ms after container start`);
    await assertOnlyFor(lab.bed as Testbed, c, key, 'alice', ['bob']);
    await assertOnlyFor(lab.bed as Testbed, c, bob, 'bob', ['alice']);
    const show = await settledUnit(c);
    assert.equal(show.ActiveState, 'active', JSON.stringify(show));
    assert.equal(show.Result, 'success', JSON.stringify(show));
    assert.match(await journal(c), /platform gce \(DMI sys_vendor "Google"/);
    const reqs = emu.requests();
    assert.ok(reqs.length > 0 && reqs.every((l) => /header=yes/.test(l)), reqs.join('\n'));
    seconds.gce = Math.round((performance.now() - t0) / 100) / 10;
  });

  it('Azure: detected by DMI; keys for adminUsername only; the wireserver records the ready report; unit active', async () => {
    const key = await suite.newKey('azure');
    const tree = await lab.tree(golden.dir, 'azure');
    const firmware = await fakeFirmware(suite, 'azure', { sys_vendor: 'Microsoft Corporation', product_name: 'Virtual Machine', chassis_asset_tag: AZURE_ASSET_TAG });
    const id = '0b3a7c55-1f2e-4d6a-9e8b-2a1c3d4e5f60';
    const common = { instanceId: id, keys: [key.public], platform: 'azure', user: 'azureuser', hostname: 'azure-e2e' };
    const emu = await lab.startEmulator(common, { ...common, address: WIRESERVER });
    const wire = lab.companion;
    assert.ok(wire);
    const t0 = performance.now();
    const c = await lab.boot(tree, 'azure', firmware);
    await c.waitForLogin(key.private, 'azureuser', LOGIN_DEADLINE_MS);
    await assertOnlyFor(lab.bed as Testbed, c, key, 'azureuser');
    const show = await settledUnit(c);
    assert.equal(show.ActiveState, 'active', JSON.stringify(show));
    assert.equal(show.Result, 'success', JSON.stringify(show));
    // The report went to the wireserver's own address, and IMDS got no wireserver traffic.
    assert.ok(wire.lines.includes('emulate: wireserver received a ready report'), wire.lines.join('\n'));
    assert.ok(wire.requests().some((l) => /^emulate: POST \/machine\/\?comp=health 200/.test(l)), wire.requests().join('\n'));
    assert.ok(!emu.requests().some((l) => /\/machine/.test(l)), emu.requests().join('\n'));
    assert.ok(emu.requests().every((l) => /header=yes/.test(l)), emu.requests().join('\n'));
    const j = await journal(c);
    assert.match(j, /platform azure \(DMI chassis_asset_tag "7783-7084-3265-9085-8269-3286-77"\)/);
    assert.match(j, /reported Ready to the wireserver/);
    seconds.azure = Math.round((performance.now() - t0) / 100) / 10;
  });

  it('OpenNebula: the CONTEXT disk (a loop device) is found and read; the key lands for USERNAME only; unit active', async () => {
    const key = await suite.newKey('one');
    const tree = await lab.tree(golden.dir, 'one');
    await lab.stopEmulator(); // no network service: the context disk is all there is
    const content = suite.ws.path('one-context');
    await mkdir(content);
    await writeFile(join(content, 'context.sh'), [
      '# Context variables generated by OpenNebula',
      "DISK_ID='1'",
      "ETH0_IP='169.254.0.2'",
      "NETWORK='YES'",
      `SSH_PUBLIC_KEY='${key.public}'`,
      "USERNAME='nebula'",
      "SET_HOSTNAME='one-e2e'",
      "TARGET='hdb'",
      "VMID='4242'",
      '',
    ].join('\n'));
    const image = suite.ws.path('one-context.img');
    await mustRun('truncate', ['-s', '4M', image]);
    await mustRun('mkfs.ext4', ['-q', '-L', 'CONTEXT', '-d', content, image]);
    const loop = (await mustRun('losetup', ['--find', '--show', '--read-only', image])).stdout.trim();
    loops.push(loop);
    const t0 = performance.now();
    const c = await lab.boot(tree, 'one', [`--bind-ro=${loop}`]);
    await c.waitForLogin(key.private, 'nebula', LOGIN_DEADLINE_MS);
    await assertOnlyFor(lab.bed as Testbed, c, key, 'nebula');
    const show = await settledUnit(c);
    assert.equal(show.ActiveState, 'active', JSON.stringify(show));
    assert.equal(show.Result, 'success', JSON.stringify(show));
    const j = await journal(c);
    assert.match(j, /platform opennebula \(filesystem labelled CONTEXT\)/);
    // Read and let go: nothing of the context disk stays mounted.
    assert.equal((await c.exec(['findmnt', '-rn', '-S', loop], 10_000)).stdout, '');
    seconds.opennebula = Math.round((performance.now() - t0) / 100) / 10;
  });
  // Last: the instance's DHCP client leaves its lease address in the instance namespace, which
  // the testbed's own check (run before each boot) would refuse.
  it('CloudStack: the virtual router is the DHCP server of a real lease (systemd-networkd, dnsmasq); the key lands; unit active', async () => {
    if ((await run('sh', ['-c', 'command -v dnsmasq'])).code !== 0) throw new Error('the CloudStack boot needs dnsmasq as the virtual router\'s DHCP server (apt-get install dnsmasq-base)');
    const key = await suite.newKey('cloudstack');
    const tree = await lab.tree(golden.dir, 'cloudstack');
    const firmware = await fakeFirmware(suite, 'cloudstack', { sys_vendor: 'Apache Software Foundation', product_name: 'CloudStack KVM Hypervisor' });
    const bed = await lab.testbed();
    // The image's own DHCP client: systemd-networkd on the instance's end of the pair. The pair's
    // fixed 169.254.0.2/16 (for the ssh checks) is left as the testbed made it: declared again as
    // networkd's own, this kernel refuses the re-add (ERANGE) and networkd gives up on the link.
    await writeFile(join(tree, 'etc/systemd/network/10-e2e.network'),
      `[Match]\nName=${bed.vethInst}\n[Network]\nDHCP=ipv4\nLinkLocalAddressing=no\nIPv6AcceptRA=no\n[DHCPv4]\nUseDNS=no\n`);
    for (const [wants, unit] of [['multi-user.target.wants', 'systemd-networkd.service'], ['sockets.target.wants', 'systemd-networkd.socket']] as const) {
      await mkdir(join(tree, 'etc/systemd/system', wants), { recursive: true });
      await symlink(`/lib/systemd/system/${unit}`, join(tree, 'etc/systemd/system', wants, unit));
    }
    // What the README tells a CloudStack operator: the router's address is allowed by a drop-in.
    await mkdir(join(tree, 'etc/systemd/system/imprint.service.d'), { recursive: true });
    await writeFile(join(tree, 'etc/systemd/system/imprint.service.d/router.conf'), `[Service]\nIPAddressAllow=${ROUTER}\n`);
    const emu = await lab.startEmulator({ instanceId: '5d2a8c1e-0f4b-4e7a-9c3d-6b1a2e3f4c5d', keys: [key.public], platform: 'cloudstack', address: ROUTER, hostname: 'cs-e2e' });
    // The virtual router's DHCP server, in the metadata namespace only, on its end of the pair.
    // Started once imprint is waiting for a lease: as on a real boot, where imprint starts before
    // the network is up, the lease comes later than imprint's first look.
    let dhcpLog = '';
    let dnsmasq: ReturnType<typeof spawn> | null = null;
    let exited: Promise<unknown> = Promise.resolve();
    const startDhcp = (): void => {
      const child = spawn('ip', ['netns', 'exec', bed.meta, 'dnsmasq', '--keep-in-foreground', '--conf-file=/dev/null', '--no-resolv', '--no-hosts', '--port=0',
        `--interface=${bed.vethMeta}`, '--bind-interfaces', '--dhcp-range=10.1.1.50,10.1.1.99,255.255.255.0,10m', '--dhcp-option=3', '--dhcp-option=6',
        `--dhcp-leasefile=${suite.ws.path('dnsmasq.leases')}`, `--pid-file=${suite.ws.path('dnsmasq.pid')}`, '--log-facility=-', '--log-dhcp', '--user=root'],
      { env: childEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
      assert.ok(child.pid);
      trackedPids.add(child.pid);
      dnsmasq = child;
      exited = new Promise((resolve) => child.once('exit', resolve));
      child.stdout?.setEncoding('utf8').on('data', (d: string) => { dhcpLog += d; });
      child.stderr?.setEncoding('utf8').on('data', (d: string) => { dhcpLog += d; });
    };
    try {
      const t0 = performance.now();
      // networkd needs CAP_NET_ADMIN, which nspawn gives only with a network namespace of its own
      // making (not --network-namespace-path): granted here, for the testbed's namespace only.
      const c = await lab.boot(tree, 'cloudstack', [...firmware, '--capability=CAP_NET_ADMIN']);
      await waitFor('imprint to wait for a DHCP lease', () => /cloudstack: no DHCP lease yet; waiting for one/.test(c.console()) || null, 120_000, 100)
        .catch((err: Error) => { throw new Error(`${err.message}\n--- console (tail) ---\n${c.console().slice(-3000)}`); });
      startDhcp();
      await waitFor('the DHCP lease of systemd-networkd', async () => ((await c.exec(['sh', '-c', 'grep -l SERVER_ADDRESS /run/systemd/netif/leases/*'], 5_000)).code === 0 ? true : null), 60_000, 200)
        .catch(async (err: Error) => {
          const why = await c.exec(['sh', '-c', 'systemctl status systemd-networkd --no-pager; journalctl -b --no-pager -u systemd-networkd; ip addr; ls -la /run/systemd/netif/leases'], 15_000);
          throw new Error(`${err.message}\n--- networkd ---\n${why.stdout}${why.stderr}\n--- dnsmasq ---\n${dhcpLog}`);
        });
      await c.waitForLogin(key.private, 'debian', LOGIN_DEADLINE_MS);
      await assertOnlyFor(lab.bed as Testbed, c, key, 'debian');
      const show = await settledUnit(c);
      assert.equal(show.ActiveState, 'active', JSON.stringify(show));
      assert.equal(show.Result, 'success', JSON.stringify(show));
      const j = await journal(c);
      assert.match(j, /platform cloudstack \(DMI product_name "CloudStack KVM Hypervisor"\)/);
      assert.match(j, /cloudstack: virtual router 10\.1\.1\.1 \(the DHCP server of the lease\)/);
      // The lease imprint read is the one networkd wrote from dnsmasq's answer.
      const leases = await c.exec(['sh', '-c', 'cat /run/systemd/netif/leases/*'], 10_000);
      assert.match(leases.stdout, /^SERVER_ADDRESS=10\.1\.1\.1$/m, leases.stdout + leases.stderr);
      assert.match(dhcpLog, /DHCPACK/, dhcpLog);
      assert.ok(emu.requests().some((l) => /^emulate: GET \/latest\/meta-data\/public-keys 200/.test(l)), emu.requests().join('\n'));
      seconds.cloudstack = Math.round((performance.now() - t0) / 100) / 10;
    } finally {
      const pid = (dnsmasq as ReturnType<typeof spawn> | null)?.pid;
      if (pid !== undefined) {
        killPid(pid, 'SIGTERM');
        await exited;
        trackedPids.delete(pid);
      }
    }
  });
});
