import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdir, readdir, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { imprint } from '../support/cli.js';
import { hostKeyPairs, shadowStates } from '../support/checks.js';
import { removeScratch, scratchImage, treeDigest } from '../support/tree.js';

// One run at a time per tree: two `imprint boot --root` started together on one tree end with
// exactly one of them doing the work, complete host key pairs and no temp key; a run that
// cannot get the lock within its bound exits 75 and changes nothing; a killed run leaves no
// stale lock (the kernel drops a flock with its holder) and its temp files are swept.

interface Report {
  exitCode: number;
  tasks: { task: string; status: string }[];
}

/** Holds the tree's run lock from outside (the host's flock(1)) until stopped; resolves once held. */
function holdLock(root: string): Promise<ChildProcess> {
  return new Promise((resolve, reject) => {
    const child = spawn('flock', ['--exclusive', root, '/bin/sh', '-c', 'echo held; exec cat'], { stdio: ['pipe', 'pipe', 'inherit'] });
    child.stdout.once('data', () => resolve(child));
    child.once('error', reject);
  });
}

describe('two runs at once on one tree', function () {
  let root: string;

  beforeEach(async () => {
    root = await scratchImage();
  });
  afterEach(async () => {
    await removeScratch(root);
  });

  it('exactly one does the work; both exit with documented codes; key pairs match; no temp key left', async () => {
    const [a, b] = await Promise.all([imprint(['boot', '--root', root, '--json']), imprint(['boot', '--root', root, '--json'])]);
    for (const run of [a, b]) assert.ok([0, 75].includes(run.code), `exit ${run.code}: ${run.stderr}`);
    const reports = [a, b].filter((r) => r.code === 0).map((r) => JSON.parse(r.stdout) as Report);
    const didKeys = reports.filter((r) => r.tasks.find((t) => t.task === 'host-keys')?.status === 'done');
    assert.equal(didKeys.length, 1, `host keys made by ${didKeys.length} runs`);
    const didPasswords = reports.filter((r) => r.tasks.find((t) => t.task === 'passwords')?.status === 'done');
    assert.equal(didPasswords.length, 1, `passwords set by ${didPasswords.length} runs`);
    const second = [a, b].find((r) => `${r.stderr}${r.stdout}`.includes('another imprint run holds the lock on this tree'));
    assert.ok(second, 'the second run says it waits for the first');
    assert.equal((await hostKeyPairs(root)).length, 3, 'complete, matching host key pairs');
    assert.deepEqual((await readdir(path.join(root, 'etc/ssh'))).filter((n) => n.startsWith('.imprint')), []);
    assert.equal((await shadowStates(root)).get('root'), 'locked');
  });

  it('a run that cannot get the lock within its bound exits 75, says why, and changes nothing', async () => {
    const holder = await holdLock(root);
    try {
      const digest = await treeDigest(root);
      const run = await imprint(['boot', '--root', root], { IMPRINT_TEST_LOCK_WAIT_MS: '300' });
      assert.equal(run.code, 75, run.stderr);
      assert.match(run.stderr, /another imprint run still holds the lock on this tree \(.*\) after 0\.3 s; nothing was changed/);
      assert.equal(await treeDigest(root), digest);
    } finally {
      holder.kill();
    }
  });

  it('a run killed mid-way leaves no lock behind, and its temp files are swept by the next', async () => {
    const killed = await imprint(['boot', '--root', root], { IMPRINT_TEST_CRASH_AT: '2' });
    assert.equal(killed.signal, 'SIGKILL');
    // What a run killed inside an atomic write leaves: temp copies of the state and of /etc/shadow.
    await mkdir(path.join(root, 'var/lib/imprint'), { recursive: true });
    await writeFile(path.join(root, 'var/lib/imprint/.imprint-0123456789ab.tmp'), '{}');
    await writeFile(path.join(root, 'etc/.imprint-0123456789ab.tmp'), 'root:$6$salt$hash:19000:0:99999:7:::\n');
    const next = await imprint(['boot', '--root', root]);
    assert.equal(next.code, 0, next.stderr);
    assert.match(next.stdout, /removed what a killed run left: \/var\/lib\/imprint\/\.imprint-0123456789ab\.tmp, \/etc\/\.imprint-0123456789ab\.tmp/);
    await assert.rejects(stat(path.join(root, 'etc/.imprint-0123456789ab.tmp')));
    await assert.rejects(stat(path.join(root, 'var/lib/imprint/.imprint-0123456789ab.tmp')));
  });
});
