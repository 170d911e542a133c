import assert from 'node:assert/strict';
import { mkdir, readFile, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { ed25519Line } from '../../agent/metadata/emulator/keys.js';
import { parseScenario, startEmulator, type RunningEmulator } from '../../agent/metadata/emulator.js';
import { validateSchema } from '../support/audit-formats.js';
import { imprint, type CliRun } from '../support/cli.js';
import { DEMO_USER, FAST_KEYS_CONFIG, removeScratch, scratchImage, writeConfig } from '../support/tree.js';

// `imprint status --root` after the boots an operator meets: none yet, a good one, a failed
// one, a killed one, one that stood aside; and --wait started before the boot it waits for.

const STATUS_SCHEMA = JSON.parse(await readFile(new URL('../../packaging/schema/status.schema.json', import.meta.url), 'utf8')) as Record<string, never>;
const BOOT_SCHEMA = JSON.parse(await readFile(new URL('../../packaging/schema/boot-report.schema.json', import.meta.url), 'utf8')) as Record<string, never>;

interface StatusJson {
  state: string;
  exitCode: number;
  summary: string;
  report: { startedAt: string; status: string; tasks: { task: string; status: string }[] } | null;
  lastBoot: unknown;
}

describe('imprint status', function () {
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

  const status = (...extra: string[]): Promise<CliRun> => imprint(['status', '--root', root, ...extra]);
  async function statusJson(...extra: string[]): Promise<{ run: CliRun; json: StatusJson }> {
    const run = await status('--json', ...extra);
    const json = JSON.parse(run.stdout) as StatusJson;
    assert.deepEqual(validateSchema(STATUS_SCHEMA, json), [], 'status --json validates against its schema');
    if (json.report) assert.deepEqual(validateSchema(BOOT_SCHEMA, json.report), []);
    assert.equal(run.code, json.exitCode);
    return { run, json };
  }
  async function emulate(scenarios: string[] = []): Promise<string> {
    emulator = await startEmulator({ instanceId: 'i-0aaaaaaaaaaaaaaa1', keys: [launchKey], scenarios: scenarios.map(parseScenario) });
    return emulator.url;
  }

  it('before any boot: not-run, exit 3', async () => {
    const run = await status();
    assert.equal(run.code, 3);
    assert.match(run.stdout, /^status: not-run\n {2}not run on this boot\n/);
    assert.equal((await statusJson()).json.state, 'not-run');
  });

  it('after a good boot: done, exit 0; --long lists every task with its outcome, time and actions', async () => {
    assert.equal((await imprint(['boot', '--root', root, '--metadata-url', await emulate()])).code, 0);
    const short = await status();
    assert.equal(short.code, 0, short.stdout);
    assert.match(short.stdout, /^status: done\n/);
    assert.match(short.stdout, /^metadata: ec2 \(IMDSv2\)$/m);
    const long = await status('--long');
    for (const task of ['host-keys', 'passwords', 'sshd-config', 'default-user', 'authorized-keys']) {
      assert.match(long.stdout, new RegExp(`^ {2}${task} +(done|skipped) +\\d+\\.\\d s$`, 'm'), task);
    }
    assert.match(long.stdout, /^ {4}1 launch key for debian into \/home\/debian\/.ssh\/authorized_keys/m, 'the actions are shown');
    const { json } = await statusJson();
    assert.equal(json.state, 'done');
    assert.equal(json.report?.status, 'ok');
  });

  it('after a failed boot: names the failed task and why, says the next boot retries it, exit 1', async () => {
    const boot = await imprint(['boot', '--root', root, '--metadata-url', 'http://127.0.0.1:9', '--metadata-deadline', '1s']);
    assert.equal(boot.code, 1);
    const run = await status('--long');
    assert.equal(run.code, 1);
    assert.match(run.stdout, /^status: failed\n {2}failed: authorized-keys \(no metadata\).*next boot retries/);
    assert.match(run.stdout, /^metadata: none: .*no usable answer within 1 s/m);
    assert.match(run.stdout, /^ {2}authorized-keys +failed/m);
    assert.match(run.stdout, /^more: imprint status --long; journalctl -u imprint/m);
  });

  it('a boot killed while running: interrupted, exit 1', async () => {
    const killed = await imprint(['boot', '--root', root], { IMPRINT_TEST_CRASH_AT: '2' });
    assert.equal(killed.signal, 'SIGKILL');
    const { run, json } = await statusJson();
    assert.equal(json.state, 'interrupted');
    assert.equal(run.code, 1);
    assert.match(json.summary, /ended without finishing its report.*next boot redoes/);
  });

  it('where cloud-init provisions: stood-aside, exit 3, with the reason', async () => {
    await mkdir(path.join(root, 'usr/bin'), { recursive: true });
    await writeFile(path.join(root, 'usr/bin/cloud-init'), '#!/bin/sh\n', { mode: 0o755 });
    await mkdir(path.join(root, 'etc/systemd/system/cloud-init.target.wants'), { recursive: true });
    await symlink('/lib/systemd/system/cloud-init.service', path.join(root, 'etc/systemd/system/cloud-init.target.wants/cloud-init.service'));
    assert.equal((await imprint(['boot', '--root', root])).code, 0);
    const run = await status();
    assert.equal(run.code, 3);
    assert.match(run.stdout, /^status: stood-aside\n {2}cloud-init is installed and enabled/);
  });

  it('--wait started before the boot returns only when the boot has finished, with its outcome', async () => {
    // Started first, it sees no report ("not run"), which it waits through, as it waits
    // through "running" (the emulator answers slowly): what it prints can only be the end.
    const waiting = imprint(['status', '--root', root, '--wait', '--json']);
    const boot = await imprint(['boot', '--root', root, '--metadata-url', await emulate(['slow=300'])]);
    assert.equal(boot.code, 0, boot.stderr);
    const run = await waiting;
    const json = JSON.parse(run.stdout) as StatusJson;
    assert.equal(run.code, 0);
    assert.equal(json.state, 'done');
    const saved = JSON.parse(await readFile(path.join(root, 'var/lib/imprint/last-boot.json'), 'utf8')) as { startedAt: string };
    assert.equal(json.report?.startedAt, saved.startedAt, 'the report of the boot it waited for');
  });

  it('--wait returns at once on a boot that already failed, with exit 1', async () => {
    await imprint(['boot', '--root', root, '--metadata-url', 'http://127.0.0.1:9', '--metadata-deadline', '1s']);
    const run = await status('--wait');
    assert.equal(run.code, 1);
    assert.match(run.stdout, /^status: failed/);
  });

  it('clean forgets the instance: --dry-run lists the files and keeps them; then status says not-run and the next boot provisions again', async () => {
    assert.equal((await imprint(['boot', '--root', root])).code, 0);
    const keysBefore = await readFile(path.join(root, 'etc/ssh/ssh_host_ed25519_key.pub'), 'utf8');
    const dry = await imprint(['clean', '--root', root, '--dry-run']);
    assert.equal(dry.code, 0, dry.stderr);
    for (const f of ['/var/lib/imprint/state.json', '/run/imprint/report.json', '/var/lib/imprint/last-boot.json']) assert.match(dry.stdout, new RegExp(`would remove ${f}`));
    assert.equal((await status()).code, 0, 'the dry run kept the report');
    const clean = await imprint(['clean', '--root', root]);
    assert.equal(clean.code, 0, clean.stderr);
    assert.match(clean.stdout, /removed \/var\/lib\/imprint\/state\.json/);
    const after = await status();
    assert.equal(after.code, 3);
    assert.match(after.stdout, /^status: not-run\n {2}not run on this boot\n/, 'no last boot either');
    const again = await imprint(['boot', '--root', root]);
    assert.equal(again.code, 0, again.stderr);
    assert.doesNotMatch(again.stdout, /already provisioned/);
    assert.notEqual(await readFile(path.join(root, 'etc/ssh/ssh_host_ed25519_key.pub'), 'utf8'), keysBefore, 'new host keys');
    assert.match((await imprint(['clean', '--root', root])).stdout, /removed/);
    assert.match((await imprint(['clean', '--root', root])).stdout, /nothing to forget/);
  });
});
