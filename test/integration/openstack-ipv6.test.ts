import assert from 'node:assert/strict';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { defaultConfig } from '../../agent/config.js';
import { Deadline } from '../../agent/metadata/deadline.js';
import { ed25519Line } from '../../agent/metadata/emulator/keys.js';
import { startPlatformEmulator } from '../../agent/metadata/emulator/platforms.js';
import { configDriveMetadata } from '../../agent/metadata/seeds.js';
import { firstToAnswer, type PlatformContext } from '../../agent/metadata/platforms/provider.js';
import { RootTree } from '../../agent/os/root.js';
import { createServer } from 'node:net';
import { CLI } from '../support/cli.js';
import { DEMO_USER, FAST_KEYS_CONFIG, removeScratch, scratchImage, writeConfig } from '../support/tree.js';

// OpenStack's metadata service over IPv6 is fe80::a9fe:a9fe, reached through one interface:
// "http://[fe80::a9fe:a9fe%25IFACE]" (RFC 6874), which Node's URL refuses. Two network
// namespaces made here, joined by a veth pair made inside them (never in this machine's own):
// the emulator listens on fe80::a9fe:a9fe in one, imprint asks from the other through its end
// of the pair. The metadata test guard (IMPRINT_FORBID_METADATA_ADDRESS) is off for that one
// imprint run only, inside a namespace that holds nothing but lo and the pair (checked first).

const exec = promisify(execFile);
const SERVICE = 'fe80::a9fe:a9fe';

async function ip(...args: string[]): Promise<string> {
  return (await exec('ip', args)).stdout;
}

describe('OpenStack metadata over IPv6 link-local (fe80::a9fe:a9fe%IFACE) in namespaces made here', function () {
  this.timeout(120_000);
  const tag = `${process.pid % 100000}`;
  const nsService = `imprint-v6-${tag}-svc`;
  const nsInstance = `imprint-v6-${tag}-inst`;
  const [vService, vInstance] = [`iv6s${tag}`, `iv6i${tag}`];
  let emulator: ChildProcess | null = null;
  let root = '';
  const made: string[] = [];

  before(async function () {
    if (process.getuid?.() !== 0) {
      if (process.env.CI) throw new Error('needs root for network namespaces');
      this.skip();
    }
    for (const ns of [nsService, nsInstance]) {
      assert.ok(!existsSync(`/run/netns/${ns}`), `${ns} exists already`);
      await ip('netns', 'add', ns);
      made.push(ns);
    }
    await ip('-n', nsService, 'link', 'add', vService, 'type', 'veth', 'peer', 'name', vInstance, 'netns', nsInstance);
    // nodad: usable at once (no duplicate address detection wait); the kernel's own fe80 addresses come too.
    await ip('-n', nsService, 'addr', 'add', `${SERVICE}/64`, 'dev', vService, 'nodad');
    await ip('-n', nsInstance, 'addr', 'add', 'fe80::2/64', 'dev', vInstance, 'nodad');
    for (const [ns, dev] of [[nsService, vService], [nsInstance, vInstance]] as const) {
      await ip('-n', ns, 'link', 'set', 'lo', 'up');
      await ip('-n', ns, 'link', 'set', dev, 'up');
    }
    // Refuse to go on unless the instance side holds exactly lo and its end of the pair, and
    // this machine's namespace has neither end.
    const inst = JSON.parse(await ip('-j', '-n', nsInstance, 'link', 'show')) as { ifname: string }[];
    assert.deepEqual(inst.map((l) => l.ifname).sort(), ['lo', vInstance].sort());
    const host = JSON.parse(await ip('-j', 'link', 'show')) as { ifname: string }[];
    assert.ok(!host.some((l) => l.ifname === vService || l.ifname === vInstance), 'a veth end is in this machine\'s namespace');
    root = await scratchImage();
    await writeConfig(root, `${FAST_KEYS_CONFIG}default_user:\n  name: ${DEMO_USER}\n`);
  });

  after(async () => {
    if (emulator?.pid !== undefined && emulator.exitCode === null) {
      const exited = new Promise((resolve) => emulator?.once('exit', resolve));
      process.kill(emulator.pid, 'SIGTERM');
      await exited;
    }
    for (const ns of made.splice(0)) await ip('netns', 'delete', ns);
    if (root) await removeScratch(root);
  });

  async function startEmulator(key: string): Promise<string[]> {
    const lines: string[] = [];
    emulator = spawn('ip', ['netns', 'exec', nsService, process.execPath, CLI, 'emulate', '--platform', 'openstack',
      '--listen', `[${SERVICE}%${vService}]:80`, '--key', key, '--instance-id', '7a1c0a3e-8f1d-4c3b-9a51-0c9e0b6d2f11'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let buffer = '';
    await new Promise<void>((resolve, reject) => {
      const take = (d: Buffer): void => {
        buffer += d.toString('utf8');
        for (let i = buffer.indexOf('\n'); i >= 0; i = buffer.indexOf('\n')) {
          lines.push(buffer.slice(0, i));
          buffer = buffer.slice(i + 1);
          if (/^emulate: listening on /.test(lines.at(-1) ?? '')) resolve();
        }
      };
      emulator?.stdout?.on('data', take);
      emulator?.stderr?.on('data', take);
      emulator?.once('exit', (code) => reject(new Error(`the emulator exited (${code}): ${lines.join('\n')}${buffer}`)));
    });
    return lines;
  }

  it('reads meta_data.json from [fe80::a9fe:a9fe%25IFACE] through that interface, and the key lands', async () => {
    const key = ed25519Line('openstack-v6@laptop');
    const log = await startEmulator(key);
    const url = `http://[${SERVICE}%25${vInstance}]`;
    const run = await exec('ip', ['netns', 'exec', nsInstance, process.execPath, CLI, 'boot', '--root', root, '--platform', 'openstack', '--metadata-url', url, '--json'],
      { env: { PATH: process.env.PATH }, maxBuffer: 16 * 1024 * 1024 }).catch((e: { stdout: string; stderr: string; code: number }) => e);
    const report = JSON.parse(run.stdout) as { status: string; metadata: { source: string; instanceId: string } | null };
    assert.equal(report.metadata?.source, 'openstack', run.stderr);
    assert.equal(report.metadata?.instanceId, '7a1c0a3e-8f1d-4c3b-9a51-0c9e0b6d2f11');
    assert.ok((await readFile(path.join(root, 'home', DEMO_USER, '.ssh/authorized_keys'), 'utf8')).includes(key));
    assert.ok(log.some((l) => /^emulate: GET \/openstack\/latest\/meta_data\.json 200/.test(l)), log.join('\n'));
  });

  it('a booted system asks through each interface with a link-local address (read in the instance namespace)', async () => {
    const listed = await exec('ip', ['netns', 'exec', nsInstance, process.execPath, '--import', 'tsx', '-e',
      'import("./agent/os/link-local.ts").then((m) => console.log(JSON.stringify(m.linkLocalInterfaces())))'], { cwd: path.resolve(CLI, '../..') });
    assert.deepEqual(JSON.parse(listed.stdout), [vInstance]);
  });

  it('refuses a zone that is not an interface name, before any connection', async () => {
    const run = await exec(process.execPath, [CLI, 'boot', '--root', root, '--platform', 'openstack', '--metadata-url', `http://[${SERVICE}%25eth0%2Fx]`],
      { env: { PATH: process.env.PATH, IMPRINT_FORBID_METADATA_ADDRESS: '1' } }).catch((e: { stderr: string; code: number }) => e);
    assert.equal((run as { code?: number }).code, 2);
    assert.match(run.stderr, /--metadata-url "http:\/\/\[fe80::a9fe:a9fe%25eth0%2Fx\]" is not a URL/);
  });
});

// The race a booted OpenStack instance runs between 169.254.169.254 and fe80::a9fe:a9fe%IFACE,
// here between two loopback addresses (no namespace needed): a dead one and the emulator.
describe('firstToAnswer: one dialect asked at several addresses at once', () => {
  const config = defaultConfig().metadata;
  const notes: string[] = [];
  const ctx = (deadlineMs: number): PlatformContext => ({
    root: new RootTree('/nonexistent-imprint-tree'), config, url: 'unused', explicitUrl: true, wireserverUrl: null,
    productCodes: false, deadline: new Deadline(deadlineMs), hooks: {}, note: (l) => notes.push(l),
  });
  const deadPort = async (): Promise<number> => {
    const server = createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as { port: number };
    await new Promise((resolve) => server.close(resolve));
    return port;
  };
  const openstackRead = (c: PlatformContext, urls: string[]) => firstToAnswer('openstack', c, urls, {}, async (http) => {
    const where = '/openstack/latest/meta_data.json';
    return configDriveMetadata({ text: (await http.get(where)) ?? '', where });
  });

  it('takes the address that answers, while the other gets no answer', async () => {
    const e = await startPlatformEmulator({ platform: 'openstack', keys: [ed25519Line('race@a')] });
    try {
      const dead = `http://127.0.0.1:${await deadPort()}`;
      const read = await openstackRead(ctx(20_000), [dead, e.url]);
      await read.close();
      assert.equal(read.metadata?.instanceId, e.instanceId);
      assert.ok(notes.includes(`openstack: answered at ${e.url}`), notes.join('\n'));
    } finally {
      await e.close();
    }
  });

  it('when none answers, reports the first address\'s failure', async () => {
    const [a, b] = [`http://127.0.0.1:${await deadPort()}`, `http://127.0.0.1:${await deadPort()}`];
    await assert.rejects(openstackRead(ctx(1_500), [a, b]), (err: Error) => err.message.includes(`metadata service at ${a} gave no usable answer`));
  });
});
