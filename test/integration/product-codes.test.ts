import assert from 'node:assert/strict';
import { mkdir, rm, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { TaskRecorder } from '../../agent/boot/report.js';
import type { TaskContext } from '../../agent/boot/task.js';
import { parseConfig } from '../../agent/config.js';
import type { IdentityDocument, InstanceMetadata } from '../../agent/metadata/types.js';
import { Console } from '../../agent/os/console.js';
import { ImprintError } from '../../agent/os/errors.js';
import type { RunOptions } from '../../agent/os/exec.js';
import { RootTree } from '../../agent/os/root.js';
import { stopUnits, type UnitStop } from '../../agent/os/systemd-units.js';
import { checkProductCodes, productCodesTask, type ProductCheck } from '../../agent/tasks/product-codes.js';
import { identityDocumentText, makeTestPki, type SignOptions, type TestPki } from '../support/pkcs7.js';
import { removeScratch, scratchImage } from '../support/tree.js';

// The product-codes task on a scratch image (--root), for both sources and every on_mismatch
// action: the console line, the report, and whether it fails the boot. Metadata is built by hand
// (the client has its own tests); the identity document is signed by a test PKI made with openssl.

const CODE = '3iplms73etrdhxdepv72l6ywj';
const INSTANCE = 'i-0123456789abcdef0';
const PEM_PATH = '/etc/imprint/region.pem';

function configYaml(fields: Record<string, string>): string {
  const lines = Object.entries({ expected: `[${CODE}]`, ...fields }).map(([k, v]) => `  ${k}: ${v}`);
  return `product_codes:\n${lines.join('\n')}\n`;
}

function metadata(over: Partial<InstanceMetadata> = {}): InstanceMetadata {
  return { source: 'ec2', instanceId: INSTANCE, keys: [], productCodes: null, identityDocument: null, rejected: [], ...over };
}

interface Outcome {
  lines: string[];
  error: unknown;
  rec: TaskRecorder;
}

/** Runs the task the way the engine does, capturing what the real Console writes. */
async function runTask(ctx: TaskContext): Promise<Outcome> {
  const rec = new TaskRecorder(productCodesTask.name, productCodesTask.phase, new Console({ json: false, verbose: false }));
  const written: string[] = [];
  const original = process.stdout.write.bind(process.stdout);
  process.stdout.write = ((chunk: string | Uint8Array) => {
    written.push(String(chunk));
    return true;
  }) as typeof process.stdout.write;
  let error: unknown = null;
  try {
    await productCodesTask.run(ctx, rec);
  } catch (err) {
    error = err;
  } finally {
    process.stdout.write = original;
  }
  return { lines: written.join('').split('\n').filter(Boolean), error, rec };
}

describe('product-codes task (--root scratch image)', function () {
  let pki: TestPki;
  let root: string;
  const document = identityDocumentText({ instanceId: INSTANCE, marketplaceProductCodes: [CODE], billingProducts: null });

  // One image for the file (building it costs ~1 s); the task only reads the pinned certificate,
  // which each test puts back.
  before(async () => {
    [pki, root] = await Promise.all([makeTestPki(), scratchImage()]);
    await mkdir(path.join(root, 'etc/imprint'), { recursive: true });
  });
  after(async () => {
    await pki?.cleanup();
    if (root) await removeScratch(root);
  });
  beforeEach(async () => {
    await removeScratchFile(root, PEM_PATH);
    await writeFile(path.join(root, PEM_PATH.slice(1)), pki.pem.region);
  });

  const context = (yaml: string, md: InstanceMetadata | undefined): TaskContext => ({
    root: new RootTree(root),
    config: parseConfig(yaml, '/etc/imprint/imprint.yaml'),
    instance: { id: 'test-instance', source: 'override' },
    facts: md ? { metadata: md } : {},
  });

  const signed = async (doc: string, opts?: SignOptions): Promise<() => Promise<IdentityDocument>> => {
    const pkcs7 = await pki.sign(doc, opts);
    return async () => ({ document: doc, pkcs7 });
  };

  it('is off without expected codes, and plans without touching anything', async () => {
    assert.equal(productCodesTask.disabledBecause(parseConfig('', 'x.yaml')), 'no product_codes.expected in the config');
    assert.equal(productCodesTask.disabledBecause(parseConfig(configYaml({}), 'x.yaml')), null);
    const ctx = context(configYaml({ on_mismatch: 'stop-units', units: '[app.service]' }), undefined);
    assert.deepEqual(await productCodesTask.plan(ctx), [`would check product codes ${CODE} against meta-data/product-codes; on mismatch: stop app.service and fail`]);
  });

  it('fails plainly without metadata', async () => {
    const { error } = await runTask(context(configYaml({}), undefined));
    assert.ok(error instanceof ImprintError);
    assert.match(error.message, /^no metadata/);
  });

  describe('source: metadata', () => {
    it('a match is one action line, and the task succeeds', async () => {
      const { lines, error, rec } = await runTask(context(configYaml({ on_mismatch: 'fail' }), metadata({ productCodes: ['other-code', CODE] })));
      assert.equal(error, null);
      assert.deepEqual(lines, [`imprint: product-codes: product codes match: expected ${CODE}; found other-code, ${CODE} (meta-data/product-codes)`]);
      assert.equal(rec.report.warnings.length, 0);
      assert.equal((rec.report.details.check as ProductCheck).ok, true);
    });

    it('warn: no product codes (404) is a warning line; the task still succeeds (exit 0)', async () => {
      const { lines, error, rec } = await runTask(context(configYaml({ on_mismatch: 'warn' }), metadata({ productCodes: null })));
      assert.equal(error, null);
      assert.deepEqual(lines, [`imprint: product-codes: warning: product codes do not match: expected ${CODE}; found none (meta-data/product-codes): the metadata service serves no product codes`]);
      assert.equal(rec.report.warnings.length, 1);
    });

    it('fail: a different code fails the task (exit 1) after saying what was expected and found', async () => {
      const { lines, error } = await runTask(context(configYaml({ on_mismatch: 'fail' }), metadata({ productCodes: ['someone-elses-code'] })));
      assert.ok(error instanceof ImprintError);
      assert.equal(error.message, 'product code check failed (on_mismatch: fail)');
      assert.deepEqual(lines, [`imprint: product-codes: warning: product codes do not match: expected ${CODE}; found someone-elses-code (meta-data/product-codes): missing ${CODE}`]);
    });

    it('every expected code must be present', async () => {
      const yaml = `product_codes:\n  expected: [${CODE}, second-code]\n  on_mismatch: fail\n`;
      const { lines, error } = await runTask(context(yaml, metadata({ productCodes: [CODE] })));
      assert.ok(error instanceof ImprintError);
      assert.match(lines[0] as string, /missing second-code$/);
    });

    it('stop-units under --root: records the units it would stop, runs no systemctl, and fails', async () => {
      const yaml = configYaml({ on_mismatch: 'stop-units', units: '[app.service, billing-agent.service]' });
      const { lines, error, rec } = await runTask(context(yaml, metadata({ productCodes: [] })));
      assert.ok(error instanceof ImprintError);
      assert.equal(error.message, 'product code check failed (on_mismatch: stop-units): would stop app.service, billing-agent.service');
      assert.deepEqual(lines, [
        `imprint: product-codes: warning: product codes do not match: expected ${CODE}; found none (meta-data/product-codes): missing ${CODE}`,
        'imprint: product-codes: --root: an offline tree has no running units; systemctl not run; would stop app.service, billing-agent.service',
      ]);
      const units = rec.report.details.units as UnitStop[];
      assert.deepEqual(units.map((u) => [u.unit, u.outcome]), [['app.service', 'not-run'], ['billing-agent.service', 'not-run']]);
    });

    it('control characters in codes from metadata are escaped on the console line', async () => {
      const { lines } = await runTask(context(configYaml({}), metadata({ productCodes: ['evil\x1b[2Jcode', 'a\rb'] })));
      assert.equal(lines.length, 1);
      assert.match(lines[0] as string, /found evil\\x1b\[2Jcode, a\\x0db /);
    });
  });

  describe('source: identity-document', () => {
    const idConfig = (onMismatch: string, extra: Record<string, string> = {}) =>
      configYaml({ source: 'identity-document', certificate: PEM_PATH, on_mismatch: onMismatch, ...extra });

    it('a genuine signed document with the code passes', async () => {
      const { lines, error, rec } = await runTask(context(idConfig('fail'), metadata({ identityDocument: await signed(document, { stream: true }) })));
      assert.equal(error, null);
      assert.deepEqual(lines, [`imprint: product-codes: product codes match: expected ${CODE}; found ${CODE} (identity document of eu-west-3, signed by CN=imprint test region, O=imprint tests)`]);
      assert.deepEqual((rec.report.details.check as ProductCheck).identity, { instanceId: INSTANCE, region: 'eu-west-3', signer: 'CN=imprint test region, O=imprint tests', attached: true });
    });

    it('billingProducts count as well as marketplaceProductCodes', async () => {
      const billing = identityDocumentText({ instanceId: INSTANCE, marketplaceProductCodes: null, billingProducts: [CODE] });
      const { error } = await runTask(context(idConfig('fail'), metadata({ identityDocument: await signed(billing) })));
      assert.equal(error, null);
    });

    it('warn: a forged PKCS#7 with its own embedded signer is a mismatch with the reason, exit 0', async () => {
      const { lines, error } = await runTask(context(idConfig('warn'), metadata({ identityDocument: await signed(document, { signer: 'attacker', embed: true }) })));
      assert.equal(error, null);
      assert.deepEqual(lines, [`imprint: product-codes: warning: product codes do not match: expected ${CODE}; found none: identity document: the PKCS#7 is signed by a certificate it carries itself, not by the pinned certificate`]);
    });

    it('fail: a tampered document fails the task', async () => {
      const sign = await signed(document, { attached: false });
      const tampered = async () => ({ ...(await sign()), document: document.replace('eu-west-3', 'us-east-1') });
      const { lines, error } = await runTask(context(idConfig('fail'), metadata({ identityDocument: tampered })));
      assert.ok(error instanceof ImprintError);
      assert.match(lines[0] as string, /found none: identity document: the signed messageDigest does not match the document/);
    });

    it('fail: a genuine document for another instance (replayed) is a mismatch', async () => {
      const replayed = identityDocumentText({ instanceId: 'i-0fffffffffffffff0', marketplaceProductCodes: [CODE] });
      const { lines, error } = await runTask(context(idConfig('fail'), metadata({ identityDocument: await signed(replayed) })));
      assert.ok(error instanceof ImprintError);
      assert.match(lines[0] as string, /is for instance i-0fffffffffffffff0, not this instance i-0123456789abcdef0$/);
    });

    it('stop-units: a document without the code records the units, runs no systemctl under --root, and fails', async () => {
      const without = identityDocumentText({ instanceId: INSTANCE, marketplaceProductCodes: null });
      const { lines, error, rec } = await runTask(context(idConfig('stop-units', { units: '[app.service]' }), metadata({ identityDocument: await signed(without) })));
      assert.ok(error instanceof ImprintError);
      assert.match(error.message, /stop-units\): would stop app\.service$/);
      assert.match(lines[0] as string, /found none \(identity document of eu-west-3, signed by CN=imprint test region, O=imprint tests\): missing /);
      assert.match(lines[1] as string, /systemctl not run; would stop app\.service$/);
      assert.deepEqual((rec.report.details.units as UnitStop[]).map((u) => u.outcome), ['not-run']);
    });

    it('no identity document, a source without one, a missing or symlinked pinned certificate: mismatches with reasons', async () => {
      const cases: [string, InstanceMetadata, (() => Promise<void>) | null][] = [
        ['no identity document', metadata({ identityDocument: async () => null }), null],
        ['the config-drive metadata source has no signed identity document', metadata({ source: 'config-drive' }), null],
        ['could not read the identity document: metadata service gave up', metadata({ identityDocument: async () => { throw new Error('metadata service gave up'); } }), null],
        [`the pinned certificate ${PEM_PATH} does not exist`, metadata({ identityDocument: await signed(document) }), async () => {
          await removeScratchFile(root, PEM_PATH);
        }],
        [`cannot read the pinned certificate ${PEM_PATH}: refusing ${PEM_PATH}: it is a symlink`, metadata({ identityDocument: await signed(document) }), async () => {
          await removeScratchFile(root, PEM_PATH);
          await symlink('/etc/ssl/certs/ca-certificates.crt', path.join(root, PEM_PATH.slice(1)));
        }],
      ];
      // In this order: the last two take the pinned certificate away.
      for (const [reason, md, prepare] of cases) {
        await prepare?.();
        const { lines, error } = await runTask(context(idConfig('warn'), md));
        assert.equal(error, null);
        assert.equal(lines.length, 1);
        assert.ok((lines[0] as string).includes(`; found none: ${reason}`), lines[0]);
      }
    });
  });
});

async function removeScratchFile(root: string, inTree: string): Promise<void> {
  await rm(path.join(root, inTree.slice(1)), { force: true });
}

describe('checkProductCodes (what `imprint verify-product` will call)', () => {
  const base = parseConfig(configYaml({}), 'x.yaml').productCodes;

  it('reports expected, found and missing without side effects', async () => {
    const check = await checkProductCodes(base, metadata({ productCodes: [' other ', '', 'other'] }), async () => null);
    assert.deepEqual(check, { ok: false, source: 'metadata', expected: [CODE], found: ['other'], missing: [CODE], reason: `missing ${CODE}` });
  });

  it('an empty expectation is vacuously met, and still says what was found', async () => {
    const check = await checkProductCodes({ ...base, expected: [] }, metadata({ productCodes: ['x'] }), async () => null);
    assert.equal(check.ok, true);
    assert.deepEqual(check.found, ['x']);
    assert.equal(check.reason, null);
  });
});

describe('stopUnits (agent/os/systemd-units.ts)', () => {
  const spy = () => {
    const calls: { program: string; args: readonly string[] }[] = [];
    const runner = async (program: string, args: readonly string[], _opts?: RunOptions) => {
      calls.push({ program, args });
      if (args.includes('broken.service')) throw new ImprintError('systemctl failed: Unit broken.service not loaded.', 'command');
      return { code: 0, stdout: '', stderr: '' };
    };
    return { calls, runner };
  };

  it('on an offline tree runs nothing and says what it would stop', async () => {
    const { calls, runner } = spy();
    const results = await stopUnits(new RootTree('/tmp/some-image'), ['app.service'], runner);
    assert.deepEqual(calls, []);
    assert.equal(results[0]?.outcome, 'not-run');
    assert.match(results[0]?.detail ?? '', /systemctl not run/);
  });

  it('on a live system stops each unit with an argument array, and reports failures per unit', async () => {
    const { calls, runner } = spy();
    const results = await stopUnits(new RootTree('/'), ['app.service', 'broken.service', 'x@y.socket'], runner);
    assert.deepEqual(calls.map((c) => [c.program, ...c.args]), [
      ['systemctl', 'stop', '--no-ask-password', '--', 'app.service'],
      ['systemctl', 'stop', '--no-ask-password', '--', 'broken.service'],
      ['systemctl', 'stop', '--no-ask-password', '--', 'x@y.socket'],
    ]);
    assert.deepEqual(results.map((r) => r.outcome), ['stopped', 'failed', 'stopped']);
    assert.match(results[1]?.detail ?? '', /not loaded/);
  });

  it('refuses names that are not unit names before running anything', async () => {
    const { calls, runner } = spy();
    for (const bad of ['-H.service', 'app', 'a b.service', 'app.service\n', '../x.service']) {
      await assert.rejects(stopUnits(new RootTree('/'), ['ok.service', bad], runner), /is not a systemd unit name/);
    }
    assert.deepEqual(calls, []);
  });
});
