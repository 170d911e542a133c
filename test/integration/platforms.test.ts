import assert from 'node:assert/strict';
import { mkdir, readFile, stat, unlink, writeFile } from 'node:fs/promises';
import { request } from 'node:http';
import path from 'node:path';
import { ed25519Line } from '../../agent/metadata/emulator/keys.js';
import { startPlatformEmulator, type EmulatedPlatform, type PlatformEmulatorOptions, type RunningPlatformEmulator } from '../../agent/metadata/emulator/platforms.js';
import { parseScenario } from '../../agent/metadata/emulator.js';
import { startOneGate, type RunningOneGate } from '../../agent/metadata/emulator/onegate.js';
import { runEmulateCommand } from '../support/emulate-command.js';
import { imprint } from '../support/cli.js';
import { DEMO_USER, FAST_KEYS_CONFIG, removeScratch, scratchImage, writeConfig } from '../support/tree.js';

// `imprint boot --root --platform NAME` against `imprint emulate --platform NAME` dialects on
// 127.0.0.1 (never a real metadata address): keys land for the right user, the dialect's
// required header is on every request, keys for another user stay out, bad keys are refused
// one by one, and Azure's wireserver receives the ready report.

const USER_CONFIG = `${FAST_KEYS_CONFIG}default_user:\n  name: ${DEMO_USER}\n`;

interface Report {
  status: string;
  metadata: { source: string; instanceId: string; rejected: string[]; error: string | null; platform: { name: string | null; why: string } | null } | null;
  tasks: { task: string; status: string; warnings: string[]; actions: string[]; error?: string; details: Record<string, unknown> }[];
}

describe('imprint boot --platform against each dialect of the emulator', function () {
  let root: string;
  let emulator: RunningPlatformEmulator | null = null;

  beforeEach(async () => {
    root = await scratchImage();
    await writeConfig(root, USER_CONFIG);
  });
  afterEach(async () => {
    await emulator?.close();
    emulator = null;
    await removeScratch(root);
  });

  async function emulate(platform: EmulatedPlatform, o: Omit<PlatformEmulatorOptions, 'platform' | 'scenarios'> & { scenarios?: string[] } = {}): Promise<RunningPlatformEmulator> {
    await emulator?.close();
    emulator = await startPlatformEmulator({ ...o, platform, scenarios: (o.scenarios ?? []).map(parseScenario) });
    return emulator;
  }

  async function boot(platform: string, url: string, ...extra: string[]): Promise<{ code: number; report: Report; out: string }> {
    const run = await imprint(['boot', '--root', root, '--platform', platform, '--metadata-url', url, '--json', ...extra]);
    return { code: run.code, report: JSON.parse(run.stdout) as Report, out: run.stderr };
  }

  const keysOf = async (user: string): Promise<string | null> =>
    readFile(path.join(root, user === 'root' ? 'root' : `home/${user}`, '.ssh/authorized_keys'), 'utf8').catch(() => null);
  const passwd = async (): Promise<string> => readFile(path.join(root, 'etc/passwd'), 'utf8');
  const task = (r: Report, name: string) => r.tasks.find((t) => t.task === name);
  const failed = (r: Report): string => JSON.stringify(r.tasks.filter((t) => t.status === 'failed').map((t) => [t.task, t.error]).concat([[r.metadata?.error ?? '']]));

  describe('GCE', () => {
    it('gives each user:key to its own user, creating the users, with Metadata-Flavor on every request', async () => {
      const alice = ed25519Line('alice@laptop');
      const bob = ed25519Line('bob@laptop');
      const carol = ed25519Line('carol@project');
      const e = await emulate('gce', { keys: [{ key: alice, user: 'alice' }, { key: bob, user: 'bob' }], projectKeys: [`carol:${carol}`], instanceId: '4520066613290123456' });
      const { code, report, out } = await boot('gce', e.url);
      assert.equal(code, 0, failed(report));
      assert.equal(report.metadata?.source, 'gce');
      assert.equal(report.metadata?.instanceId, '4520066613290123456');
      assert.match(out, /platform gce \(--platform\)/);
      const [a, b, c] = [await keysOf('alice'), await keysOf('bob'), await keysOf('carol')];
      assert.ok(a?.includes(alice) && !a.includes(bob) && !a.includes(carol), a ?? '');
      assert.ok(b?.includes(bob) && !b.includes(alice), b ?? '');
      assert.ok(c?.includes(carol), 'project keys are used when not blocked');
      assert.equal(await keysOf(DEMO_USER), null, 'no key of a named user lands in the default user\'s file');
      assert.match(await passwd(), /^alice:x:\d+:\d+:Platform user \(imprint\):\/home\/alice:\/bin\/bash$/m);
      const shadow = await readFile(path.join(root, 'etc/shadow'), 'utf8');
      assert.match(shadow, /^alice:!/m, 'created with a locked password');
      assert.match(await readFile(path.join(root, 'etc/sudoers.d/90-imprint-platform-user-alice'), 'utf8'), /^alice ALL=\(ALL\) NOPASSWD:ALL$/m);
      assert.ok(e.requests.length >= 5);
      assert.ok(e.requests.every((r) => r.header && r.status !== 403), JSON.stringify(e.requests));
    });

    it('leaves the project\'s keys out when the instance blocks them, and drops expired google-ssh keys', async () => {
      const alice = ed25519Line('alice@laptop');
      const expired = `${ed25519Line('').trim()} google-ssh {"userName":"dave@example.com","expireOn":"2020-01-01T00:00:00+0000"}`;
      const live = `${ed25519Line('').trim()} google-ssh {"userName":"erin@example.com","expireOn":"2999-01-01T00:00:00+0000"}`;
      const rootKey = ed25519Line('root@attacker');
      const e = await emulate('gce', { keys: [{ key: alice, user: 'alice' }, { key: expired, user: 'dave' }, { key: live, user: 'erin' }, { key: rootKey, user: 'root' }], projectKeys: [`carol:${ed25519Line('carol')}`], blockProjectKeys: true });
      const { code, report } = await boot('gce', e.url);
      assert.equal(code, 0, failed(report));
      assert.equal(await keysOf('carol'), null);
      assert.doesNotMatch(await passwd(), /^carol:/m);
      assert.equal(await keysOf('dave'), null);
      assert.doesNotMatch(await passwd(), /^dave:/m, 'a user whose only key expired is not created');
      assert.ok(report.metadata?.rejected.some((r) => /key for dave expired on 2020-01-01/.test(r)), JSON.stringify(report.metadata?.rejected));
      assert.ok((await keysOf('erin'))?.includes(live.split(' ')[1] as string));
      assert.ok(!((await keysOf('root')) ?? '').includes(rootKey), 'metadata cannot give root a key');
      assert.ok(task(report, 'authorized-keys')?.warnings.some((w) => /for root skipped: a system account \(uid 0\)/.test(w)));
    });

    it('refuses an answer that lacks Metadata-Flavor: Google (not the metadata server)', async () => {
      const { createServer } = await import('node:http');
      // A stand-in for "something else answers at the address": a plain server, no flavour header.
      const server = createServer((_req, res) => res.end('1234'));
      await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
      try {
        const port = (server.address() as { port: number }).port;
        const { code, report } = await boot('gce', `http://127.0.0.1:${port}`);
        assert.equal(code, 1);
        assert.match(report.metadata?.error ?? '', /lacks Metadata-Flavor: Google/);
        assert.equal(await keysOf(DEMO_USER), null);
      } finally {
        server.closeAllConnections();
        await new Promise((r) => server.close(r));
      }
    });

    it('the emulator refuses a request without Metadata-Flavor, as GCE does', async () => {
      const e = await emulate('gce');
      const status = await new Promise<number>((resolve, reject) => {
        request(`${e.url}/computeMetadata/v1/instance/id`, (res) => { res.resume(); resolve(res.statusCode ?? 0); }).on('error', reject).end();
      });
      assert.equal(status, 403);
    });

    it('refuses bad keys one by one and keeps the good one', async () => {
      const good = ed25519Line('good@laptop');
      const e = await emulate('gce', { keys: [{ key: good, user: 'alice' }], scenarios: ['invalid-keys'] });
      const { code, report } = await boot('gce', e.url);
      assert.equal(code, 0, failed(report));
      const text = (await keysOf('alice')) ?? '';
      assert.ok(text.includes(good));
      assert.equal(text.split('\n').filter((l) => l.startsWith('ssh-') || l.startsWith('command=')).length, 1, text);
      const warnings = task(report, 'authorized-keys')?.warnings ?? [];
      assert.ok(warnings.length >= 4, JSON.stringify(warnings));
    });
  });

  describe('Azure', () => {
    it('gives the keys to adminUsername, sends Metadata: true, and reports Ready to the wireserver', async () => {
      const key = ed25519Line('azure@laptop');
      const e = await emulate('azure', { keys: [key], user: 'azureuser', hostname: 'vm-1', scenarios: ['flaky=2'] });
      await unlink(path.join(root, 'etc/hostname')); // an image with no host name of its own
      const { code, report } = await boot('azure', e.url, '--wireserver-url', e.url);
      assert.equal(code, 0, failed(report));
      assert.equal(await readFile(path.join(root, 'etc/hostname'), 'utf8'), 'vm-1\n');
      assert.match(await readFile(path.join(root, 'etc/hosts'), 'utf8'), /^127\.0\.1\.1\tvm-1$/m);
      assert.ok((await keysOf('azureuser'))?.includes(key));
      assert.equal(await keysOf(DEMO_USER), null);
      assert.equal(e.readyReports.length, 1);
      assert.match(e.readyReports[0] as string, /<GoalStateIncarnation>1<\/GoalStateIncarnation>/);
      assert.match(e.readyReports[0] as string, /<State>Ready<\/State>/);
      assert.match(e.readyReports[0] as string, new RegExp(`<InstanceId>${e.instanceId}\\._vm-1</InstanceId>`));
      assert.equal(task(report, 'report-ready')?.status, 'done');
      const imds = e.requests.filter((r) => r.path.startsWith('/metadata/'));
      assert.ok(imds.length > 0 && imds.every((r) => r.header && r.path.includes('api-version=')), JSON.stringify(imds));
    });

    it('an offline tree reports ready only to a wireserver named with --wireserver-url', async () => {
      const e = await emulate('azure', { keys: [ed25519Line('azure@laptop')], user: 'azureuser' });
      const { code, report } = await boot('azure', e.url);
      assert.equal(code, 0, failed(report));
      assert.match(task(report, 'report-ready')?.actions.join() ?? '', /not reported: an offline tree/);
      assert.equal(e.readyReports.length, 0);
      assert.ok(e.requests.every((r) => !r.path.startsWith('/machine')));
    });

    it('with authorized_keys.user pinned, adminUsername\'s keys go to the pinned user', async () => {
      await writeConfig(root, `${USER_CONFIG}authorized_keys:\n  user: ${DEMO_USER}\n`);
      const key = ed25519Line('azure@laptop');
      const e = await emulate('azure', { keys: [key], user: 'azureuser' });
      const { code, report } = await boot('azure', e.url, '--wireserver-url', e.url);
      assert.equal(code, 0, failed(report));
      assert.ok((await keysOf(DEMO_USER))?.includes(key));
      assert.doesNotMatch(await passwd(), /^azureuser:/m);
    });

    it('with metadata.platform_users: forbid, no user is created and its keys stay out', async () => {
      await writeConfig(root, `${USER_CONFIG}metadata:\n  platform_users: forbid\n`);
      const e = await emulate('azure', { keys: [ed25519Line('azure@laptop')], user: 'azureuser' });
      const { code, report } = await boot('azure', e.url, '--wireserver-url', e.url);
      assert.equal(code, 0, failed(report));
      assert.doesNotMatch(await passwd(), /^azureuser:/m);
      assert.equal(await keysOf(DEMO_USER), null);
      assert.ok(task(report, 'authorized-keys')?.warnings.some((w) => /platform_users is forbid/.test(w)));
    });
  });

  describe('OpenNebula context.sh', () => {
    it('reads SSH_PUBLIC_KEY for USERNAME without running anything', async () => {
      const k1 = ed25519Line('one@a');
      const k2 = ed25519Line('one@b');
      const marker = path.join(root, 'ran');
      const seed = path.join(root, 'var/lib/imprint/seed/opennebula');
      await mkdir(seed, { recursive: true });
      await writeFile(path.join(seed, 'context.sh'), [
        '# Context variables generated by OpenNebula',
        "VMID='42'",
        "USERNAME='oneadmin2'",
        "SET_HOSTNAME='one-vm'",
        `SSH_PUBLIC_KEY='${k1}\n${k2}'`,
        `EVIL="$(touch ${marker})"`,
        `touch ${marker}`,
        "QUOTED='it'\\''s'",
        '',
      ].join('\n'));
      const run = await imprint(['boot', '--root', root, '--json']);
      const report = JSON.parse(run.stdout) as Report;
      assert.equal(run.code, 0, failed(report));
      assert.match(run.stderr, /platform opennebula \(\/var\/lib\/imprint\/seed\/opennebula\/context\.sh\)/);
      assert.equal(report.metadata?.instanceId, 'one-42');
      const text = (await keysOf('oneadmin2')) ?? '';
      assert.ok(text.includes(k1) && text.includes(k2), text);
      await assert.rejects(stat(marker), 'nothing in context.sh was run');
      assert.equal(await readFile(path.join(root, 'etc/hostname'), 'utf8'), 'demo-image\n', 'the image\'s own host name is kept');
      assert.match(task(report, 'hostname')?.actions.join() ?? '', /the image chose its own host name \(demo-image\)/);
      assert.ok(report.metadata?.rejected.some((r) => /EVIL.*shell/.test(r)), JSON.stringify(report.metadata?.rejected));
      assert.ok(report.metadata?.rejected.some((r) => /not a variable assignment/.test(r)));
    });
  });

  describe('OpenNebula OneGate ready report (REPORT_READY=YES)', () => {
    const TOKEN = 'Zm9vYmFyLW9uZWdhdGUtdG9rZW4tZm9yLXZtLTQy';
    let gate: RunningOneGate | null = null;
    afterEach(async () => {
      await gate?.close();
      gate = null;
    });

    async function context(endpoint: string, extra: string[] = [], token: string | null = TOKEN): Promise<void> {
      const seed = path.join(root, 'var/lib/imprint/seed/opennebula');
      await mkdir(seed, { recursive: true });
      await writeFile(path.join(seed, 'context.sh'), [
        "VMID='42'", "USERNAME='nebula'", `SSH_PUBLIC_KEY='${ed25519Line('one@a')}'`,
        "REPORT_READY='YES'", `ONEGATE_ENDPOINT='${endpoint}'`, ...extra, '',
      ].join('\n'));
      if (token !== null) await writeFile(path.join(seed, 'token.txt'), `${token}\n`);
      else await unlink(path.join(seed, 'token.txt')).catch(() => undefined);
    }

    it('PUTs READY=YES to ONEGATE_ENDPOINT/vm with the token and the VM id, after the key landed', async () => {
      gate = await startOneGate({ token: TOKEN, vmid: '42' });
      await context(gate.url);
      const run = await imprint(['boot', '--root', root, '--metadata-url', gate.url, '--json']);
      const report = JSON.parse(run.stdout) as Report;
      assert.equal(run.code, 0, failed(report));
      assert.deepEqual(gate.reports, [{ vmid: '42', body: 'READY=YES', contentType: 'application/x-www-form-urlencoded' }]);
      assert.deepEqual(gate.requests, [{ method: 'PUT', path: '/vm', status: 200 }]);
      assert.match(task(report, 'report-ready')?.actions.join() ?? '', new RegExp(`reported READY=YES to OneGate at ${gate.url} \\(VM 42\\)`));
      assert.ok((await keysOf('nebula'))?.includes('one@a'));
      assert.ok(!run.stdout.includes(TOKEN) && !run.stderr.includes(TOKEN), 'the OneGate token is never printed');
    });

    it('an offline tree tells only the OneGate also named with --metadata-url', async () => {
      gate = await startOneGate({ token: TOKEN, vmid: '42' });
      await context(gate.url);
      const run = await imprint(['boot', '--root', root, '--json']);
      const report = JSON.parse(run.stdout) as Report;
      assert.equal(run.code, 0, failed(report));
      assert.equal(gate.requests.length, 0);
      assert.match(task(report, 'report-ready')?.actions.join() ?? '', /not reported: an offline tree/);
    });

    it('refuses an endpoint that is a metadata address or a name, and says what is missing', async () => {
      for (const [endpoint, why] of [
        ['http://169.254.169.254:5030', /169\.254\.169\.254 is a cloud metadata address, not OneGate; refused/],
        ['http://onegate.example:5030', /"onegate\.example" is not an IP address \(no DNS at boot\)/],
        ['https://127.0.0.1:5030', /only http:\/\/ is supported/],
      ] as const) {
        await context(endpoint);
        const run = await imprint(['boot', '--root', root, '--json']);
        const report = JSON.parse(run.stdout) as Report;
        assert.equal(task(report, 'report-ready')?.status, 'failed', endpoint);
        assert.match(task(report, 'report-ready')?.error ?? '', why);
        assert.ok((await keysOf('nebula'))?.includes('one@a'), 'the key still landed');
      }
      await context('http://127.0.0.1:9', [], null);
      const run = await imprint(['boot', '--root', root, '--json']);
      const report = JSON.parse(run.stdout) as Report;
      assert.equal(run.code, 0, failed(report));
      assert.ok(report.metadata?.rejected.some((r) => /REPORT_READY=YES, but the context has no token\.txt/.test(r)), JSON.stringify(report.metadata?.rejected));
    });
  });

  describe('the other dialects', () => {
    const simple: EmulatedPlatform[] = ['openstack', 'oci', 'digitalocean', 'hetzner', 'scaleway', 'vultr', 'akamai', 'exoscale', 'cloudstack', 'alibaba'];
    for (const platform of simple) {
      it(`${platform}: the launch key lands for the configured user, the dialect's header on every request`, async () => {
        const key = ed25519Line(`${platform}@laptop`);
        const e = await emulate(platform, { keys: [key], user: DEMO_USER });
        const { code, report } = await boot(platform, e.url);
        assert.equal(code, 0, failed(report));
        assert.equal(report.metadata?.source, platform);
        assert.equal(report.metadata?.instanceId, e.instanceId);
        assert.ok((await keysOf(DEMO_USER))?.includes(key));
        assert.ok(e.requests.every((r) => r.header && (r.status === 200 || r.status === 404)), JSON.stringify(e.requests));
      });
    }

    it('akamai: a key for another user goes to that user only', async () => {
      const mine = ed25519Line('mine');
      const theirs = ed25519Line('theirs');
      const launch = ed25519Line('launch');
      const e = await emulate('akamai', { keys: [{ key: mine, user: DEMO_USER }, { key: theirs, user: 'ops' }, { key: launch, user: 'root' }] });
      const { code, report } = await boot('akamai', e.url);
      assert.equal(code, 0, failed(report));
      const own = (await keysOf(DEMO_USER)) ?? '';
      assert.ok(own.includes(mine) && !own.includes(theirs));
      assert.ok(own.includes(launch), 'the keys Akamai lists for root are the launch keys, for the configured login');
      assert.ok((await keysOf('ops'))?.includes(theirs));
    });

    it('digitalocean: an oversized document fails the phase and writes nothing', async () => {
      const e = await emulate('digitalocean', { keys: [ed25519Line('x')], scenarios: ['oversized=200000'] });
      const { code, report } = await boot('digitalocean', e.url);
      assert.equal(code, 1);
      assert.match(report.metadata?.error ?? '', /larger than 65536 bytes/);
      assert.equal(await keysOf(DEMO_USER), null);
    });

    it('vultr: an unreachable service ends at the deadline with nothing written', async () => {
      const e = await emulate('vultr', { keys: [ed25519Line('x')], scenarios: ['unreachable-after=0'] });
      const { code, report } = await boot('vultr', e.url, '--metadata-deadline', '2s');
      assert.equal(code, 1);
      assert.match(report.metadata?.error ?? '', /no usable answer within 2 s/);
      assert.equal(await keysOf(DEMO_USER), null);
    });

    it('hetzner: bad keys are refused one by one; the good one lands', async () => {
      const good = ed25519Line('good');
      const e = await emulate('hetzner', { keys: [good], scenarios: ['invalid-keys', 'slow=50'] });
      const { code, report } = await boot('hetzner', e.url);
      assert.equal(code, 0, failed(report));
      const text = (await keysOf(DEMO_USER)) ?? '';
      assert.ok(text.includes(good));
      // The option-injection key is kept without its options (authorized_keys.allow_options is off).
      assert.doesNotMatch(text, /command=|invalid-(bad|truncated|wrong|crlf|lf|control)/);
      assert.ok((task(report, 'authorized-keys')?.warnings.length ?? 0) >= 6);
    });

    it('an offline tree without --metadata-url contacts nothing', async () => {
      const run = await imprint(['boot', '--root', root, '--platform', 'scaleway', '--json']);
      const report = JSON.parse(run.stdout) as Report;
      assert.equal(run.code, 0);
      assert.match(run.stderr, /scaleway: skipped for an offline tree/);
      assert.match(run.stderr, /scaleway gave no metadata; network tasks skipped/);
      assert.equal(report.tasks.find((t) => t.task === 'authorized-keys')?.status, 'skipped');
    });
  });

  describe('detection in a tree', () => {
    it('picks the platform from the tree\'s DMI and says why', async () => {
      await mkdir(path.join(root, 'sys/class/dmi/id'), { recursive: true });
      await writeFile(path.join(root, 'sys/class/dmi/id/chassis_asset_tag'), 'OracleCloud.com\n');
      const key = ed25519Line('oci@laptop');
      const e = await emulate('oci', { keys: [key] });
      const run = await imprint(['boot', '--root', root, '--metadata-url', e.url, '--json']);
      const report = JSON.parse(run.stdout) as Report;
      assert.equal(run.code, 0, failed(report));
      assert.match(run.stderr, /platform oci \(DMI chassis_asset_tag "OracleCloud\.com"\)/);
      assert.deepEqual(report.metadata?.platform, { name: 'oci', why: 'platform oci (DMI chassis_asset_tag "OracleCloud.com")' });
      assert.ok((await keysOf(DEMO_USER))?.includes(key));
    });
  });

  describe('imprint emulate --platform', () => {

    it('serves Azure and says when the wireserver receives the ready report', async () => {
      const key = ed25519Line('cli@laptop');
      const r = await runEmulateCommand(['--platform', 'azure', '--listen', '127.0.0.1:0', '--key', key, '--user', 'azureuser'], async (base) => {
        const run = await imprint(['boot', '--root', root, '--platform', 'azure', '--metadata-url', base, '--wireserver-url', base, '--json']);
        assert.equal(run.code, 0, run.stderr);
      });
      assert.equal(r.code, 0, r.err);
      assert.match(r.out, /^emulate: platform azure, instance \S+, 1 key\(s\)/m);
      assert.match(r.out, /^emulate: wireserver received a ready report$/m);
      assert.match(r.out, /^emulate: GET \/metadata\/instance\?api-version=\S+ 200 header=yes$/m);
      assert.ok((await keysOf('azureuser'))?.includes(key));
    });

    it('serves GCE keys for other logins given with --user-key USER=KEY', async () => {
      const [alice, bob] = [ed25519Line('alice@cli'), ed25519Line('bob@cli')];
      const r = await runEmulateCommand(['--platform', 'gce', '--listen', '127.0.0.1:0', '--key', alice, '--user', 'alice', '--user-key', `bob=${bob}`], async (base) => {
        const run = await imprint(['boot', '--root', root, '--platform', 'gce', '--metadata-url', base, '--json']);
        assert.equal(run.code, 0, run.stderr);
      });
      assert.equal(r.code, 0, r.err);
      assert.match(r.out, /^emulate: platform gce, instance \S+, 2 key\(s\)/m);
      const [a, b] = [await keysOf('alice'), await keysOf('bob')];
      assert.ok(a?.includes(alice) && !a.includes(bob), a ?? '');
      assert.ok(b?.includes(bob) && !b.includes(alice), b ?? '');
    });

    it('refuses unknown platforms, EC2-only flags and token scenarios with exit status 2', async () => {
      for (const argv of [['--platform', 'mars'], ['--platform', 'azure', '--user-key', 'bob=ssh-ed25519 AAAA'], ['--platform', 'gce', '--user-key', 'Bad User=ssh-ed25519 AAAA'], ['--platform', 'gce', '--scenario', 'imdsv2-only'], ['--platform', 'gce', '--product-code', 'abc'], ['--platform', 'gce', '--scenario', 'nope']]) {
        const r = await runEmulateCommand(argv);
        assert.equal(r.code, 2, argv.join(' '));
        assert.match(r.err, /^imprint: /, argv.join(' '));
      }
    });
  });
});
