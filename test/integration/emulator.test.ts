import assert from 'node:assert/strict';
import { createHook } from 'node:async_hooks';
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { request } from 'undici';
import { parseScenario, startEmulator, type EmulatorOptions, type RunningEmulator } from '../../agent/metadata/emulator.js';
import { ed25519Line } from '../../agent/metadata/emulator/keys.js';
import { runEmulateCommand } from '../support/emulate-command.js';

// Every emulator here listens on 127.0.0.1 with port 0: nothing may ever reach (or pretend
// to be) 169.254.169.254 from the machine's own network namespace.

const exec = promisify(execFile);
const TOKEN = '/latest/api/token';
const TTL = 'x-aws-ec2-metadata-token-ttl-seconds';
const ALICE = ed25519Line('alice');
const BOB = ed25519Line('bob@example').replace(/ \S+$/, '');

interface Reply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
}

async function call(base: string, p: string, opts: { method?: 'GET' | 'PUT' | 'POST' | 'HEAD'; headers?: Record<string, string> } = {}): Promise<Reply> {
  const res = await request(`${base}${p}`, { method: opts.method ?? 'GET', headers: opts.headers ?? {} });
  return { status: res.statusCode, headers: res.headers, text: await res.body.text() };
}

async function token(base: string, ttl = '60'): Promise<string> {
  const r = await call(base, TOKEN, { method: 'PUT', headers: { [TTL]: ttl } });
  assert.equal(r.status, 200, r.text);
  return r.text;
}

const withToken = (t: string): Record<string, string> => ({ 'x-aws-ec2-metadata-token': t });

describe('imprint emulate', function () {
  this.timeout(20_000);
  const running: RunningEmulator[] = [];

  async function start(opts: EmulatorOptions = {}): Promise<string> {
    const emu = await startEmulator({ listen: { host: '127.0.0.1', port: 0 }, ...opts });
    running.push(emu);
    assert.match(emu.url, /^http:\/\/127\.0\.0\.1:\d+$/);
    return emu.url;
  }

  afterEach(async () => {
    await Promise.all(running.splice(0).map((e) => e.close()));
  });

  describe('IMDSv2 tokens', () => {
    it('issues a token that GETs can use, echoes its TTL, and serves IMDSv1 GETs too', async () => {
      const base = await start({ instanceId: 'i-0123456789abcdef0' });
      const put = await call(base, TOKEN, { method: 'PUT', headers: { [TTL]: '21600' } });
      assert.equal(put.status, 200);
      assert.equal(put.headers[TTL], '21600');
      assert.match(put.text, /^[A-Za-z0-9_-]{40,}$/);
      const got = await call(base, '/latest/meta-data/instance-id', { headers: withToken(put.text) });
      assert.equal(got.status, 200);
      assert.equal(got.text, 'i-0123456789abcdef0');
      assert.equal(got.headers['content-type'], 'text/plain');
      assert.equal(got.headers[TTL], '21600');
      assert.equal((await call(base, '/latest/meta-data/instance-id')).text, 'i-0123456789abcdef0');
      assert.notEqual(await token(base), put.text, 'every PUT gets a fresh token');
    });

    it('answers 401 to an unknown token and to an empty one', async () => {
      const base = await start();
      await token(base);
      assert.equal((await call(base, '/latest/meta-data/instance-id', { headers: withToken('not-a-token') })).status, 401);
      assert.equal((await call(base, '/latest/meta-data/instance-id', { headers: withToken('') })).status, 401);
    });

    it('validates the TTL header: 400 when missing, not a whole number, or outside 1..21600', async () => {
      const base = await start();
      assert.equal((await call(base, TOKEN, { method: 'PUT' })).status, 400);
      // (Leading and trailing blanks are not a case: HTTP strips them before the server sees the value.)
      for (const ttl of ['0', '21601', '-5', '1.5', 'abc', '6 0', '0x10', '999999']) {
        assert.equal((await call(base, TOKEN, { method: 'PUT', headers: { [TTL]: ttl } })).status, 400, `TTL ${JSON.stringify(ttl)}`);
      }
      assert.equal((await call(base, TOKEN, { method: 'PUT', headers: { [TTL]: '1' } })).status, 200);
    });

    it('refuses a token PUT that carries X-Forwarded-For (403), as AWS does', async () => {
      const base = await start();
      const r = await call(base, TOKEN, { method: 'PUT', headers: { [TTL]: '60', 'x-forwarded-for': '10.0.0.9' } });
      assert.equal(r.status, 403);
    });

    it('expires tokens when their TTL has passed (fake clock, no waiting)', async () => {
      let now = 1_700_000_000_000;
      const base = await start({ now: () => now });
      const t = await token(base, '2');
      now += 1_000;
      const mid = await call(base, '/latest/meta-data/instance-id', { headers: withToken(t) });
      assert.equal(mid.status, 200);
      assert.equal(mid.headers[TTL], '1');
      now += 1_000;
      assert.equal((await call(base, '/latest/meta-data/instance-id', { headers: withToken(t) })).status, 401);
    });

    it('answers 405 to other methods on the token path and elsewhere', async () => {
      const base = await start();
      assert.equal((await call(base, TOKEN)).status, 405);
      assert.equal((await call(base, '/latest/meta-data/', { method: 'POST' })).status, 405);
      assert.equal((await call(base, '/latest/meta-data/instance-id', { method: 'PUT', headers: { [TTL]: '60' } })).status, 405);
    });
  });

  describe('paths', () => {
    it('lists meta-data like AWS: one name a line, directories with "/", no empty lines', async () => {
      const base = await start({ keys: [ALICE], productCodes: ['abc123'] });
      const listing = (await call(base, '/latest/meta-data/')).text;
      const names = listing.split('\n');
      for (const n of ['ami-id', 'instance-id', 'instance-type', 'local-ipv4', 'placement/', 'product-codes', 'public-keys/']) assert.ok(names.includes(n), `${n} in ${listing}`);
      assert.ok(!names.includes(''), 'no empty lines');
      assert.equal((await call(base, '/latest/meta-data')).text, listing, 'without the slash too');
      assert.equal((await call(base, '/latest/')).text, 'dynamic/\nmeta-data/');
      assert.equal((await call(base, '/latest/dynamic/instance-identity/')).text, 'document');
    });

    it('serves every key under its index: N=name lines, N/ → openssh-key, the key text verbatim', async () => {
      const base = await start({ keys: [ALICE, BOB, { name: 'ops', key: ALICE.replace('alice', 'x') }] });
      assert.equal((await call(base, '/latest/meta-data/public-keys/')).text, '0=alice\n1=key-1\n2=ops');
      assert.equal((await call(base, '/latest/meta-data/public-keys/1/')).text, 'openssh-key');
      assert.equal((await call(base, '/latest/meta-data/public-keys/1')).text, 'openssh-key');
      assert.equal((await call(base, '/latest/meta-data/public-keys/0/openssh-key')).text, ALICE);
      assert.equal((await call(base, '/latest/meta-data/public-keys/1/openssh-key')).text, BOB);
      assert.equal((await call(base, '/latest/meta-data/public-keys/3/openssh-key')).status, 404);
    });

    it('serves product codes one a line', async () => {
      const base = await start({ productCodes: ['code1', 'code2'] });
      const r = await call(base, '/latest/meta-data/product-codes');
      assert.equal(r.status, 200);
      assert.equal(r.text, 'code1\ncode2');
    });

    it('leaves out public-keys/ and product-codes when there are none (404, not an empty answer)', async () => {
      const base = await start();
      const names = (await call(base, '/latest/meta-data/')).text.split('\n');
      assert.ok(!names.includes('public-keys/') && !names.includes('product-codes'));
      assert.equal((await call(base, '/latest/meta-data/public-keys/')).status, 404);
      const codes = await call(base, '/latest/meta-data/product-codes');
      assert.equal(codes.status, 404);
      assert.match(codes.text, /<title>404 - Not Found<\/title>/, 'the body is an error page, not a value');
      assert.equal(codes.headers['content-type'], 'text/html');
    });

    it('answers 404 to anything else', async () => {
      const base = await start();
      for (const p of ['/latest/meta-data/nope', '/latest/meta-data/instance-id/', '/latest//meta-data/instance-id', '/2009-04-04/meta-data/', '/latest/user-data', '/latest/dynamic/instance-identity/rsa2048', '/latest/dynamic/instance-identity/pkcs7']) {
        assert.equal((await call(base, p)).status, 404, p);
      }
      assert.equal((await call(base, '/latest/meta-data/instance-id?x=1')).status, 200, 'a query string is ignored');
    });

    it('serves the identity document with AWS field names, order and spacing', async () => {
      const base = await start({
        instanceId: 'i-00000000000000001', productCodes: ['mp-code'],
        identity: { region: 'eu-west-3', accountId: '012345678901', imageId: 'ami-0abc', instanceType: 'm7g.large', billingProducts: ['bp-63a5400a'] },
      });
      const r = await call(base, '/latest/dynamic/instance-identity/document');
      assert.equal(r.status, 200);
      assert.match(r.text, /^\{\n {2}"accountId" : "012345678901",\n/);
      const doc = JSON.parse(r.text) as Record<string, unknown>;
      assert.deepEqual(Object.keys(doc), ['accountId', 'architecture', 'availabilityZone', 'billingProducts', 'devpayProductCodes', 'marketplaceProductCodes', 'imageId', 'instanceId', 'instanceType', 'kernelId', 'pendingTime', 'privateIp', 'ramdiskId', 'region', 'version']);
      assert.equal(doc.instanceId, 'i-00000000000000001');
      assert.equal(doc.region, 'eu-west-3');
      assert.equal(doc.availabilityZone, 'eu-west-3a');
      assert.equal(doc.imageId, 'ami-0abc');
      assert.equal(doc.instanceType, 'm7g.large');
      assert.equal(doc.version, '2017-09-30');
      assert.equal(doc.devpayProductCodes, null);
      assert.deepEqual(doc.marketplaceProductCodes, ['mp-code'], 'defaults to the product codes');
      assert.deepEqual(doc.billingProducts, ['bp-63a5400a']);
      assert.match(String(doc.pendingTime), /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
      assert.equal((await call(base, '/latest/meta-data/placement/region')).text, 'eu-west-3');
      assert.equal((await call(base, '/latest/meta-data/ami-id')).text, 'ami-0abc');
    });
  });

  describe('scenarios', () => {
    it('imdsv1-only: the token PUT answers 404 and GETs work, with or without a token header', async () => {
      const base = await start({ scenarios: [parseScenario('imdsv1-only')], instanceId: 'i-1' });
      assert.equal((await call(base, TOKEN, { method: 'PUT', headers: { [TTL]: '60' } })).status, 404);
      assert.equal((await call(base, '/latest/meta-data/instance-id')).text, 'i-1');
      assert.equal((await call(base, '/latest/meta-data/instance-id', { headers: withToken('whatever') })).status, 200);
    });

    it('imdsv1-only-405: the token PUT answers 405', async () => {
      const base = await start({ scenarios: [parseScenario('imdsv1-only-405')] });
      assert.equal((await call(base, TOKEN, { method: 'PUT', headers: { [TTL]: '60' } })).status, 405);
      assert.equal((await call(base, '/latest/meta-data/instance-id')).status, 200);
    });

    it('ignore-put: the token PUT gets 200 with a page that is not a token, and no TTL header', async () => {
      const base = await start({ scenarios: [parseScenario('ignore-put')] });
      const put = await call(base, TOKEN, { method: 'PUT', headers: { [TTL]: '60' } });
      assert.equal(put.status, 200);
      assert.equal(put.headers[TTL], undefined);
      assert.equal(put.headers['content-type'], 'text/html');
      assert.match(put.text, /^<!DOCTYPE html>/);
      const fakeToken = put.text.split('\n')[0] as string;
      assert.equal((await call(base, '/latest/meta-data/instance-id', { headers: withToken(fakeToken) })).status, 200, 'the "token" is ignored');
      const empty = await start({ scenarios: [parseScenario('ignore-put=empty')] });
      const put2 = await call(empty, TOKEN, { method: 'PUT', headers: { [TTL]: '60' } });
      assert.deepEqual([put2.status, put2.text], [200, '']);
    });

    it('imdsv2-only: a GET without a token answers 401, with one it works', async () => {
      const base = await start({ scenarios: [parseScenario('imdsv2-only')] });
      assert.equal((await call(base, '/latest/meta-data/instance-id')).status, 401);
      assert.equal((await call(base, '/latest/meta-data/instance-id', { headers: withToken(await token(base)) })).status, 200);
    });

    it('disabled: every request answers 403', async () => {
      const base = await start({ scenarios: [parseScenario('disabled')] });
      assert.equal((await call(base, TOKEN, { method: 'PUT', headers: { [TTL]: '60' } })).status, 403);
      assert.equal((await call(base, '/latest/meta-data/instance-id')).status, 403);
      assert.equal((await call(base, '/nope')).status, 403);
    });

    it('slow=MS: every answer takes at least MS', async () => {
      const emuLog: string[] = [];
      const base = await start({ scenarios: [parseScenario('slow=150')], log: (l) => emuLog.push(l) });
      for (const req of [() => call(base, TOKEN, { method: 'PUT', headers: { [TTL]: '60' } }), () => call(base, '/latest/meta-data/instance-id'), () => call(base, '/missing')]) {
        const t0 = performance.now();
        await req();
        assert.ok(performance.now() - t0 >= 149, `took ${performance.now() - t0} ms`);
      }
      assert.equal(emuLog.length, 3);
      assert.ok(running[0]?.requests.every((r) => r.ms >= 149));
    });

    it('slow: close() ends pending delays at once and leaves no timer behind', async () => {
      // Track the timers the emulator itself creates (by their creation stack), not the process's.
      const ours = new Set<number>();
      const hook = createHook({
        init(id, type) {
          if (type === 'Timeout' && /agent[\\/]metadata[\\/]emulator\.ts/.test(new Error().stack ?? '')) ours.add(id);
        },
        destroy(id) { ours.delete(id); },
      }).enable();
      try {
        const base = await start({ scenarios: [parseScenario('slow=60000')] });
        const pending = call(base, '/latest/meta-data/instance-id').then(() => 'answered', () => 'dropped');
        // Wait by event-loop turns, not by the clock, until the server holds the delayed answer.
        for (let i = 0; i < 10_000 && ours.size === 0; i += 1) await new Promise((r) => setImmediate(r));
        assert.equal(ours.size, 1, 'the delayed answer is pending');
        const t0 = performance.now();
        await running.splice(0)[0]?.close();
        assert.equal(await pending, 'dropped');
        assert.ok(performance.now() - t0 < 1_000);
        for (let i = 0; i < 100 && ours.size > 0; i += 1) await new Promise((r) => setImmediate(r));
        assert.equal(ours.size, 0, 'no timer outlives close()');
      } finally {
        hook.disable();
      }
    });

    it('flaky=N: the first N requests of any kind answer 503, then the service works', async () => {
      const base = await start({ scenarios: [parseScenario('flaky=3')] });
      assert.equal((await call(base, TOKEN, { method: 'PUT', headers: { [TTL]: '60' } })).status, 503);
      assert.equal((await call(base, '/latest/meta-data/instance-id')).status, 503);
      assert.equal((await call(base, '/nope')).status, 503);
      const t = await token(base);
      assert.equal((await call(base, '/latest/meta-data/instance-id', { headers: withToken(t) })).status, 200);
    });

    it('token-expiry=N: a token serves N GETs, then 401 until a new token is fetched', async () => {
      const base = await start({ scenarios: [parseScenario('token-expiry=2')] });
      const t = await token(base);
      const get = (tok: string): Promise<number> => call(base, '/latest/meta-data/instance-id', { headers: withToken(tok) }).then((r) => r.status);
      assert.deepEqual([await get(t), await get(t), await get(t), await get(t)], [200, 200, 401, 401]);
      const t2 = await token(base);
      assert.deepEqual([await get(t2), await get(t2), await get(t2)], [200, 200, 401]);
      assert.equal(running[0]?.requests.filter((r) => r.scenario === 'token-expiry').length, 2);
    });

    it('oversized=BYTES: the instance-id answer is BYTES long', async () => {
      const base = await start({ scenarios: [parseScenario('oversized=200000')] });
      const r = await call(base, '/latest/meta-data/instance-id');
      assert.equal(r.status, 200);
      assert.equal(Buffer.byteLength(r.text), 200_000);
      assert.match(r.text, /^i-[0-9a-f]+$/);
    });

    it('invalid-keys: serves each attack after the real keys, under a name that says what it is', async () => {
      const base = await start({ keys: [ALICE], scenarios: [parseScenario('invalid-keys')] });
      const lines = (await call(base, '/latest/meta-data/public-keys/')).text.split('\n');
      assert.equal(lines[0], '0=alice');
      const names = lines.slice(1).map((l) => l.replace(/^\d+=/, ''));
      assert.deepEqual(names, ['invalid-bad-base64', 'invalid-truncated-base64', 'invalid-wrong-inner-type', 'invalid-option-injection', 'invalid-crlf-injection', 'invalid-lf-injection', 'invalid-control-chars', 'invalid-100k-line']);
      const key = async (name: string): Promise<string> => (await call(base, `/latest/meta-data/public-keys/${lines.findIndex((l) => l.endsWith(`=${name}`))}/openssh-key`)).text;
      assert.match(await key('invalid-option-injection'), /^environment="[^"]+",command="[^"]+",no-pty ssh-ed25519 /);
      assert.match(await key('invalid-crlf-injection'), /first\r\nssh-ed25519 \S+ invalid-crlf-injected$/);
      assert.match(await key('invalid-lf-injection'), /first\nssh-ed25519 /);
      assert.match(await key('invalid-control-chars'), /\x1b\[2J\x00/);
      assert.ok((await key('invalid-100k-line')).length > 100 * 1024);
      assert.match(await key('invalid-wrong-inner-type'), /^ssh-rsa AAAAC3NzaC1lZDI1NTE5/, 'an ed25519 blob labelled ssh-rsa');
    });

    it('duplicate-keys: the first key again under one more index', async () => {
      const base = await start({ keys: [ALICE], scenarios: [parseScenario('duplicate-keys')] });
      assert.equal((await call(base, '/latest/meta-data/public-keys/')).text, '0=alice\n1=alice-duplicate');
      assert.equal((await call(base, '/latest/meta-data/public-keys/1/openssh-key')).text, ALICE);
    });

    it('unreachable-after=N: later connections are closed without an answer', async () => {
      const base = await start({ scenarios: [parseScenario('unreachable-after=2')] });
      assert.equal((await call(base, '/latest/meta-data/instance-id')).status, 200);
      assert.equal((await call(base, '/latest/meta-data/instance-id')).status, 200);
      await assert.rejects(call(base, '/latest/meta-data/instance-id'));
      assert.equal(running[0]?.requests[2]?.status, 'closed');
    });

    it('rejects unknown, malformed, repeated and contradicting scenarios', async () => {
      for (const bad of ['nope', 'slow', 'slow=abc', 'slow=-1', 'flaky=0', 'oversized=999999999', 'disabled=1', 'ignore-put=xml']) {
        assert.throws(() => parseScenario(bad), /scenario/, bad);
      }
      assert.deepEqual(parseScenario('slow=25'), { name: 'slow', ms: 25 });
      await assert.rejects(startEmulator({ scenarios: [parseScenario('imdsv1-only'), parseScenario('imdsv2-only')] }), /contradict/);
      await assert.rejects(startEmulator({ scenarios: [parseScenario('slow=1'), parseScenario('slow=2')] }), /twice/);
    });
  });

  describe('request log', () => {
    it('logs one line per request with method, path, status, bytes, time and token=yes/no, never the token', async () => {
      const lines: string[] = [];
      const base = await start({ log: (l) => lines.push(l), instanceId: 'i-0aaaabbbbccccdddd' });
      const t = await token(base);
      await call(base, '/latest/meta-data/instance-id', { headers: withToken(t) });
      await call(base, '/latest/meta-data/instance-id');
      await call(base, '/latest/meta-data/missing', { headers: withToken(`${t}x`) });
      await call(base, '/latest/meta-data/%1b[2J');
      assert.equal(lines.length, 5);
      assert.match(lines[0] as string, /^emulate: PUT \/latest\/api\/token 200 54 bytes [\d.]+ ms token=no$/);
      assert.match(lines[1] as string, /^emulate: GET \/latest\/meta-data\/instance-id 200 19 bytes [\d.]+ ms token=yes$/);
      assert.match(lines[2] as string, / 200 19 bytes [\d.]+ ms token=no$/);
      assert.match(lines[3] as string, / 401 \d+ bytes [\d.]+ ms token=yes$/);
      const emu = running[0] as RunningEmulator;
      assert.deepEqual(emu.requests.map((r) => [r.seq, r.method, r.status, r.token]), [[1, 'PUT', 200, false], [2, 'GET', 200, true], [3, 'GET', 200, false], [4, 'GET', 401, true], [5, 'GET', 404, false]]);
      const everything = lines.join('\n') + JSON.stringify(emu.requests);
      assert.ok(!everything.includes(t), 'the token value never appears');
      assert.ok(!/[\0-\x1f]/.test(lines.join('')), 'no control characters from the request reach the log');
    });
  });

  describe('the identity document signature', () => {
    let dir: string;
    let key: string;
    let cert: string;

    before(async () => {
      dir = await mkdtemp(path.join(tmpdir(), 'imprint-emulate-'));
      key = path.join(dir, 'key.pem');
      cert = path.join(dir, 'cert.pem');
      await exec('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-subj', '/CN=test', '-days', '1', '-keyout', key, '-out', cert]);
    });
    after(async () => {
      await rm(dir, { recursive: true, force: true });
    });

    async function verify(signature: string, document: string, certfile: string | null): Promise<boolean> {
      const sig = path.join(dir, 'sig.pem');
      const doc = path.join(dir, 'document');
      await writeFile(sig, `-----BEGIN PKCS7-----\n${signature}\n-----END PKCS7-----\n`);
      await writeFile(doc, document);
      const args = ['smime', '-verify', '-inform', 'PEM', '-in', sig, '-content', doc, '-noverify', '-out', '/dev/null'];
      if (certfile) args.push('-certfile', certfile);
      return exec('openssl', args).then(() => true, () => false);
    }

    it('rsa2048 is base64 PKCS#7 in 64-column lines that verifies over the document bytes, and only over them', async () => {
      const base = await start({ signing: { key, cert }, productCodes: ['prod-1'] });
      const document = (await call(base, '/latest/dynamic/instance-identity/document')).text;
      const rsa2048 = await call(base, '/latest/dynamic/instance-identity/rsa2048');
      assert.equal(rsa2048.status, 200);
      const lines = rsa2048.text.split('\n');
      assert.ok(lines.every((l) => /^[A-Za-z0-9+/=]{1,64}$/.test(l)) && lines.slice(0, -1).every((l) => l.length === 64), 'base64, 64 columns, no armour');
      assert.equal(await verify(rsa2048.text, document, cert), true);
      assert.equal(await verify(rsa2048.text, document.replace('prod-1', 'prod-2'), cert), false, 'a modified document fails');
      assert.equal(await verify(rsa2048.text, document, null), false, 'the signer certificate is not embedded');
      const attached = await exec('openssl', ['smime', '-verify', '-inform', 'PEM', '-in', path.join(dir, 'sig.pem'), '-certfile', cert, '-noverify', '-binary']);
      assert.equal(attached.stdout, document, 'the document travels inside the PKCS#7 (attached, like AWS)');
      assert.equal((await call(base, '/latest/dynamic/instance-identity/pkcs7')).text, rsa2048.text);
      assert.equal((await call(base, '/latest/dynamic/instance-identity/')).text, 'document\npkcs7\nrsa2048');
    });

    it('--identity-embed-cert puts the signer certificate into the PKCS#7', async () => {
      const base = await start({ signing: { key, cert, embedCert: true } });
      const document = (await call(base, '/latest/dynamic/instance-identity/document')).text;
      const rsa2048 = (await call(base, '/latest/dynamic/instance-identity/rsa2048')).text;
      assert.equal(await verify(rsa2048, document, null), true);
    });

    it('refuses to start when the key or certificate cannot be used', async () => {
      await assert.rejects(startEmulator({ signing: { key: path.join(dir, 'missing.pem'), cert } }), /cannot sign the identity document/);
    });
  });

  describe('emulateCommand', () => {

    it('answers usage errors with "imprint: ..." on stderr and exit status 2', async () => {
      for (const argv of [['--bogus'], ['--listen', 'localhost'], ['--listen', '127.0.0.1:99999'], ['--scenario', 'nope'], ['--scenario', 'slow'], ['extra'], ['--identity-key', 'k.pem'], ['--key', ''], ['--scenario', 'imdsv1-only', '--scenario', 'imdsv2-only'], ['--config', '/nonexistent/emulate.yaml']]) {
        const r = await runEmulateCommand(argv);
        assert.equal(r.code, 2, argv.join(' '));
        assert.match(r.err, /^imprint: /, argv.join(' '));
        assert.equal(r.out, '');
      }
    });

    it('prints complete help for --help', async () => {
      const r = await runEmulateCommand(['--help']);
      assert.equal(r.code, 0);
      for (const word of ['--listen', '--config', '--instance-id', '--key', '--product-code', '--identity-key', '--identity-cert', '--identity-embed-cert', '--scenario', 'imdsv1-only', 'imdsv1-only-405', 'ignore-put', 'imdsv2-only', 'disabled', 'slow=MS', 'flaky=N', 'token-expiry=N', 'oversized=BYTES', 'invalid-keys', 'duplicate-keys', 'unreachable-after=N']) {
        assert.ok(r.out.includes(word), word);
      }
    });

    it('loads a YAML config, prints the address first, logs requests, and stops with exit 0', async () => {
      const dir = await mkdtemp(path.join(tmpdir(), 'imprint-emulate-'));
      try {
        const file = path.join(dir, 'emulate.yaml');
        await writeFile(file, `instance_id: i-0feedfacefeedface
keys:
  - ${ALICE}
  - { name: deploy, key: "${BOB}" }
product_codes: [pc-one, pc-two]
identity:
  region: ap-south-1
  account_id: 012345678901
  billing_products: [bp-1]
`);
        const r = await runEmulateCommand(['--config', file, '--listen', '127.0.0.1:0', '--scenario', 'imdsv2-only'], async (base) => {
          const t = await token(base);
          const get = async (p: string): Promise<string> => (await call(base, p, { headers: withToken(t) })).text;
          assert.equal(await get('/latest/meta-data/instance-id'), 'i-0feedfacefeedface');
          assert.equal(await get('/latest/meta-data/public-keys/'), '0=alice\n1=deploy');
          assert.equal(await get('/latest/meta-data/public-keys/1/openssh-key'), BOB);
          assert.equal(await get('/latest/meta-data/product-codes'), 'pc-one\npc-two');
          const doc = JSON.parse(await get('/latest/dynamic/instance-identity/document')) as Record<string, unknown>;
          assert.deepEqual([doc.region, doc.accountId, doc.billingProducts, doc.marketplaceProductCodes], ['ap-south-1', '012345678901', ['bp-1'], ['pc-one', 'pc-two']]);
          assert.equal((await call(base, '/latest/meta-data/instance-id')).status, 401);
        });
        assert.equal(r.code, 0, r.err);
        const lines = r.out.trimEnd().split('\n');
        assert.match(lines[0] as string, /^emulate: listening on http:\/\/127\.0\.0\.1:\d+$/);
        assert.equal(lines.filter((l) => /^emulate: (GET|PUT) /.test(l)).length, 7);
        assert.equal(lines.at(-1), 'emulate: stopped');
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    });

    it('reports config errors as file:line:col with exit status 2', async () => {
      const dir = await mkdtemp(path.join(tmpdir(), 'imprint-emulate-'));
      try {
        const file = path.join(dir, 'emulate.yaml');
        await writeFile(file, 'instance_id: i-1\nkeyz: []\nidentity:\n  region: [1]\n');
        const r = await runEmulateCommand(['--config', file]);
        assert.equal(r.code, 2);
        assert.match(r.err, new RegExp(`^imprint: ${file.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}:2:1: unknown key "keyz" \\(did you mean "keys"\\?\\)`));
        assert.match(r.err, /:4:11: identity\.region must be a string/);
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    });

    it('flags override the config file', async () => {
      const r = await runEmulateCommand(['--listen', '127.0.0.1:0', '--instance-id', 'i-flag', '--key', ALICE, '--product-code', 'flagcode', '--region', 'sa-east-1'], async (base) => {
        assert.equal((await call(base, '/latest/meta-data/instance-id')).text, 'i-flag');
        assert.equal((await call(base, '/latest/meta-data/public-keys/')).text, '0=alice');
        assert.equal((await call(base, '/latest/meta-data/product-codes')).text, 'flagcode');
        assert.equal((await call(base, '/latest/meta-data/placement/availability-zone')).text, 'sa-east-1a');
      });
      assert.equal(r.code, 0, r.err);
    });
  });
});
