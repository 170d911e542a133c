import assert from 'node:assert/strict';
import { readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { ed25519Line } from '../../agent/metadata/emulator/keys.js';
import { startEmulator, type RunningEmulator } from '../../agent/metadata/emulator.js';
import { hostKeyPairs, shadowLines } from '../support/checks.js';
import { imprint } from '../support/cli.js';
import { DEMO_USER, FAST_KEYS_CONFIG, removeScratch, scratchImage, writeConfig } from '../support/tree.js';

// Issue 10.5: the metadata instance-id is the instance's identity whenever a source answers;
// the local hint (machine-id with --root) is only the early guess and the offline fallback.
// `imprint boot --root` twice against `imprint emulate` on 127.0.0.1.

interface Report { tasks: { task: string; status: string }[] }

describe('imprint boot --root: the instance is who the metadata service says it is', function () {
  let root: string;
  let emulator: RunningEmulator | null = null;
  const launchKey = ed25519Line('launch@laptop');

  beforeEach(async () => {
    root = await scratchImage();
    await writeConfig(root, `${FAST_KEYS_CONFIG}default_user:\n  name: ${DEMO_USER}\n`);
  });
  afterEach(async () => {
    await emulator?.close();
    emulator = null;
    await removeScratch(root);
  });

  async function boot(instanceId: string): Promise<{ code: number; report: Report; stderr: string }> {
    await emulator?.close();
    emulator = await startEmulator({ instanceId, keys: [launchKey] });
    const run = await imprint(['boot', '--root', root, '--metadata-url', emulator.url, '--json']);
    return { code: run.code, report: JSON.parse(run.stdout) as Report, stderr: run.stderr };
  }
  const machineId = (text: string): Promise<void> => writeFile(path.join(root, 'etc/machine-id'), text);
  const fingerprints = async (): Promise<string[]> => (await hostKeyPairs(root)).map((k) => k.fingerprint).sort();
  const status = (r: Report, task: string): string | undefined => r.tasks.find((t) => t.task === task)?.status;

  it('an empty machine-id: state is kept under the instance-id, and the second boot does no host-key work', async () => {
    await machineId('');
    const first = await boot('i-0a1d0a1d0a1d0a1d1');
    assert.equal(first.code, 0, first.stderr);
    assert.match(first.stderr, /instance: warning: no local identity \(empty \/etc\/machine-id\)/);
    assert.doesNotMatch(first.stderr, /no machine-id/);
    const state = JSON.parse(await readFile(path.join(root, 'var/lib/imprint/state.json'), 'utf8')) as { instanceId: string; completed: Record<string, string> };
    assert.equal(state.instanceId, 'i-0a1d0a1d0a1d0a1d1');
    assert.ok(state.completed['host-keys'], 'the local work done before the service answered is remembered too');
    const keys = await fingerprints();
    const shadow = await shadowLines(root);

    const second = await boot('i-0a1d0a1d0a1d0a1d1');
    assert.equal(second.code, 0, second.stderr);
    assert.match(second.stderr, /metadata confirms i-0a1d0a1d0a1d0a1d1: same instance/);
    assert.equal(status(second.report, 'host-keys'), 'unchanged');
    assert.equal(status(second.report, 'passwords'), 'unchanged');
    assert.deepEqual(await fingerprints(), keys);
    assert.deepEqual(await shadowLines(root), shadow);
  });

  it('a changed machine-id with the same instance-id is the same instance: nothing is provisioned again', async () => {
    await machineId('0123456789abcdef0123456789abcdef\n');
    assert.equal((await boot('i-0a1d0a1d0a1d0a1d2')).code, 0);
    const keys = await fingerprints();
    await machineId('fedcba9876543210fedcba9876543210\n');
    const again = await boot('i-0a1d0a1d0a1d0a1d2');
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.stderr, /fedcba9876543210fedcba9876543210 \(machine-id\), was 0123456789abcdef0123456789abcdef: asking the metadata service/);
    assert.ok(again.report.tasks.every((t) => ['unchanged', 'skipped'].includes(t.status)), JSON.stringify(again.report.tasks));
    assert.deepEqual(await fingerprints(), keys);
    // The new hint is remembered: the next boot's early guess is right again.
    const third = await boot('i-0a1d0a1d0a1d0a1d2');
    assert.match(third.stderr, /fedcba9876543210fedcba9876543210 \(machine-id\): already provisioned as i-0a1d0a1d0a1d0a1d2/);
  });

  it('another instance-id is another instance, whatever the machine-id says (empty, changed or the same)', async function () {
    this.timeout(240_000);
    for (const [n, change] of [['empty', () => machineId('')], ['changed', () => machineId('fedcba9876543210fedcba9876543210\n')], ['same', async () => undefined]] as const) {
      await machineId('0123456789abcdef0123456789abcdef\n');
      await rm(path.join(root, 'var/lib/imprint/state.json'), { force: true });
      assert.equal((await boot(`i-0b0b0b0b0b0b0b0b${n.length}`)).code, 0);
      const keys = await fingerprints();
      await change();
      const other = await boot('i-0c0c0c0c0c0c0c0c3');
      assert.equal(other.code, 0, other.stderr);
      assert.equal(status(other.report, 'host-keys'), 'done', n);
      assert.ok((await fingerprints()).every((fp) => !keys.includes(fp)), `${n}: host keys regenerated`);
    }
  });

  it('says "no machine-id" only when there is none; an empty, uninitialized or malformed one is named as such', async () => {
    const cases: [string, () => Promise<void>, RegExp][] = [
      ['missing', () => rm(path.join(root, 'etc/machine-id'), { force: true }), /no local identity \(no machine-id\)/],
      ['empty', () => machineId('\n'), /no local identity \(empty \/etc\/machine-id\)/],
      ['uninitialized', () => machineId('uninitialized\n'), /no local identity \(\/etc\/machine-id not initialized yet/],
      ['malformed', () => machineId('not-a-machine-id\n'), /no local identity \(malformed \/etc\/machine-id "not-a-machine-id"\)/],
    ];
    for (const [why, change, said] of cases) {
      await change();
      const run = await imprint(['boot', '--root', root, '--dry-run']);
      assert.equal(run.code, 0, run.stderr);
      assert.match(run.stdout + run.stderr, said, why);
    }
  });
});
