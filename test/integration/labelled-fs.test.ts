import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { readLabelledFs } from '../../agent/os/labelled-fs.js';

// A seed filesystem found by its label on a real block device (a loop device the test makes),
// mounted read-only, read and unmounted. The label is unique to the test, never cidata or
// config-2, so no device of the machine can be picked up by mistake.

const exec = promisify(execFile);

describe('labelled seed filesystems (loop device)', function () {
  let dir: string;
  let loop: string | null = null;
  const label = `imprint${process.pid % 100000}`;

  before(async function () {
    dir = await mkdtemp(path.join(tmpdir(), 'imprint-labelled-'));
    await mkdir(path.join(dir, 'content/openstack/latest'), { recursive: true });
    await writeFile(path.join(dir, 'content/meta-data'), 'instance-id: iid-from-a-disk\n');
    await writeFile(path.join(dir, 'content/openstack/latest/meta_data.json'), '{"uuid": "abc"}');
    await writeFile(path.join(dir, 'seed.img'), Buffer.alloc(0));
    await exec('truncate', ['-s', '8M', path.join(dir, 'seed.img')]);
    await exec('mkfs.ext4', ['-q', '-L', label, '-d', path.join(dir, 'content'), path.join(dir, 'seed.img')]);
    try {
      loop = (await exec('losetup', ['--find', '--show', path.join(dir, 'seed.img')])).stdout.trim();
    } catch (err) {
      if (process.env.CI) throw err;
      this.skip(); // no loop devices on this machine
    }
  });
  after(async () => {
    if (loop) await exec('losetup', ['-d', loop]).catch(() => undefined);
    await rm(dir, { recursive: true, force: true });
  });

  it('finds the filesystem by label, reads the seed files, and unmounts it again', async () => {
    const files = await readLabelledFs(['no-such-label', label], ['meta-data', 'openstack/latest/meta_data.json', 'missing'], 64 * 1024);
    assert.equal(files?.get('meta-data'), 'instance-id: iid-from-a-disk\n');
    assert.equal(files?.get('openstack/latest/meta_data.json'), '{"uuid": "abc"}');
    assert.equal(files?.has('missing'), false);
    const mounts = await exec('findmnt', ['-rn', '-S', loop as string]).then((r) => r.stdout, () => '');
    assert.equal(mounts, '', 'still mounted');
    assert.deepEqual((await readdir(tmpdir())).filter((n) => n.startsWith('imprint-seed-')), [], 'mount point left behind');
  });

  it('answers null when no filesystem has the label', async () => {
    assert.equal(await readLabelledFs(['imprint-none-x'], ['meta-data'], 1024), null);
  });
});
