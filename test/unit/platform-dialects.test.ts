import assert from 'node:assert/strict';
import fc from 'fast-check';
import { parseCli } from '../../agent/cli/args.js';
import { ConfigError, parseConfig } from '../../agent/config.js';
import { healthReport } from '../../agent/metadata/platforms/azure.js';
import { parseContextSh } from '../../agent/metadata/platforms/context-sh.js';
import { gceKeys } from '../../agent/metadata/platforms/gce.js';
import type { InstanceMetadata } from '../../agent/metadata/types.js';
import { isMetadataHost } from '../../agent/os/metadata-address.js';
import { privateIpv4 } from '../../agent/os/dhcp-leases.js';
import { keyOwners } from '../../agent/tasks/key-owners.js';
import { checkedHostname, hostsWith } from '../../agent/tasks/hostname.js';

const NOW = new Date('2026-06-01T00:00:00Z');

describe('OpenNebula context.sh, read as data', () => {
  it('reads single-quoted, multi-line and escaped values', () => {
    const { vars, problems } = parseContextSh("# comment\nVMID='7'\nSSH_PUBLIC_KEY='a\nb'\nQ='it'\\''s'\nexport D=\"x \\\"y\\\"\"\nBARE=plain\n");
    assert.deepEqual(Object.fromEntries(vars), { VMID: '7', SSH_PUBLIC_KEY: 'a\nb', Q: "it's", D: 'x "y"', BARE: 'plain' });
    assert.deepEqual(problems, []);
  });

  it('refuses what would need the shell, and commands, each with its line', () => {
    const { vars, problems } = parseContextSh('A="$(id)"\nB=`id`\nrm -rf /\nC=\'ok\' ; reboot\nD=x|y\n');
    assert.deepEqual(Object.fromEntries(vars), { C: 'ok' });
    assert.equal(problems.length, 5, problems.join('\n'));
    assert.match(problems[0] as string, /^line 1: A: "\$" would need the shell/);
    assert.match(problems[2] as string, /^line 3: not a variable assignment/);
  });

  it('stops at an unterminated quote without taking the rest as a value', () => {
    const { vars, problems } = parseContextSh("A='1'\nB='never closed\nC='3'\n");
    assert.equal(vars.get('A'), '1');
    assert.equal(vars.has('B'), false);
    assert.match(problems.join(), /B: unterminated quote/);
  });

  it('never throws, and a single-quoted value comes back exactly (property)', () => {
    fc.assert(fc.property(fc.string(), (text) => { parseContextSh(text); }));
    fc.assert(fc.property(fc.string(), (value) => {
      const quoted = `'${value.replace(/'/g, "'\\''")}'`;
      assert.equal(parseContextSh(`K=${quoted}\n`).vars.get('K'), value);
    }));
  });
});

describe('GCE ssh-keys', () => {
  it('splits user:key lines, keeps each user, rejects malformed and expired lines one by one', () => {
    const rejected: string[] = [];
    const keys = gceKeys([
      'alice:ssh-ed25519 AAAA alice@x',
      'no user here',
      'bob:ssh-rsa AAAA google-ssh {"userName":"bob@x","expireOn":"2026-01-01T00:00:00+0000"}',
      'carol:ssh-rsa AAAA google-ssh {"userName":"carol@x","expireOn":"2027-01-01T00:00:00+0000"}',
      'dave:ssh-rsa AAAA google-ssh {not json',
      'erin:ssh-rsa AAAA google-ssh {"expireOn":"soon"}',
      '',
    ].join('\n'), 'instance ssh-keys', rejected, NOW);
    assert.deepEqual(keys.map((k) => [k.user, k.origin]), [['alice', 'instance ssh-keys[0]'], ['carol', 'instance ssh-keys[3]']]);
    assert.equal(rejected.length, 4, rejected.join('\n'));
    assert.match(rejected[1] as string, /key for bob expired on 2026-01-01/);
  });
});

describe('whose file a key goes into', () => {
  const md = (keys: InstanceMetadata['keys'], defaultUser?: string): InstanceMetadata => ({
    source: 'gce', instanceId: 'x', keys, productCodes: null, identityDocument: null, rejected: [], ...(defaultUser ? { defaultUser } : {}),
  });
  const config = (yaml: string) => parseConfig(yaml, 'test.yaml');

  it('keys without a user go to the configured user; named keys to their own user only', () => {
    const { owners } = keyOwners(md([{ origin: 'a', name: '', text: 'k1' }, { origin: 'b', name: '', text: 'k2', user: 'alice' }]), config('default_user:\n  name: debian\n'));
    assert.deepEqual(owners.map((o) => [o.user, o.keys.map((k) => k.text), o.fromPlatform]), [['debian', ['k1'], false], ['alice', ['k2'], true]]);
  });

  it('refuses a platform user name that is not a valid login, and everything under forbid', () => {
    const bad = keyOwners(md([{ origin: 'a', name: '', text: 'k', user: '../root' }]), config(''));
    assert.deepEqual(bad.owners.map((o) => o.keys.length), [0]);
    assert.match(bad.refused[0] as string, /not a valid user name/);
    const forbid = keyOwners(md([{ origin: 'a', name: '', text: 'k', user: 'alice' }]), config('metadata:\n  platform_users: forbid\n'));
    assert.equal(forbid.owners.length, 1);
    assert.match(forbid.refused[0] as string, /platform_users is forbid/);
  });

  it('a pinned authorized_keys.user takes the platform default user\'s keys, not other users\'', () => {
    const { owners } = keyOwners(md([{ origin: 'a', name: '', text: 'k1', user: 'azureuser' }, { origin: 'b', name: '', text: 'k2', user: 'bob' }], 'azureuser'), config('authorized_keys:\n  user: admin\n'));
    assert.deepEqual(owners.map((o) => [o.user, o.keys.map((k) => k.text)]), [['admin', ['k1']], ['bob', ['k2']]]);
  });
});

describe('platform settings', () => {
  it('metadata.platform and platform_users are validated with the file position', () => {
    assert.equal(parseConfig('metadata:\n  platform: gce\n', 'f').metadata.platform, 'gce');
    assert.throws(() => parseConfig('metadata:\n  platform: gcp\n', 'f'), (err: ConfigError) => /^f:2:13: metadata.platform must be one of auto, ec2, .*not "gcp" \(did you mean "gce"\?\)/.test(err.problems[0] ?? ''));
    assert.throws(() => parseConfig('metadata:\n  platform_users: maybe\n', 'f'), ConfigError);
  });

  it('--platform and --wireserver-url are checked', () => {
    assert.equal(parseCli(['boot', '--platform', 'azure', '--wireserver-url', 'http://127.0.0.1:9/']).wireserverUrl, 'http://127.0.0.1:9');
    assert.throws(() => parseCli(['boot', '--platform', 'aws']), /--platform takes one of ec2, .*not "aws"/);
    assert.throws(() => parseCli(['boot', '--wireserver-url', 'ftp://x']), /--wireserver-url must be an http/);
  });

  it('the Azure health report carries the goal state\'s values and Ready', () => {
    const xml = healthReport({ incarnation: '3', containerId: 'c-1', instanceId: 'r.x' });
    assert.match(xml, /<GoalStateIncarnation>3<\/GoalStateIncarnation>[\s\S]*<ContainerId>c-1<\/ContainerId>[\s\S]*<InstanceId>r\.x<\/InstanceId>[\s\S]*<State>Ready<\/State>/);
  });

  it('only a private IPv4 literal is taken as CloudStack\'s virtual router', () => {
    for (const ok of ['10.1.1.1', '172.16.0.1', '192.168.122.1']) assert.ok(privateIpv4(ok), ok);
    for (const bad of ['127.0.0.1', '169.254.169.254', '8.8.8.8', '172.32.0.1', 'router.local', '010.1.1.1', '10.1.1.256']) assert.ok(!privateIpv4(bad), bad);
  });
});

describe('the test guard covers every platform address', () => {
  // Checked on the host name alone: a test that failed here must not be one that connects.
  it('names every documented address (and not loopback)', () => {
    for (const url of ['http://100.100.100.200', 'http://169.254.42.42', 'http://168.63.129.16', 'http://169.254.169.254', 'http://169.254.169.123', 'http://[fd00:ec2::254]', 'http://[fe80::a9fe:a9fe]', 'http://[fd00:a9fe:a9fe::1]']) {
      assert.ok(isMetadataHost(new URL(url).hostname), url);
    }
    for (const url of ['http://127.0.0.1:8080', 'http://[::1]:80', 'http://10.0.0.1']) assert.ok(!isMetadataHost(new URL(url).hostname), url);
  });
});

describe('host name from the platform', () => {
  it('takes an FQDN apart and refuses what is not a host name', () => {
    assert.deepEqual(checkedHostname('VM-1.c.project.internal.'), { fqdn: 'vm-1.c.project.internal', short: 'vm-1' });
    assert.equal(typeof checkedHostname('a b'), 'string');
    assert.equal(typeof checkedHostname('-x'), 'string');
    assert.equal(typeof checkedHostname(`${'a'.repeat(64)}.x`), 'string');
    assert.equal(typeof checkedHostname('x\n127.0.0.1 evil'), 'string');
  });

  it('puts one 127.0.1.1 line after localhost, replacing an old one, other lines untouched', () => {
    const name = { fqdn: 'vm.example', short: 'vm' };
    assert.equal(hostsWith('127.0.0.1\tlocalhost\n::1\tlocalhost\n', name), '127.0.0.1\tlocalhost\n127.0.1.1\tvm.example vm\n::1\tlocalhost\n');
    assert.equal(hostsWith('127.0.0.1 localhost\n127.0.1.1 old\n10.0.0.1 db\n', name), '127.0.0.1 localhost\n127.0.1.1\tvm.example vm\n10.0.0.1 db\n');
  });
});

describe('units/imprint.service', () => {
  it('IPAddressAllow= is localhost plus exactly the supported platforms\' documented addresses', async () => {
    const { readFile } = await import('node:fs/promises');
    const { PROVIDERS } = await import('../../agent/metadata/platforms/registry.js');
    const unit = await readFile(new URL('../../units/imprint.service', import.meta.url), 'utf8');
    const allowed = unit.split('\n').filter((l) => l.startsWith('IPAddressAllow=')).flatMap((l) => l.slice('IPAddressAllow='.length).split(/\s+/)).filter(Boolean);
    const documented = new Set(Object.values(PROVIDERS).flatMap((p) => p.addresses));
    assert.deepEqual(new Set(allowed), new Set(['localhost', ...documented]));
    assert.equal(allowed.length, documented.size + 1, 'no address twice');
  });
});

describe('imprint help', () => {
  it('lists every platform with how it is detected', async () => {
    const { HELP } = await import('../../agent/cli/help.js');
    const { PLATFORM_NAMES } = await import('../../agent/metadata/platforms/names.js');
    const section = HELP.slice(HELP.indexOf('\nPlatforms'));
    for (const name of PLATFORM_NAMES) assert.match(section, new RegExp(`^  ${name} +(DMI|a filesystem labelled)`, 'm'), name);
  });
});

describe('CloudStack virtual router from the DHCP leases', () => {
  let dir = '';
  afterEach(async () => {
    const { rm } = await import('node:fs/promises');
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  async function leases(files: Record<string, string>) {
    const { mkdtemp, mkdir, writeFile } = await import('node:fs/promises');
    const { tmpdir } = await import('node:os');
    const path = await import('node:path');
    const { RootTree } = await import('../../agent/os/root.js');
    const { dhcpServers } = await import('../../agent/os/dhcp-leases.js');
    dir = await mkdtemp(path.join(tmpdir(), 'imprint-leases-'));
    for (const [rel, text] of Object.entries(files)) {
      await mkdir(path.dirname(path.join(dir, rel)), { recursive: true });
      await writeFile(path.join(dir, rel), text);
    }
    return dhcpServers(new RootTree(dir));
  }

  it('reads systemd-networkd, NetworkManager and dhclient leases', async () => {
    assert.deepEqual((await leases({ 'run/systemd/netif/leases/2': 'ADDRESS=10.1.1.20\nSERVER_ADDRESS=10.1.1.1\n' })).servers, ['10.1.1.1']);
    assert.deepEqual((await leases({ 'var/lib/NetworkManager/internal-abc-eth0.lease': 'SERVER_ADDRESS=192.168.5.1\n' })).servers, ['192.168.5.1']);
    assert.deepEqual((await leases({ 'var/lib/dhcp/dhclient.eth0.leases': 'lease {\n  option dhcp-server-identifier 172.16.0.1;\n}\n' })).servers, ['172.16.0.1']);
  });

  it('refuses a server that is not a private IPv4 literal, and reports several as they are', async () => {
    const found = await leases({ 'run/systemd/netif/leases/2': 'SERVER_ADDRESS=169.254.169.254\n', 'run/systemd/netif/leases/3': 'SERVER_ADDRESS=8.8.8.8\n' });
    assert.deepEqual(found.servers, []);
    assert.deepEqual(found.refused.sort(), ['169.254.169.254', '8.8.8.8']);
    const two = await leases({ 'run/systemd/netif/leases/2': 'SERVER_ADDRESS=10.0.0.1\n', 'run/systemd/netif/leases/3': 'SERVER_ADDRESS=10.0.1.1\n' });
    assert.deepEqual(two.servers.sort(), ['10.0.0.1', '10.0.1.1']);
  });
});
