import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import { defaultConfig, type MetadataConfig } from '../../agent/config.js';
import { Deadline } from '../../agent/metadata/deadline.js';
import { Ec2MetadataClient, KEY_CONCURRENCY, MAX_LAUNCH_KEYS, MetadataDisabledError } from '../../agent/metadata/ec2.js';
import { parseScenario, startEmulator, type RunningEmulator } from '../../agent/metadata/emulator.js';

// The EC2 metadata client against `imprint emulate` on 127.0.0.1, one fault scenario at a time.
// Deadlines are short, and every test checks the run ends within its deadline.

const KEY = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIB1X5OVa8ZcgqK9Y3ZsvXzZ3iOk1sZm8wL0KqJ3Jx4bH launch';

function metadataConfig(url: string, overrides: Partial<MetadataConfig> = {}): MetadataConfig {
  return { ...defaultConfig().metadata, url, deadlineMs: 3_000, requestTimeoutMs: 500, ...overrides };
}

describe('EC2 metadata client against imprint emulate', () => {
  let emulator: RunningEmulator | null = null;
  let client: Ec2MetadataClient | null = null;

  async function start(scenarios: string[] = [], productCodes: string[] = []): Promise<RunningEmulator> {
    emulator = await startEmulator({ instanceId: 'i-0123456789abcdef0', keys: [KEY, { name: 'second', key: KEY.replace('launch', 'second') }], productCodes, scenarios: scenarios.map(parseScenario) });
    return emulator;
  }

  function connect(url: string, overrides: Partial<MetadataConfig> = {}): Ec2MetadataClient {
    const config = metadataConfig(url, overrides);
    client = new Ec2MetadataClient(config, new Deadline(config.deadlineMs));
    return client;
  }

  afterEach(async () => {
    await client?.close();
    await emulator?.close();
    client = null;
    emulator = null;
  });

  it('uses IMDSv2: one token PUT, then every GET carries the token; reads every key index and the product codes', async () => {
    const emu = await start([], ['abc123prodcode']);
    const md = await connect(emu.url).read();
    assert.equal(md.instanceId, 'i-0123456789abcdef0');
    assert.deepEqual(md.keys.map((k) => [k.origin, k.name]), [['public-keys/0', 'launch'], ['public-keys/1', 'second']]);
    assert.equal(md.keys[0]?.text.trim(), KEY);
    assert.deepEqual(md.productCodes, ['abc123prodcode']);
    assert.equal(client?.protocol, 'IMDSv2');
    assert.deepEqual(emu.requests.filter((r) => r.method === 'PUT').length, 1);
    assert.ok(emu.requests.filter((r) => r.method === 'GET').every((r) => r.token), 'every GET carries the token');
  });

  it('reports no product codes (null) when the service answers 404', async () => {
    const emu = await start();
    assert.equal((await connect(emu.url).read()).productCodes, null);
  });

  for (const scenario of ['imdsv1-only', 'imdsv1-only-405', 'ignore-put=html', 'ignore-put=empty']) {
    it(`falls back to IMDSv1 when the service has no v2 (${scenario})`, async () => {
      const emu = await start([scenario]);
      const md = await connect(emu.url).read();
      assert.equal(md.instanceId, 'i-0123456789abcdef0');
      assert.equal(client?.protocol, 'IMDSv1');
      assert.ok(emu.requests.filter((r) => r.method === 'GET').every((r) => !r.token));
    });

    it(`refuses IMDSv1 with imdsv1: never (${scenario})`, async () => {
      const emu = await start([scenario]);
      await assert.rejects(connect(emu.url, { imdsv1: 'never' }).read(), /IMDSv2 is not available .* imdsv1: never/);
      assert.equal(emu.requests.filter((r) => r.method === 'GET').length, 0);
    });
  }

  it('takes a token-shaped answer as a token when the service does not echo the TTL header (token-no-ttl + imdsv2-only)', async () => {
    const emu = await start(['imdsv2-only', 'token-no-ttl']);
    const md = await connect(emu.url).read();
    assert.equal(md.instanceId, 'i-0123456789abcdef0');
    assert.equal(md.keys.length, 2);
    assert.equal(client?.protocol, 'IMDSv2');
    assert.ok(emu.requests.filter((r) => r.method === 'GET').every((r) => r.token && r.status !== 401), 'every GET carried the token and none was refused');
  });

  it('stays on IMDSv2 with a service that allows both and does not echo the TTL header (token-no-ttl)', async () => {
    const emu = await start(['token-no-ttl']);
    await connect(emu.url).read();
    assert.equal(client?.protocol, 'IMDSv2');
    assert.ok(emu.requests.filter((r) => r.method === 'GET').every((r) => r.token), 'no GET went without the token');
  });

  for (const scenarios of [['malformed-token'], ['malformed-token', 'imdsv2-only']]) {
    it(`does not downgrade to IMDSv1 on a malformed token that came with a TTL header (${scenarios.join(' + ')})`, async () => {
      const emu = await start(scenarios);
      await assert.rejects(connect(emu.url).read(), /a body that is not a token; not falling back to IMDSv1/);
      assert.equal(emu.requests.filter((r) => r.method === 'GET').length, 0, 'nothing was read without a token');
    });
  }

  it('works with a v2-only service (GET without a token is 401 there)', async () => {
    const emu = await start(['imdsv2-only']);
    assert.equal((await connect(emu.url).read()).instanceId, 'i-0123456789abcdef0');
  });

  it('stops at once on 403 (metadata disabled), without falling back or retrying', async () => {
    const emu = await start(['disabled']);
    const started = performance.now();
    await assert.rejects(connect(emu.url).read(), (err: unknown) => err instanceof MetadataDisabledError && /disabled/.test(err.message));
    assert.ok(performance.now() - started < 1_000);
    assert.equal(emu.requests.length, 1, 'one PUT, no GET without a token');
  });

  it('renews the token when it expires mid-run', async () => {
    const emu = await start(['token-expiry=2']);
    const md = await connect(emu.url).read();
    assert.equal(md.keys.length, 2);
    assert.ok(emu.requests.filter((r) => r.method === 'PUT').length >= 2, 'a new token was fetched');
    assert.ok(emu.requests.some((r) => r.status === 401));
  });

  it('retries 5xx answers with backoff and then succeeds (flaky=3)', async () => {
    const emu = await start(['flaky=3']);
    const md = await connect(emu.url).read();
    assert.equal(md.instanceId, 'i-0123456789abcdef0');
    assert.equal(emu.requests.filter((r) => r.status === 503).length, 3);
  });

  it('waits for a slow service within the deadline, and gives up at the deadline when each answer is too slow', async () => {
    const slow = await start(['slow=200']);
    assert.equal((await connect(slow.url).read()).instanceId, 'i-0123456789abcdef0');
    await client?.close();
    await slow.close();
    const tooSlow = await start(['slow=1500']);
    const started = performance.now();
    await assert.rejects(connect(tooSlow.url, { deadlineMs: 1_500, requestTimeoutMs: 300 }).read(), /gave no usable answer within 1\.5 s \(last: .*no answer within/);
    const elapsed = performance.now() - started;
    assert.ok(elapsed >= 1_400 && elapsed < 2_500, `ended after ${Math.round(elapsed)} ms`);
  });

  it('still gets answers from a service slower than the request timeout (the timeout adapts)', async () => {
    const emu = await start(['slow=1200']);
    const md = await connect(emu.url, { deadlineMs: 20_000, requestTimeoutMs: 500 }).read();
    assert.equal(md.keys.length, 2);
    // Once a longer timeout worked, later requests are not cut short again one by one.
    const aborted = emu.requests.filter((r) => r.status === 'aborted').length;
    assert.ok(aborted <= 3, `${aborted} requests were cut short`);
  });

  it('rejects an oversized body', async () => {
    const emu = await start(['oversized=200000']);
    await assert.rejects(connect(emu.url).read(), /response larger than 65536 bytes/);
  });

  it('passes invalid and duplicate keys through untouched for the authorized-keys task to judge', async () => {
    const emu = await start(['invalid-keys', 'duplicate-keys']);
    const md = await connect(emu.url).read();
    assert.ok(md.keys.length > 2);
    // The 100 KB key is one rejected value; the rest of the metadata is still used.
    assert.ok(md.rejected.some((r) => /openssh-key: response larger than 65536 bytes/.test(r)), md.rejected.join('; '));
    assert.ok(md.keys.some((k) => k.text.trim() === KEY));
  });

  const keyGets = (emu: RunningEmulator): string[] => emu.requests.filter((r) => /^\/latest\/meta-data\/public-keys\/\d+\/openssh-key$/.test(r.path)).map((r) => r.path);

  it('reads a huge key listing with a few connections, caps it and says so (many-keys=3000)', async () => {
    const emu = await start(['many-keys=3000']);
    const md = await connect(emu.url, { deadlineMs: 20_000 }).read();
    assert.equal(md.keys.length, MAX_LAUNCH_KEYS);
    assert.deepEqual(md.keys.slice(0, 2).map((k) => k.name), ['launch', 'second']);
    assert.ok(md.rejected.some((r) => r === `public-keys/: capped: 3002 keys listed, only the first ${MAX_LAUNCH_KEYS} read`), md.rejected.join('; '));
    const gets = keyGets(emu);
    assert.equal(gets.length, MAX_LAUNCH_KEYS, 'one request per key kept, none for the keys beyond the cap');
    assert.equal(new Set(gets).size, gets.length);
    const { connections, peakInFlight } = emu.stats();
    assert.ok(peakInFlight <= KEY_CONCURRENCY, `${peakInFlight} requests were open at once`);
    assert.ok(connections <= KEY_CONCURRENCY, `${connections} connections were opened`);
  });

  it('asks once for an index the listing repeats thousands of times (repeated-index=5000)', async () => {
    const emu = await start(['repeated-index=5000']);
    const md = await connect(emu.url).read();
    assert.deepEqual(md.keys.map((k) => k.origin), ['public-keys/0']);
    assert.equal(md.keys[0]?.text.trim(), KEY);
    assert.deepEqual(keyGets(emu), ['/latest/meta-data/public-keys/0/openssh-key']);
    assert.ok(md.rejected.some((r) => /4999 repeated indexes read once/.test(r)), md.rejected.join('; '));
    assert.ok(emu.stats().connections <= KEY_CONCURRENCY);
  });

  it('keeps the keys that arrived when one key never answers (slow-key)', async () => {
    const emu = await start(['slow-key=600000']);
    const md = await connect(emu.url, { deadlineMs: 2_000, requestTimeoutMs: 300 }).read();
    assert.equal(md.instanceId, 'i-0123456789abcdef0');
    assert.deepEqual(md.keys.map((k) => k.name), ['second']);
    assert.ok(md.rejected.some((r) => /^\/latest\/meta-data\/public-keys\/0\/openssh-key: .*gave no usable answer/.test(r)), md.rejected.join('; '));
    assert.ok(emu.requests.some((r) => r.path === '/latest/meta-data/public-keys/0/openssh-key' && r.status === 'aborted'), 'the slow key was asked for and given up on');
  });

  it('retries a refused connection until the deadline, then fails clearly', async () => {
    const port = await new Promise<number>((resolve) => {
      const probe = createServer().listen(0, '127.0.0.1', () => {
        const { port: p } = probe.address() as { port: number };
        probe.close(() => resolve(p));
      });
    });
    const started = performance.now();
    await assert.rejects(connect(`http://127.0.0.1:${port}`, { deadlineMs: 1_200 }).read(), /gave no usable answer within 1\.2 s \(last: PUT \/latest\/api\/token: connection refused\)/);
    const elapsed = performance.now() - started;
    assert.ok(elapsed >= 1_100 && elapsed < 2_000, `ended after ${Math.round(elapsed)} ms`);
  });

  it('talks to an IPv6 endpoint (the form of http://[fd00:ec2::254])', async () => {
    emulator = await startEmulator({ instanceId: 'i-0123456789abcdef0', keys: [KEY], listen: { host: '::1', port: 0 } });
    assert.match(emulator.url, /^http:\/\/\[::1\]:\d+$/);
    assert.equal((await connect(emulator.url).read()).instanceId, 'i-0123456789abcdef0');
  });

  it('refuses the real metadata address while the test guard is set', async () => {
    await assert.rejects(connect('http://169.254.169.254').read(), /refusing to contact 169\.254\.169\.254/);
    await assert.rejects(connect('http://[fd00:ec2::254]').read(), /refusing to contact \[fd00:ec2::254\]/);
  });
});
