import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { probeDevice } from '../../agent/os/block-devices.js';
import { detectPackageManager, runBounded, upgradeCommands } from '../../agent/os/package-manager.js';
import { RootTree } from '../../agent/os/root.js';
import { reinitializeSwapArea } from '../../agent/tasks/clear-swap.js';
import { imprint } from '../support/cli.js';
import { exec, LoopDisks } from '../support/loop-disks.js';

// ephemeral-disk, clear-swap and package-upgrade with the real tools on loop devices and image
// files this test makes. The root is a filesystem on a loop device mounted at a scratch
// directory (`boot --root` takes it as the booted root).
//
// Swap is global to the kernel: the swap test switches on two 16 MiB loop devices of its own
// (automatic priority, the lowest there is) for one test, and switches them off in afterEach;
// it checks that the machine's other swap areas are the same before and after. The dnf
// upgrade runs for real in a scratch --installroot; apt's real upgrade is in
// test/e2e/package-upgrade.test.ts (a booted Debian 12).

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
    const kept = await reinitializeSwapArea({ name: file, kind: 'file', priority: -2 });
    assert.deepEqual(kept, { uuid, label: 'oldswap' });
    assert.equal((await readFile(file)).includes(page), false, 'the old page is still in the swap file');
    const probed = await probeDevice(file);
    assert.deepEqual([probed.TYPE, probed.UUID, probed.LABEL], ['swap', uuid, 'oldswap']);
    assert.equal((await stat(file)).size, 16 * 1024 * 1024);
  });

  it('does not zero something that is not a swap area', async () => {
    const file = await disks.image('notswap', '8M');
    await exec('mkfs.ext4', ['-q', file]);
    await assert.rejects(reinitializeSwapArea({ name: file, kind: 'file', priority: -2 }), /does not hold a swap signature \(blkid says ext4\): not zeroed/);
    assert.equal((await probeDevice(file)).TYPE, 'ext4');
  });

  it('never touches the machine\'s swap for a --root tree whose fstab names none, or for an offline tree', async () => {
    const rootFile = await disks.image('root.img', '32M');
    await exec('mkfs.ext4', ['-q', rootFile]);
    const root = await disks.mount(await disks.attach(rootFile), 'root');
    const swapsBefore = await readFile('/proc/swaps', 'utf8');
    const run = await boot(root, 'swap: {clear: true}\n');
    assert.equal(run.code, 0, run.stderr);
    assert.equal(run.task('clear-swap')?.status, 'skipped');
    assert.deepEqual(run.task('clear-swap')?.actions, [`--root: no swap in use is named in ${root}/etc/fstab (it names none); the machine's other swap is not touched`]);
    const offline = path.join(await disks.dir, 'offline');
    await mkdir(offline);
    const off = await boot(offline, 'swap: {clear: true}\n');
    assert.equal(off.task('clear-swap')?.status, 'skipped');
    assert.match(off.task('clear-swap')?.actions[0] ?? '', /is an offline tree, not a booted root: swap belongs to the machine; not touched/);
    assert.equal(await readFile('/proc/swaps', 'utf8'), swapsBefore);
  });

  it('clears the swap area in use that the root\'s fstab names (swapoff, zero, mkswap with its UUID and label, swapon), and no other', async () => {
    const rootFile = await disks.image('root.img', '32M');
    await exec('mkfs.ext4', ['-q', rootFile]);
    const root = await disks.mount(await disks.attach(rootFile), 'root');
    const uuid = '5c1ea7ed-0000-4000-8000-00000000a5a9';
    const named = await disks.attach(await disks.image('named-swap', '16M'));
    const other = await disks.attach(await disks.image('other-swap', '16M'));
    await exec('mkswap', ['-q', '-L', 'imprint-test', '-U', uuid, named]);
    await exec('mkswap', ['-q', other]);
    // What an earlier instance left in swap: a page on the area, as the kernel would have written it.
    const page = `swapped-out-page-${randomBytes(8).toString('hex')}`;
    await exec('dd', [`if=${await writeFileGet(disks, page)}`, `of=${named}`, 'bs=1', 'seek=65536', 'conv=notrunc,fsync', 'status=none']);
    const onDevice = async (dev: string): Promise<boolean> => (await exec('dd', [`if=${dev}`, 'bs=1M', 'count=1', 'status=none'], { encoding: 'buffer', maxBuffer: 4 << 20 })).stdout.includes(page);
    assert.equal(await onDevice(named), true);
    // /proc/swaps without the Used column (the kernel's to change): name, type, size, priority.
    const swapTable = async (): Promise<Map<string, string>> => new Map((await readFile('/proc/swaps', 'utf8')).split('\n').slice(1).filter(Boolean)
      .map((l) => l.split(/\s+/)).map((f) => [f[0] as string, [f[1], f[2], f[4]].join(' ')]));
    const machineSwaps = async (): Promise<Map<string, string>> => {
      const t = await swapTable();
      t.delete(named);
      t.delete(other);
      return t;
    };
    const before = await machineSwaps();
    // Each swapon without -p gets the next lower automatic priority, and a swapoff moves the
    // areas below it up one: the priorities show which area was switched off and on again.
    await disks.swapOn(named);
    await disks.swapOn(other);
    const priority = (t: Map<string, string>, dev: string): number => Number((t.get(dev) ?? '').split(' ')[2]);
    const on = await swapTable();
    assert.ok(priority(on, named) > priority(on, other), JSON.stringify([...on]));
    await mkdir(path.join(root, 'etc'), { recursive: true });
    await writeFile(path.join(root, 'etc/fstab'), `# the instance's own swap\nUUID=${uuid} none swap sw 0 0\n`);

    const run = await boot(root, 'swap: {clear: true}\n');
    assert.equal(run.code, 0, run.stderr);
    assert.equal(run.task('clear-swap')?.status, 'done', JSON.stringify(run.task('clear-swap')));
    assert.deepEqual(run.task('clear-swap')?.actions, [`cleared ${named}: switched off, zeroed, re-made and switched on`]);
    const after = await swapTable();
    assert.ok(after.has(named) && after.has(other), `both areas are on: ${JSON.stringify([...after])}`);
    assert.ok(priority(after, named) < priority(after, other), `${named} was switched off and on again, ${other} was not: ${JSON.stringify([...after])}`);
    assert.deepEqual(await machineSwaps(), before, 'the machine\'s own swap areas are unchanged');
    assert.equal(await onDevice(named), false, 'the old page is still on the cleared area');
    const probed = await probeDevice(named);
    assert.deepEqual([probed.TYPE, probed.UUID, probed.LABEL], ['swap', uuid, 'imprint-test']);
  });

  it('gives a cleared area back the priority it was set to (fstab pri=, swapon -p), found by its LABEL', async () => {
    const rootFile = await disks.image('root.img', '32M');
    await exec('mkfs.ext4', ['-q', rootFile]);
    const root = await disks.mount(await disks.attach(rootFile), 'root');
    const area = await disks.attach(await disks.image('prio-swap', '16M'));
    await exec('mkswap', ['-q', '-L', 'imprint-prio', area]);
    await disks.swapOn(area, 0);
    await mkdir(path.join(root, 'etc'), { recursive: true });
    await writeFile(path.join(root, 'etc/fstab'), 'LABEL=imprint-prio none swap sw,pri=0 0 0\n');
    const run = await boot(root, 'swap: {clear: true}\n');
    assert.equal(run.code, 0, run.stderr);
    assert.deepEqual(run.task('clear-swap')?.actions, [`cleared ${area}: switched off, zeroed, re-made and switched on`]);
    const line = (await readFile('/proc/swaps', 'utf8')).split('\n').map((l) => l.split(/\s+/)).find((f) => f[0] === area);
    assert.equal(line?.[4], '0', `priority after the clear: ${line?.join(' ')}`);
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

  it('dnf: imprint\'s upgrade command, for real, upgrades a package from a local rpm repository (a scratch --installroot)', async function () {
    // Debian's dnf and rpm; the test adds only what keeps dnf in a scratch root (--installroot,
    // its repos, config and cache there), never this machine's own packages.
    for (const tool of ['dnf', 'rpmbuild', 'createrepo_c']) {
      if ((await exec('sh', ['-c', 'command -v "$1"', 'sh', tool]).catch(() => null)) === null) this.skip();
    }
    const dir = await disks.dir;
    const root = path.join(dir, 'rpm-root');
    const rpmFor = async (version: string): Promise<string> => {
      const top = path.join(dir, `rpmbuild-${version}`);
      await mkdir(path.join(top, 'SPECS'), { recursive: true });
      const spec = path.join(top, 'SPECS/probe.spec');
      await writeFile(spec, `Name: imprint-upgrade-probe\nVersion: ${version}\nRelease: 1\nSummary: imprint test package\nLicense: MIT\nBuildArch: noarch\n%description\nA package to upgrade.\n%install\nmkdir -p %{buildroot}/usr/share/imprint-upgrade-probe\necho ${version} > %{buildroot}/usr/share/imprint-upgrade-probe/version\n%files\n/usr/share/imprint-upgrade-probe/version\n`);
      await exec('rpmbuild', ['--quiet', '--define', `_topdir ${top}`, '-bb', spec]);
      return path.join(top, `RPMS/noarch/imprint-upgrade-probe-${version}-1.noarch.rpm`);
    };
    const v1 = await rpmFor('1');
    const v2 = await rpmFor('2');
    await mkdir(path.join(root, 'repo'), { recursive: true });
    await mkdir(path.join(root, 'etc/yum.repos.d'), { recursive: true });
    await exec('cp', [v2, path.join(root, 'repo')]);
    await exec('createrepo_c', ['-q', path.join(root, 'repo')]);
    await exec('rpm', ['--root', root, '--initdb']);
    await exec('rpm', ['--root', root, '-i', '--nodeps', v1]);
    await writeFile(path.join(root, 'etc/yum.repos.d/probe.repo'), `[probe]\nname=probe\nbaseurl=file://${root}/repo\ngpgcheck=0\nenabled=1\n`);
    await writeFile(path.join(root, 'etc/dnf.conf'), '[main]\ngpgcheck=0\n');
    const [command] = upgradeCommands('dnf');
    assert.ok(command);
    const scoped = { program: command.program, args: [...command.args, '--installroot', root, '--config', path.join(root, 'etc/dnf.conf'),
      '--setopt', `reposdir=${root}/etc/yum.repos.d`, '--setopt', `cachedir=${root}/var/cache/dnf`, '--releasever', '12'] };
    const result = await runBounded(scoped, 120_000);
    assert.deepEqual([result.code, result.timedOut], [0, false], result.tail.join('\n'));
    assert.ok(result.tail.includes('Complete!'), result.tail.join('\n'));
    assert.equal((await exec('rpm', ['--root', root, '-q', 'imprint-upgrade-probe'])).stdout.trim(), 'imprint-upgrade-probe-2-1.noarch');
    assert.equal(await readFile(path.join(root, 'usr/share/imprint-upgrade-probe/version'), 'utf8'), '2\n');
  });

  it('stops a command at its time bound and says it timed out; reports an exit status otherwise', async () => {
    const bounded = await runBounded({ program: 'sleep', args: ['60'] }, 1000);
    assert.equal(bounded.timedOut, true);
    assert.deepEqual(await runBounded({ program: 'sh', args: ['-c', 'echo last line; exit 3'] }, 10_000), { timedOut: false, code: 3, tail: ['last line'] });
  });
});
