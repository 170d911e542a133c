import assert from 'node:assert/strict';
import { createServer, request, type Server } from 'node:http';
import { readFile, stat } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { ed25519Line } from '../../agent/metadata/emulator/keys.js';
import { startEmulator, type RunningEmulator } from '../../agent/metadata/emulator.js';
import { validateSchema } from '../support/audit-formats.js';
import { imprint } from '../support/cli.js';
import { DEMO_USER, FAST_KEYS_CONFIG, removeScratch, scratchImage, writeConfig } from '../support/tree.js';

// The report every boot saves (/run/imprint/report.json, /var/lib/imprint/last-boot.json):
// written by the bundled CLI on a scratch tree, checked against the published schema, and
// searched for the secrets the boot handled.

export const BOOT_SCHEMA = JSON.parse(await readFile(new URL('../../packaging/schema/boot-report.schema.json', import.meta.url), 'utf8')) as Record<string, never>;

const RUN_REPORT = 'run/imprint/report.json';
const LAST_BOOT = 'var/lib/imprint/last-boot.json';

interface Saved {
  formatVersion: number;
  status: string;
  pid: number;
  startedAt: string;
  finishedAt?: string;
  error?: string;
  metadata: { source: string; instanceId: string; protocol: string; error: string | null } | null;
  tasks: { task: string; status: string; error?: string; details: Record<string, unknown> }[];
}

/**
 * A loopback proxy in front of the emulator that keeps the IMDSv2 tokens it passes on: the
 * emulator logs requests but never token values, and the test must know the token to show
 * it is absent from the report.
 */
async function tokenRecordingProxy(target: string): Promise<{ url: string; tokens: string[]; close(): Promise<void> }> {
  const tokens: string[] = [];
  const server: Server = createServer((req, res) => {
    const upstream = request(`${target}${req.url ?? '/'}`, { method: req.method, headers: req.headers }, (answer) => {
      const chunks: Buffer[] = [];
      answer.on('data', (c: Buffer) => chunks.push(c));
      answer.on('end', () => {
        const body = Buffer.concat(chunks);
        if (req.method === 'PUT' && req.url === '/latest/api/token' && answer.statusCode === 200) tokens.push(body.toString('utf8'));
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        res.end(body);
      });
    });
    upstream.on('error', () => res.destroy());
    req.pipe(upstream);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return { url: `http://127.0.0.1:${port}`, tokens, close: () => new Promise((resolve) => { server.closeAllConnections(); server.close(() => resolve()); }) };
}

describe('the saved boot report', function () {
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

  const readSaved = async (inTree: string): Promise<{ text: string; report: Saved }> => {
    const text = await readFile(path.join(root, inTree), 'utf8');
    return { text, report: JSON.parse(text) as Saved };
  };

  it('is written to /run/imprint and /var/lib/imprint, validates against the schema, and holds no token, hash or private key', async () => {
    emulator = await startEmulator({ instanceId: 'i-0aaaaaaaaaaaaaaa1', keys: [launchKey] });
    const proxy = await tokenRecordingProxy(emulator.url);
    try {
      const run = await imprint(['boot', '--root', root, '--metadata-url', proxy.url]);
      assert.equal(run.code, 0, run.stderr);
    } finally {
      await proxy.close();
    }
    assert.ok(proxy.tokens.length > 0, 'imprint used IMDSv2, so a token was issued');
    const { text, report } = await readSaved(RUN_REPORT);
    assert.deepEqual(validateSchema(BOOT_SCHEMA, report), []);
    assert.equal(report.formatVersion, 1);
    assert.equal(report.status, 'ok');
    assert.equal(report.metadata?.instanceId, 'i-0aaaaaaaaaaaaaaa1');
    assert.equal(report.metadata?.protocol, 'IMDSv2');
    assert.deepEqual(report.tasks.map((t) => [t.task, t.status]).filter(([, s]) => s !== 'done' && s !== 'skipped'), []);
    assert.ok(Date.parse(report.finishedAt as string) >= Date.parse(report.startedAt));
    assert.equal((await readSaved(LAST_BOOT)).text, text, 'the kept copy is the same report');
    assert.equal((await stat(path.join(root, RUN_REPORT))).mode & 0o777, 0o644);
    assert.equal((await stat(path.join(root, 'var'))).mode & 0o777, 0o755, 'a /var the tree lacked is made 0755, not the state dir\'s 0700');

    for (const token of proxy.tokens) assert.ok(!text.includes(token), 'the IMDS token is in the report');
    // The random passwords are never known outside imprint; their hashes are in the tree's shadow.
    const hashes = (await readFile(path.join(root, 'etc/shadow'), 'utf8')).split('\n').map((l) => (l.split(':')[1] ?? '').replace(/^!+/, '')).filter((h) => h.startsWith('$'));
    assert.ok(hashes.length >= 2, 'the boot set password hashes');
    for (const hash of hashes) assert.ok(!text.includes(hash), 'a password hash is in the report');
    assert.doesNotMatch(text, /\$(1|5|6|y|2[aby])\$[^"\s]{8,}/, 'something shaped like a crypt hash');
    assert.doesNotMatch(text, /PRIVATE KEY/);
  });

  it('after a failed boot, names the failed tasks and why', async () => {
    const run = await imprint(['boot', '--root', root, '--metadata-url', 'http://127.0.0.1:9', '--metadata-deadline', '1s']);
    assert.equal(run.code, 1);
    const { report } = await readSaved(LAST_BOOT);
    assert.deepEqual(validateSchema(BOOT_SCHEMA, report), []);
    assert.equal(report.status, 'failed');
    const failed = report.tasks.find((t) => t.task === 'authorized-keys');
    assert.equal(failed?.status, 'failed');
    assert.match(report.metadata?.error ?? '', /no usable answer within 1 s/);
  });

  it('says "running" while the boot runs: a boot killed at its first step after the report leaves that form, valid', async () => {
    // Crash points 1 and 2 are the report's own rename: killed at 2, the running form is in place.
    const run = await imprint(['boot', '--root', root], { IMPRINT_TEST_CRASH_AT: '2' });
    assert.equal(run.signal, 'SIGKILL');
    const { report } = await readSaved(RUN_REPORT);
    assert.equal(report.status, 'running');
    assert.deepEqual(validateSchema(BOOT_SCHEMA, report), []);
    await assert.rejects(stat(path.join(root, LAST_BOOT)), 'no finished boot yet');
  });

  it('is not written by --dry-run', async () => {
    const run = await imprint(['boot', '--root', root, '--dry-run']);
    assert.equal(run.code, 0, run.stderr);
    await assert.rejects(stat(path.join(root, RUN_REPORT)));
    await assert.rejects(stat(path.join(root, LAST_BOOT)));
  });

  it('the schema refuses what a report must not hold', async () => {
    await imprint(['boot', '--root', root]);
    const { report } = await readSaved(RUN_REPORT);
    const broken: [string, (r: Record<string, unknown>) => void][] = [
      ['an unknown top-level field', (r) => { r.password = 'x'; }],
      ['a task without its status', (r) => { delete (r.tasks as Record<string, unknown>[])[0]?.status; }],
      ['another format version', (r) => { r.formatVersion = 2; }],
      ['a dry run', (r) => { r.dryRun = true; }],
    ];
    for (const [what, change] of broken) {
      const copy = JSON.parse(JSON.stringify(report)) as Record<string, unknown>;
      change(copy);
      assert.notDeepEqual(validateSchema(BOOT_SCHEMA, copy), [], what);
    }
    const open = JSON.parse(JSON.stringify(report)) as Saved;
    (open.tasks[0] as Saved['tasks'][number]).details.addedByAnotherTask = { any: ['shape'] };
    assert.deepEqual(validateSchema(BOOT_SCHEMA, open), [], 'details stay open to new facts');
  });
});
