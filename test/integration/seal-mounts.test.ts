import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { lstat, mkdir, mkdtemp, open, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { randomBytes } from 'node:crypto';
import type { SealReport } from '../../agent/seal/report.js';
import { imprint } from '../support/cli.js';
import { removeScratch, scratchImage } from '../support/tree.js';

// imprint seal --root against real mounts this test makes (issue 8.8): a bind mount of a
// directory standing for "outside the tree", on the same filesystem (no device change), and a
// bind-mounted file; and a sparse file far larger than the small loop filesystem holding it.
// Every mount is undone in the after hooks.

const exec = promisify(execFile);
const exists = (p: string): Promise<boolean> => lstat(p).then(() => true, () => false);
const PEM = (marker: string): string => `-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA${marker}\n-----END OPENSSH PRIVATE KEY-----\n`;

async function sealJson(args: string[]): Promise<{ code: number; report: SealReport; stderr: string }> {
  const run = await imprint(['seal', ...args, '--json']);
  return { code: run.code, report: JSON.parse(run.stdout) as SealReport, stderr: run.stderr };
}

describe('imprint seal --root and mounts inside the tree', function () {
  this.timeout(120_000);
  const mounted: string[] = [];
  const scratch: string[] = [];

  before(function () {
    if (process.getuid?.() !== 0) this.skip();
  });
  afterEach(async () => {
    for (const m of mounted.splice(0).reverse()) await exec('umount', [m]).catch(() => exec('umount', ['-l', m]));
    for (const d of scratch.splice(0)) await (path.basename(d).startsWith('imprint-test-') ? rm(d, { recursive: true, force: true }) : removeScratch(d));
  });

  async function bind(source: string, target: string): Promise<void> {
    await exec('mount', ['--bind', source, target]);
    mounted.push(target);
  }

  it('never removes through a bind mount of the same filesystem (a directory, a file, one inside a removed tree), and says what it skipped', async () => {
    const root = await scratchImage();
    scratch.push(root);
    const outside = await mkdtemp(path.join(tmpdir(), 'imprint-test-outside-'));
    scratch.push(outside);
    await mkdir(path.join(outside, 'dir/sub'), { recursive: true });
    await writeFile(path.join(outside, 'dir/notes.txt'), 'outside data\n');
    await writeFile(path.join(outside, 'dir/sub/id_ed25519'), PEM('outsidekey'));
    await writeFile(path.join(outside, 'history'), 'outside history\n');
    await mkdir(path.join(outside, 'inner'));
    await writeFile(path.join(outside, 'inner/keep.txt'), 'outside inner\n');

    await mkdir(path.join(root, 'tmp/build'), { recursive: true });
    await bind(path.join(outside, 'dir'), path.join(root, 'tmp/build'));
    await mkdir(path.join(root, 'root'), { recursive: true });
    await writeFile(path.join(root, 'root/.bash_history'), '');
    await bind(path.join(outside, 'history'), path.join(root, 'root/.bash_history'));
    await mkdir(path.join(root, 'tmp/work/inner'), { recursive: true });
    await writeFile(path.join(root, 'tmp/work/scratch.txt'), 'in the tree\n');
    await bind(path.join(outside, 'inner'), path.join(root, 'tmp/work/inner'));
    await writeFile(path.join(root, 'tmp/plain.txt'), 'in the tree\n');

    const { report } = await sealJson(['--root', root]);
    // Outside the tree, nothing changed.
    assert.equal(await readFile(path.join(outside, 'dir/notes.txt'), 'utf8'), 'outside data\n');
    assert.equal(await readFile(path.join(outside, 'dir/sub/id_ed25519'), 'utf8'), PEM('outsidekey'));
    assert.equal(await readFile(path.join(outside, 'history'), 'utf8'), 'outside history\n');
    assert.equal(await readFile(path.join(outside, 'inner/keep.txt'), 'utf8'), 'outside inner\n');
    // What was skipped is said, item by item.
    const item = (p: string): SealReport['items'][number] | undefined => report.items.find((i) => i.path === p);
    assert.equal(item('/tmp/build')?.status, 'skipped');
    assert.match(item('/tmp/build')?.why ?? '', /a mount point \(seal never removes through a mount\)/);
    assert.equal(item('/root/.bash_history')?.status, 'skipped');
    assert.equal(item('/tmp/build/sub/id_ed25519')?.status, 'skipped');
    assert.match(item('/tmp/build/sub/id_ed25519')?.why ?? '', /under the mount point \/tmp\/build/);
    assert.equal(item('/tmp/work')?.status, 'done');
    assert.match(item('/tmp/work')?.outcome ?? '', /except the mount point \/tmp\/work\/inner/);
    assert.ok(report.notes.some((n) => n.path === '/tmp/work/inner'), JSON.stringify(report.notes));
    // The tree's own files around the mounts are still removed.
    assert.equal(await exists(path.join(root, 'tmp/plain.txt')), false);
    assert.equal(await exists(path.join(root, 'tmp/work/scratch.txt')), false);
  });

  it('a sparse file far larger than its filesystem: its data is overwritten where it lies, and it is unlinked', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'imprint-test-loop-'));
    scratch.push(dir);
    const image = path.join(dir, 'fs.img');
    const mnt = path.join(dir, 'mnt');
    await writeFile(image, '');
    await exec('truncate', ['-s', '16M', image]);
    await exec('mkfs.ext4', ['-q', '-F', image]);
    await mkdir(mnt);
    await exec('mount', ['-o', 'loop', image, mnt]);
    mounted.push(mnt);
    await mkdir(path.join(mnt, 'root/.ssh'), { recursive: true, mode: 0o700 });
    await mkdir(path.join(mnt, 'etc'));
    await writeFile(path.join(mnt, 'etc/passwd'), 'root:x:0:0:root:/root:/bin/sh\n');
    const marker = randomBytes(24).toString('hex');
    const key = path.join(mnt, 'root/.ssh/id_ed25519');
    // 1 GiB apparent size on a 16 MiB filesystem; the secret sits in one block in the middle.
    const handle = await open(key, 'w', 0o600);
    await handle.write(PEM(marker), 512 * 1024 * 1024);
    await handle.truncate(1024 * 1024 * 1024);
    await handle.close();

    const { report } = await sealJson(['--root', mnt, '--operations', 'ssh-user-keys']);
    const result = report.items.find((i) => i.path === '/root/.ssh/id_ed25519');
    assert.equal(result?.status, 'done', JSON.stringify(result));
    assert.equal(result?.outcome, 'shredded');
    assert.equal(await exists(key), false);
    await exec('umount', [mnt]);
    mounted.pop();
    // The filesystem's blocks no longer hold the secret anywhere.
    const bytes = await readFile(image);
    assert.equal(bytes.includes(Buffer.from(marker)), false, 'the secret is still on the filesystem');
  });
});
