import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { probeDevice } from '../../agent/os/block-devices.js';
import { detectPackageManager, runBounded } from '../../agent/os/package-manager.js';
import { RootTree } from '../../agent/os/root.js';
import { reinitializeSwapArea } from '../../agent/tasks/clear-swap.js';
import { imprint } from '../support/cli.js';
import { exec, LoopDisks } from '../support/loop-disks.js';

// ephemeral-disk, clear-swap and package-upgrade with the real tools on loop devices and image
// files this test makes. The root is a filesystem on a loop device mounted at a scratch
// directory (`boot --root` takes it as the booted root).
//
// Not exercised here, on purpose: swapoff/swapon. Swap is global to the kernel, so switching a
// scratch swap file on would give this shared machine swap it does not have; the zeroing and
// re-making of a swap area is tested on a file that is never switched on, and the --root rule
// (swap is never touched for a tree) through the CLI. Likewise no real package upgrade runs.

const OTHERS_OFF = 'host_keys: {enabled: false}\npasswords: {enabled: false}\nsshd: {enabled: false}\nauthorized_keys: {enabled: false}\ngrow_root: {enabled: false}\n';

interface TaskReport { task: string; status: string; actions: string[]; error?: string }

async function boot(root: string, config: string, ...extra: string[]) {
  await mkdir(path.join(root, 'etc/imprint'), { recursive: true });
  await writeFile(path.join(root, 'etc/imprint/imprint.yaml'), `${OTHERS_OFF}${config}`);
  const run = await imprint(['boot', '--root', root, '--instance-id', 'i-disks', '--json', ...extra]);
  const tasks = (JSON.parse(run.stdout) as { tasks: TaskReport[] }).tasks;
  return { ...run, task: (name: string) => tasks.find((t) => t.task === name) };
}

describe('ephemeral-disk: the named disk is zeroed and given a new filesystem, once per instance', function () {
  this.timeout(120_000);
  let disks: LoopDisks;
  let root: string;
  let rootLoop: string;
  let ephemeral: string;
  let ephemeralFile: string;
  const secret = `previous-tenant-${randomBytes(8).toString('hex')}`;

  beforeEach(async () => {
    disks = new LoopDisks();
    const rootFile = await disks.image('root.img', '64M');
    await exec('mkfs.ext4', ['-q', rootFile]);
    rootLoop = await disks.attach(rootFile);
    root = await disks.mount(rootLoop, 'root');
    // The ephemeral disk, with what an earlier tenant left on it.
    ephemeralFile = await disks.image('ephemeral.img', '32M');
    const content = path.join(await disks.dir, 'content');
    await mkdir(content);
    await writeFile(path.join(content, 'data'), secret.repeat(100));
    await exec('mkfs.ext4', ['-q', '-d', content, ephemeralFile]);
    ephemeral = await disks.attach(ephemeralFile);
  });
  afterEach(async () => {
    await disks.cleanup();
  });

  const leftOnDisk = async (): Promise<boolean> => (await readFile(ephemeralFile)).includes(secret);

  it('zeroes it, makes the filesystem with the label, and leaves it alone at the next boot of the instance', async () => {
    assert.equal(await leftOnDisk(), true);
    const run = await boot(root, `ephemeral_disk: {device: ${ephemeral}, filesystem: ext4, label: scratch}\n`);
    assert.equal(run.code, 0, run.stderr);
    assert.equal(run.task('ephemeral-disk')?.status, 'done');
    assert.match(run.task('ephemeral-disk')?.actions.join('\n') ?? '', new RegExp(`zeroed ${ephemeral} \\(32 MiB\\)\nmade ext4 on ${ephemeral} labelled scratch \\(UUID `));
    assert.equal(await leftOnDisk(), false, 'the earlier data is still on the disk');
    const probed = await probeDevice(ephemeral);
    assert.deepEqual([probed.TYPE, probed.LABEL], ['ext4', 'scratch']);
    // The instance uses it; a reboot of the same instance does not wipe it again.
    const mnt = await disks.mount(ephemeral, 'eph');
    await writeFile(path.join(mnt, 'mine'), 'kept');
    await disks.unmount(mnt);
    const again = await boot(root, `ephemeral_disk: {device: ${ephemeral}, filesystem: ext4, label: scratch}\n`);
    assert.equal(again.task('ephemeral-disk')?.status, 'unchanged');
    const back = await disks.mount(ephemeral, 'eph');
    assert.equal(await readFile(path.join(back, 'mine'), 'utf8'), 'kept');
  });

  it('with filesystem: none only zeroes it', async () => {
    const run = await boot(root, `ephemeral_disk: {device: ${ephemeral}, filesystem: none}\n`);
    assert.equal(run.code, 0, run.stderr);
    assert.equal(await leftOnDisk(), false);
    assert.deepEqual(await probeDevice(ephemeral), {});
  });

  it('refuses a mounted disk, fails the task and loses nothing', async () => {
    const mnt = await disks.mount(ephemeral, 'in-use');
    const run = await boot(root, `ephemeral_disk: {device: ${ephemeral}}\n`);
    assert.equal(run.code, 1);
    assert.equal(run.task('ephemeral-disk')?.status, 'failed');
    assert.equal(run.task('ephemeral-disk')?.error, `${ephemeral} is mounted (${mnt}): not wiped`);
    assert.equal((await readFile(path.join(mnt, 'data'), 'utf8')).slice(0, secret.length), secret);
  });

  it('refuses the disk that holds the root filesystem', async () => {
    await writeFile(path.join(root, 'precious'), 'root data');
    const run = await boot(root, `ephemeral_disk: {device: ${rootLoop}}\n`);
    assert.equal(run.code, 1);
    assert.equal(run.task('ephemeral-disk')?.error, `${rootLoop} holds the root filesystem (${rootLoop}): never wiped`);
    assert.equal(await readFile(path.join(root, 'precious'), 'utf8'), 'root data');
  });

  it('refuses a path that is not a block device', async () => {
    const run = await boot(root, 'ephemeral_disk: {device: /dev/null}\n');
    assert.equal(run.code, 1);
    assert.equal(run.task('ephemeral-disk')?.error, '/dev/null is not a block device');
  });

  it('with --dry-run says what it would do and does nothing', async () => {
    await mkdir(path.join(root, 'etc/imprint'), { recursive: true });
    await writeFile(path.join(root, 'etc/imprint/imprint.yaml'), `${OTHERS_OFF}ephemeral_disk: {device: ${ephemeral}, filesystem: xfs, label: eph}\n`);
    const run = await imprint(['boot', '--root', root, '--instance-id', 'i-disks', '--dry-run']);
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stdout, new RegExp(`ephemeral-disk: would zero ${ephemeral}, then make xfs labelled eph on it`));
    assert.equal(await leftOnDisk(), true);
  });

  it('leaves the disk alone for an offline tree (not a mount point): the device would be the build machine\'s', async () => {
    const offline = path.join(await disks.dir, 'offline');
    await mkdir(offline);
    const run = await boot(offline, `ephemeral_disk: {device: ${ephemeral}}\n`);
    assert.equal(run.code, 0, run.stderr);
    assert.equal(run.task('ephemeral-disk')?.status, 'skipped');
    assert.match(run.task('ephemeral-disk')?.actions[0] ?? '', /is an offline tree, not a booted root: the ephemeral disk is not touched/);
    assert.equal(await leftOnDisk(), true);
  });
});

describe('clear-swap', function () {
  this.timeout(60_000);
  let disks: LoopDisks;
  beforeEach(() => {
    disks = new LoopDisks();
  });
  afterEach(async () => {
    await disks.cleanup();
  });

  it('zeroes a switched-off swap area and re-makes it with its UUID and label (a file never switched on)', async () => {
    const file = await disks.image('swapfile', '16M');
    const uuid = '0b5b8d3e-1c8f-4a43-9d55-5d6e2c1f7a10';
    await exec('mkswap', ['-q', '-L', 'oldswap', '-U', uuid, file]);
    const page = `swapped-out-page-${randomBytes(8).toString('hex')}`;
    await exec('dd', ['of=' + file, 'bs=1', 'seek=65536', 'conv=notrunc', 'status=none', `if=${await writeFileGet(disks, page)}`]);
    assert.ok((await readFile(file)).includes(page));
    const kept = await reinitializeSwapArea({ name: file, kind: 'file' });
    assert.deepEqual(kept, { uuid, label: 'oldswap' });
    assert.equal((await readFile(file)).includes(page), false, 'the old page is still in the swap file');
    const probed = await probeDevice(file);
    assert.deepEqual([probed.TYPE, probed.UUID, probed.LABEL], ['swap', uuid, 'oldswap']);
    assert.equal((await stat(file)).size, 16 * 1024 * 1024);
  });

  it('does not zero something that is not a swap area', async () => {
    const file = await disks.image('notswap', '8M');
    await exec('mkfs.ext4', ['-q', file]);
    await assert.rejects(reinitializeSwapArea({ name: file, kind: 'file' }), /does not hold a swap signature \(blkid says ext4\): not zeroed/);
    assert.equal((await probeDevice(file)).TYPE, 'ext4');
  });

  it('never touches the machine\'s swap for a --root tree', async () => {
    const rootFile = await disks.image('root.img', '32M');
    await exec('mkfs.ext4', ['-q', rootFile]);
    const root = await disks.mount(await disks.attach(rootFile), 'root');
    const swapsBefore = await readFile('/proc/swaps', 'utf8');
    const run = await boot(root, 'swap: {clear: true}\n');
    assert.equal(run.code, 0, run.stderr);
    assert.equal(run.task('clear-swap')?.status, 'skipped');
    assert.deepEqual(run.task('clear-swap')?.actions, ['--root: swap belongs to the machine, not to the tree; not touched']);
    assert.equal(await readFile('/proc/swaps', 'utf8'), swapsBefore);
  });
});

async function writeFileGet(disks: LoopDisks, text: string): Promise<string> {
  const file = path.join(await disks.dir, 'page');
  await writeFile(file, text);
  return file;
}

describe('package-upgrade', function () {
  this.timeout(60_000);
  let disks: LoopDisks;
  beforeEach(() => {
    disks = new LoopDisks();
  });
  afterEach(async () => {
    await disks.cleanup();
  });

  it('runs nothing for a --root tree, and says so', async () => {
    const dir = path.join(await disks.dir, 'tree');
    await mkdir(path.join(dir, 'usr/bin'), { recursive: true });
    await writeFile(path.join(dir, 'usr/bin/apt-get'), '');
    const run = await boot(dir, 'packages: {upgrade: true}\n');
    assert.equal(run.code, 0, run.stderr);
    assert.deepEqual(run.task('package-upgrade')?.actions, ['--root: packages are upgraded on the booted instance only; not run']);
  });

  it('finds apt or dnf in the tree', async () => {
    const dir = await disks.dir;
    for (const [name, file] of [['apt', 'usr/bin/apt-get'], ['dnf', 'usr/bin/dnf']] as const) {
      const tree = path.join(dir, name);
      await mkdir(path.join(tree, 'usr/bin'), { recursive: true });
      await writeFile(path.join(tree, file), '');
      assert.equal(await detectPackageManager(new RootTree(tree)), name);
    }
    await mkdir(path.join(dir, 'none/usr/bin'), { recursive: true });
    assert.equal(await detectPackageManager(new RootTree(path.join(dir, 'none'))), null);
  });

  it('stops a command at its time bound and says it timed out; reports an exit status otherwise', async () => {
    const bounded = await runBounded({ program: 'sleep', args: ['60'] }, 1000);
    assert.equal(bounded.timedOut, true);
    assert.deepEqual(await runBounded({ program: 'sh', args: ['-c', 'echo last line; exit 3'] }, 10_000), { timedOut: false, code: 3, tail: ['last line'] });
  });
});
