import assert from 'node:assert/strict';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { ed25519Line } from '../../agent/metadata/emulator/keys.js';
import { parseScenario, startEmulator, type RunningEmulator } from '../../agent/metadata/emulator.js';
import { imprint } from '../support/cli.js';
import { hostKeyPairs, shadowStates } from '../support/checks.js';
import { DEMO_USER, FAST_KEYS_CONFIG, removeScratch, scratchImage, treeDigest, writeConfig } from '../support/tree.js';

// Both phases of `imprint boot --root` against `imprint emulate` on 127.0.0.1.

const USER_CONFIG = `${FAST_KEYS_CONFIG}default_user:\n  name: ${DEMO_USER}\n`;

interface Report {
  status: string;
  metadata: { source: string; instanceId: string; protocol: string; rejected: string[]; error: string | null } | null;
  tasks: { task: string; status: string; warnings: string[]; actions: string[]; error?: string; details: Record<string, unknown> }[];
}

describe('imprint boot --root with a metadata service', function () {
  let root: string;
  let emulator: RunningEmulator | null = null;
  const launchKey = ed25519Line('launch@laptop');

  beforeEach(async () => {
    root = await scratchImage();
    await writeConfig(root, USER_CONFIG);
  });
  afterEach(async () => {
    await emulator?.close();
    emulator = null;
    await removeScratch(root);
  });

  async function emulate(instanceId: string, keys: string[] = [launchKey], scenarios: string[] = [], productCodes: string[] = []): Promise<string> {
    await emulator?.close();
    emulator = await startEmulator({ instanceId, keys, scenarios: scenarios.map(parseScenario), productCodes });
    return emulator.url;
  }

  async function boot(url: string, ...extra: string[]): Promise<{ code: number; report: Report; stdout: string; stderr: string }> {
    const run = await imprint(['boot', '--root', root, '--metadata-url', url, '--json', ...extra]);
    return { code: run.code, report: JSON.parse(run.stdout) as Report, stdout: run.stdout, stderr: run.stderr };
  }

  const authorizedKeys = (user = DEMO_USER): Promise<string> => readFile(path.join(root, user === 'root' ? 'root' : `home/${user}`, '.ssh/authorized_keys'), 'utf8');

  it('puts the launch key into the default user\'s authorized_keys, over IMDSv2, and keys the state by the instance-id', async () => {
    const url = await emulate('i-0aaaaaaaaaaaaaaa1');
    const { code, report } = await boot(url);
    assert.equal(code, 0, JSON.stringify(report.tasks.filter((t) => t.status === 'failed')));
    assert.equal(report.metadata?.source, 'ec2');
    assert.equal(report.metadata?.protocol, 'IMDSv2');
    assert.equal(report.metadata?.instanceId, 'i-0aaaaaaaaaaaaaaa1');
    assert.equal(report.tasks.find((t) => t.task === 'authorized-keys')?.status, 'done');
    const text = await authorizedKeys();
    assert.ok(text.includes(launchKey), text);
    assert.match(text, /# imprint: .*i-0aaaaaaaaaaaaaaa1/);
    const state = JSON.parse(await readFile(path.join(root, 'var/lib/imprint/state.json'), 'utf8')) as { instanceId: string };
    assert.equal(state.instanceId, 'i-0aaaaaaaaaaaaaaa1');
  });

  it('changes nothing when booted again as the same instance', async () => {
    const url = await emulate('i-0aaaaaaaaaaaaaaa1');
    assert.equal((await boot(url)).code, 0);
    const digest = await treeDigest(root, { besidesReports: true });
    const again = await boot(url);
    assert.equal(again.code, 0);
    assert.ok(again.report.tasks.every((t) => ['unchanged', 'skipped'].includes(t.status)), JSON.stringify(again.report.tasks.map((t) => [t.task, t.status])));
    assert.equal(await treeDigest(root, { besidesReports: true }), digest);
  });

  it('redoes everything for a clone that kept the machine-id but is another instance, and replaces the old launch key', async () => {
    assert.equal((await boot(await emulate('i-0aaaaaaaaaaaaaaa1'))).code, 0);
    const firstKeys = (await hostKeyPairs(root)).map((k) => k.fingerprint);
    const cloneKey = ed25519Line('clone@laptop');
    const { code, report, stdout, stderr } = await boot(await emulate('i-0bbbbbbbbbbbbbbb2', [cloneKey]));
    assert.equal(code, 0, stderr);
    assert.match(stderr + stdout, /metadata says i-0bbbbbbbbbbbbbbb2, the state was for i-0aaaaaaaaaaaaaaa1: new instance/);
    assert.ok((await hostKeyPairs(root)).every((k) => !firstKeys.includes(k.fingerprint)), 'host keys regenerated');
    assert.equal(report.tasks.find((t) => t.task === 'host-keys')?.status, 'done');
    const text = await authorizedKeys();
    assert.ok(text.includes(cloneKey));
    assert.ok(!text.includes(launchKey), 'the first instance\'s key is gone');
  });

  it('skips invalid keys one by one, naming each, and installs the valid ones', async () => {
    const url = await emulate('i-0ccccccccccccccc3', [launchKey], ['invalid-keys']);
    const { code, report } = await boot(url);
    assert.equal(code, 0);
    const task = report.tasks.find((t) => t.task === 'authorized-keys');
    const complaints = [...(task?.warnings ?? []), ...(report.metadata?.rejected ?? [])].join('\n');
    for (const index of [1, 2, 3, 4, 5, 6, 7, 8]) assert.match(complaints, new RegExp(`public-keys/${index}\\b`), `index ${index} not named`);
    const text = await authorizedKeys();
    assert.ok(text.includes(launchKey));
    // A key whose options widen it is refused (allow_options is off); entries with a line break are refused whole.
    assert.doesNotMatch(text, /command=|\r|invalid-(crlf|lf|newline|bad|truncated|wrong|control|long)/);
    assert.match(complaints, /embedded line break/);
    assert.doesNotMatch(text, / first$/m);
  });

  it('reports no keys as no keys, and writes nothing', async () => {
    const url = await emulate('i-0ddddddddddddddd4', []);
    const { code } = await boot(url);
    assert.equal(code, 0);
    await assert.rejects(authorizedKeys());
  });

  it('fails clearly when the metadata service never answers, within the deadline, with the local phase done', async () => {
    // Every connection is dropped unanswered. What the boot does, not how long it takes on a
    // loaded machine: it kept asking (more than one request, each a token PUT or a metadata
    // GET, none answered), then gave up on the deadline it was given and said so.
    const url = await emulate('i-0fffffffffffffff9', [launchKey], ['unreachable-after=0']);
    const { code, report, stderr } = await boot(url, '--metadata-deadline', '2s');
    assert.equal(code, 1);
    const asked = emulator?.requests ?? [];
    assert.ok(asked.length >= 2, `${asked.length} request(s): the client did not retry`);
    assert.ok(asked.every((r) => r.status === 'closed' && ((r.method === 'PUT' && r.path === '/latest/api/token') || (r.method === 'GET' && r.path.startsWith('/latest/')))), JSON.stringify(asked));
    assert.match(report.metadata?.error ?? '', /gave no usable answer within 2 s/);
    assert.doesNotMatch(`${report.metadata?.error ?? ''}\n${stderr}`, /UND_ERR|ECONNRESET|undici/, 'library internals in an operator message');
    assert.equal(report.tasks.find((t) => t.task === 'authorized-keys')?.status, 'failed');
    assert.equal(report.tasks.find((t) => t.task === 'host-keys')?.status, 'done');
    assert.equal((await shadowStates(root)).get('root'), 'locked');
  });

  it('stops at once when metadata is disabled (403)', async () => {
    const url = await emulate('i-0eeeeeeeeeeeeeee5', [launchKey], ['disabled']);
    const { code, report } = await boot(url);
    assert.equal(code, 1);
    assert.match(report.metadata?.error ?? '', /403: it is disabled/);
  });

  it('on a later boot with the service down, keeps what an earlier boot put in place and says so', async () => {
    assert.equal((await boot(await emulate('i-0aaaaaaaaaaaaaaa1'))).code, 0);
    await emulator?.close();
    emulator = null;
    const { code, stdout, stderr } = await boot('http://127.0.0.1:9', '--metadata-deadline', '1s');
    assert.equal(code, 0);
    assert.match(stdout + stderr, /this instance was provisioned before, keeping what is in place/);
    assert.ok((await authorizedKeys()).includes(launchKey));
  });

  it('reads a NoCloud seed in the tree without any metadata URL', async () => {
    await mkdir(path.join(root, 'var/lib/cloud/seed/nocloud'), { recursive: true });
    await writeFile(path.join(root, 'var/lib/cloud/seed/nocloud/meta-data'), `instance-id: iid-lab-42\npublic-keys:\n  - "${launchKey}"\n`);
    const run = await imprint(['boot', '--root', root, '--json']);
    assert.equal(run.code, 0, run.stderr);
    assert.equal((JSON.parse(run.stdout) as Report).metadata?.source, 'nocloud');
    assert.ok((await authorizedKeys()).includes(launchKey));
  });

  it('checks product codes: a match passes, a mismatch with on_mismatch: fail exits 1 and says what it expected', async () => {
    await writeConfig(root, `${USER_CONFIG}product_codes:\n  expected: [prod-abc]\n  on_mismatch: fail\n`);
    const good = await boot(await emulate('i-0fffffffffffffff6', [launchKey], [], ['prod-abc']));
    assert.equal(good.code, 0);
    const mismatch = await imprint(['verify-product', '--root', root, '--metadata-url', await emulate('i-0fffffffffffffff6', [launchKey], [], ['other'])]);
    assert.equal(mismatch.code, 1);
    assert.match(mismatch.stdout, /product codes do not match: expected prod-abc; found other/);
    const ok = await imprint(['verify-product', '--root', root, '--metadata-url', await emulate('i-0fffffffffffffff6', [launchKey], [], ['prod-abc'])]);
    assert.equal(ok.code, 0);
    assert.match(ok.stdout, /product codes match/);
    await writeFile(path.join(root, 'var/lib/imprint/state.json'), '');
    const failed = await boot(await emulate('i-0fffffffffffffff6', [launchKey], [], []));
    assert.equal(failed.code, 1);
    assert.match(failed.stderr, /product codes do not match: expected prod-abc; found none/);
  });

  it('never prints the IMDSv2 token, even with --verbose', async () => {
    const url = await emulate('i-0aaaaaaaaaaaaaaa1');
    const run = await imprint(['boot', '--root', root, '--metadata-url', url, '--verbose']);
    assert.equal(run.code, 0);
    assert.match(run.stdout, /PUT \/latest\/api\/token 200/);
    // The token is 32+ base64url characters; nothing of that shape may appear but fingerprints
    // and the public host keys of the console's SSH HOST KEY KEYS block.
    const suspicious = (run.stdout + run.stderr).split('\n').filter((l) => /[A-Za-z0-9_-]{40,}/.test(l) && !/SHA256:|ssh-ed25519 |^(ecdsa-sha2-nistp256|ssh-rsa) AAAA[A-Za-z0-9+/]+=*$/.test(l));
    assert.deepEqual(suspicious, []);
  });
});
