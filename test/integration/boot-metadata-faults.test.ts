import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { KEY_CONCURRENCY, MAX_LAUNCH_KEYS } from '../../agent/metadata/ec2.js';
import { ed25519Line } from '../../agent/metadata/emulator/keys.js';
import { parseScenario, startEmulator, type RunningEmulator } from '../../agent/metadata/emulator.js';
import { imprint } from '../support/cli.js';
import { DEMO_USER, FAST_KEYS_CONFIG, removeScratch, scratchImage, writeConfig } from '../support/tree.js';

// `imprint boot --root` against hostile or odd metadata services on 127.0.0.1 (issue 8.5,
// issue 10.4): what the user sees is which keys end up in authorized_keys and what the report
// says; the emulator's request log and connection count show how the service was asked.

interface Report {
  metadata: { protocol: string; rejected: string[]; error: string | null } | null;
  tasks: { task: string; status: string }[];
}

describe('imprint boot --root with a hostile metadata service', function () {
  let root: string;
  let emulator: RunningEmulator | null = null;
  const launchKey = ed25519Line('launch@laptop');
  const secondKey = ed25519Line('second@laptop');

  beforeEach(async () => {
    root = await scratchImage();
    await writeConfig(root, `${FAST_KEYS_CONFIG}default_user:\n  name: ${DEMO_USER}\n`);
  });
  afterEach(async () => {
    await emulator?.close();
    emulator = null;
    await removeScratch(root);
  });

  async function boot(keys: string[], scenarios: string[], ...extra: string[]): Promise<{ code: number; report: Report; output: string }> {
    emulator = await startEmulator({ instanceId: 'i-0fa0fa0fa0fa0fa01', keys, scenarios: scenarios.map(parseScenario) });
    const run = await imprint(['boot', '--root', root, '--metadata-url', emulator.url, '--json', ...extra]);
    return { code: run.code, report: JSON.parse(run.stdout) as Report, output: run.stdout + run.stderr };
  }

  const authorizedKeys = (): Promise<string> => readFile(path.join(root, `home/${DEMO_USER}/.ssh/authorized_keys`), 'utf8');
  const keyLines = (text: string): string[] => text.split('\n').filter((l) => l.startsWith('ssh-'));

  it('a listing of thousands of keys: a few connections, the first keys written, the cap said', async () => {
    const { code, report, output } = await boot([launchKey], ['many-keys=2000'], '--metadata-deadline', '60s');
    assert.equal(code, 0, output);
    const lines = keyLines(await authorizedKeys());
    assert.equal(lines.length, MAX_LAUNCH_KEYS);
    assert.ok(lines.includes(launchKey));
    assert.match(output, new RegExp(`capped: 2001 keys listed, only the first ${MAX_LAUNCH_KEYS} read`));
    assert.ok(report.metadata?.rejected.some((r) => r.includes('capped')));
    const { connections, peakInFlight } = (emulator as RunningEmulator).stats();
    assert.ok(connections <= KEY_CONCURRENCY && peakInFlight <= KEY_CONCURRENCY, `${connections} connections, ${peakInFlight} requests at once`);
  });

  it('one key that never answers: the other keys are written and the slow one is named', async () => {
    const { code, report, output } = await boot([launchKey, secondKey], ['slow-key=600000'], '--metadata-deadline', '3s');
    assert.equal(code, 0, output);
    assert.equal(report.tasks.find((t) => t.task === 'authorized-keys')?.status, 'done');
    assert.deepEqual(keyLines(await authorizedKeys()), [secondKey]);
    assert.ok(report.metadata?.rejected.some((r) => r.startsWith('/latest/meta-data/public-keys/0/openssh-key')), JSON.stringify(report.metadata));
  });

  it('an IMDSv2-only service that does not echo the TTL header: the launch key is written over IMDSv2', async () => {
    const { code, report, output } = await boot([launchKey], ['imdsv2-only', 'token-no-ttl']);
    assert.equal(code, 0, output);
    assert.equal(report.metadata?.protocol, 'IMDSv2');
    assert.ok((await authorizedKeys()).includes(launchKey));
  });

  it('a malformed token with a TTL header: no IMDSv1 request, a clear failure, the local phase done', async () => {
    const { code, report } = await boot([launchKey], ['malformed-token']);
    assert.equal(code, 1);
    assert.match(report.metadata?.error ?? '', /not a token; not falling back to IMDSv1/);
    assert.ok((emulator as RunningEmulator).requests.every((r) => r.method === 'PUT'), 'nothing was read without a token');
    assert.equal(report.tasks.find((t) => t.task === 'host-keys')?.status, 'done');
  });
});

describe('imprint boot --root: the tree\'s config never points imprint at a network service', function () {
  let root: string;
  let emulator: RunningEmulator | null = null;

  beforeEach(async () => {
    root = await scratchImage();
  });
  afterEach(async () => {
    await emulator?.close();
    emulator = null;
    await removeScratch(root);
  });

  it('sets metadata.url from the tree aside, in every spelling of the metadata address, and says so', async () => {
    for (const url of ['http://169.254.169.254:80', 'http://[fd00:ec2::254]', 'http://0xa9fea9fe', 'http://2852039166', 'http://169.254.169.254.', 'http://[::ffff:169.254.169.254]', 'http://127.0.0.1:9']) {
      await writeConfig(root, `${FAST_KEYS_CONFIG}metadata:\n  url: ${url}\n`);
      const run = await imprint(['boot', '--root', root, '--json']);
      const output = run.stdout + run.stderr;
      assert.equal(run.code, 0, `${url}: ${output}`);
      assert.match(run.stderr, /metadata: warning: metadata\.url .* from the config is not used with --root/, url);
      assert.match(run.stderr, /ec2: skipped for an offline tree/, url);
      // The guard never had to act: nothing tried to connect.
      assert.doesNotMatch(output, /refusing to contact/, url);
    }
  });

  it('uses the command line\'s --metadata-url whatever the tree\'s config names', async () => {
    const launchKey = ed25519Line('launch@laptop');
    emulator = await startEmulator({ instanceId: 'i-0fa0fa0fa0fa0fa02', keys: [launchKey] });
    await writeConfig(root, `${FAST_KEYS_CONFIG}default_user:\n  name: ${DEMO_USER}\nmetadata:\n  url: http://[fd00:ec2::254]\n`);
    const run = await imprint(['boot', '--root', root, '--metadata-url', emulator.url, '--json']);
    assert.equal(run.code, 0, run.stderr);
    assert.ok((await readFile(path.join(root, `home/${DEMO_USER}/.ssh/authorized_keys`), 'utf8')).includes(launchKey));
    assert.ok(emulator.requests.length > 0);
  });
});
