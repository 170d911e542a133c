import assert from 'node:assert/strict';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { readPartitionTable } from '../../agent/os/block-devices.js';
import { run } from '../../agent/os/exec.js';
import { growPartitionStep } from '../../agent/tasks/grow-root.js';
import { imprint } from '../support/cli.js';
import { canResizeMountedExt4, exec, fsckClean, LoopDisks, MiB, sizeOf, untilNotBusy } from '../support/loop-disks.js';

// grow-root on real filesystems: a filesystem on a loop device (a root on a whole disk with no
// partition table) mounted at a scratch directory, which `boot --root` takes as the root; the
// image file is grown and the loop device told, as a cloud grows a volume. A root on a
// partition: a GPT loop device whose partition nodes `partx --add` makes (losetup -P gives none
// here; BLKPG does), its filesystem mounted, then the whole chain runs while it stays mounted:
// sfdisk on the loop device, partx --update (BLKPG_RESIZE_PARTITION), the online grow. Table
// edge cases (not last, not grown, never shrunk) are on image files with the real sfdisk.

/** Only grow-root runs: the other tasks are off, so the tree needs nothing but this file. */
const ONLY_GROW = 'host_keys: {enabled: false}\npasswords: {enabled: false}\nsshd: {enabled: false}\nauthorized_keys: {enabled: false}\n';

interface Report { status: string; tasks: { task: string; status: string; actions: string[]; error?: string }[] }

async function bootRoot(root: string, env: NodeJS.ProcessEnv = {}, ...extra: string[]) {
  await mkdir(path.join(root, 'etc/imprint'), { recursive: true });
  await writeFile(path.join(root, 'etc/imprint/imprint.yaml'), ONLY_GROW);
  const run = await imprint(['boot', '--root', root, '--instance-id', 'i-grow', '--json', ...extra], env);
  const report = run.signal ? null : (JSON.parse(run.stdout) as Report);
  return { ...run, report, grow: report?.tasks.find((t) => t.task === 'grow-root') };
}

const MKFS: Record<string, string[]> = { ext4: ['mkfs.ext4', '-q'], xfs: ['mkfs.xfs', '-q'], btrfs: ['mkfs.btrfs', '-q'] };

describe('grow-root: the root filesystem grows to fill a grown disk', function () {
  this.timeout(300_000);
  let disks: LoopDisks;
  beforeEach(() => {
    disks = new LoopDisks();
  });
  afterEach(async () => {
    await disks.cleanup();
  });

  /** A filesystem of the type on a 320 MiB loop device, mounted (xfs needs at least 300 MiB). */
  async function mountedFs(fstype: string) {
    const file = await disks.image(`${fstype}.img`, '320M');
    const [program, ...args] = MKFS[fstype] as string[];
    await exec(program as string, [...args, file]);
    const loop = await disks.attach(file);
    const root = await disks.mount(loop, `${fstype}-root`);
    return { file, loop, root };
  }

  for (const fstype of ['xfs', 'btrfs']) {
    it(`grows ${fstype} online after the disk grew, and it fscks clean`, async () => {
      const { file, loop, root } = await mountedFs(fstype);
      const before = await sizeOf(root);
      await disks.grow(file, loop, '640M');
      const run = await bootRoot(root);
      assert.equal(run.code, 0, run.stderr);
      assert.equal(run.grow?.status, 'done', run.stderr);
      assert.match(run.grow?.actions.join('\n') ?? '', new RegExp(`grew the ${fstype} filesystem on ${loop} from`));
      const after = await sizeOf(root);
      assert.ok(after > before + 250 * MiB, `${before} → ${after}`);
      assert.doesNotMatch(run.grow?.actions.join('\n') ?? '', /partition/, 'a whole disk has no partition to grow');
      await disks.unmount(root);
      await fsckClean(fstype, loop);
    });
  }

  it('grows ext4 online (resize2fs); where the kernel refuses, fails and says so, the filesystem untouched', async () => {
    const { file, loop, root } = await mountedFs('ext4');
    const before = await sizeOf(root);
    await disks.grow(file, loop, '640M');
    const run = await bootRoot(root);
    if (await canResizeMountedExt4()) {
      assert.equal(run.code, 0, run.stderr);
      assert.equal(run.grow?.status, 'done');
      assert.ok((await sizeOf(root)) > before + 250 * MiB);
    } else {
      // This machine lacks CAP_SYS_RESOURCE, which online ext4 resizing needs: the failure is
      // reported with resize2fs's own words, and the filesystem is as it was.
      assert.equal(run.code, 1);
      assert.equal(run.grow?.status, 'failed');
      assert.match(run.grow?.error ?? '', /resize2fs failed: .*Permission denied/);
      assert.equal(await sizeOf(root), before);
    }
    await disks.unmount(root);
    await fsckClean('ext4', loop);
  });

  it('leaves a filesystem that already fills its disk alone, and says so', async () => {
    const { loop, root } = await mountedFs('ext4');
    const before = await sizeOf(root);
    const run = await bootRoot(root);
    assert.equal(run.code, 0, run.stderr);
    assert.equal(run.grow?.status, 'skipped');
    assert.match(run.grow?.actions.join('\n') ?? '', new RegExp(`the ext4 filesystem already fills ${loop}`));
    assert.equal(await sizeOf(root), before);
  });

  it('with --dry-run says what it would grow and grows nothing', async () => {
    const { file, loop, root } = await mountedFs('xfs');
    const before = await sizeOf(root);
    await disks.grow(file, loop, '640M');
    await mkdir(path.join(root, 'etc/imprint'), { recursive: true });
    await writeFile(path.join(root, 'etc/imprint/imprint.yaml'), ONLY_GROW);
    const run = await imprint(['boot', '--root', root, '--instance-id', 'i-grow', '--dry-run']);
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stdout, new RegExp(`grow-root: would grow the xfs filesystem on ${loop} to fill its device`));
    assert.equal(await sizeOf(root), before);
  });

  it('does nothing when the config turns it off', async () => {
    const { file, loop, root } = await mountedFs('xfs');
    const before = await sizeOf(root);
    await disks.grow(file, loop, '640M');
    await mkdir(path.join(root, 'etc/imprint'), { recursive: true });
    await writeFile(path.join(root, 'etc/imprint/imprint.yaml'), `${ONLY_GROW}grow_root: {enabled: false}\n`);
    const run = await imprint(['boot', '--root', root, '--instance-id', 'i-grow']);
    assert.equal(run.code, 0, run.stderr);
    assert.equal(await sizeOf(root), before);
  });

  it('killed at every step of the grow (resize tool killed with it), the filesystem mounts, checks clean, and the next boot finishes', async () => {
    let killedAt = 0;
    for (let n = 1; n < 30; n += 1) {
      const { file, loop, root } = await mountedFs('xfs');
      await disks.grow(file, loop, '640M');
      const crashed = await bootRoot(root, { IMPRINT_TEST_CRASH_AT: String(n) });
      if (crashed.signal !== 'SIGKILL') {
        assert.equal(crashed.code, 0, `crash point ${n} beyond the last: ${crashed.stderr}`);
        break;
      }
      killedAt = n;
      await disks.unmount(root);
      await fsckClean('xfs', loop);
      const again = await disks.mount(loop, 'xfs-root');
      const rerun = await bootRoot(again);
      assert.equal(rerun.code, 0, `rerun after a kill at step ${n}: ${rerun.stderr}`);
      assert.ok((await sizeOf(again)) > 550 * MiB, `step ${n}: not grown on the rerun`);
      await disks.unmount(again);
      await fsckClean('xfs', loop);
      await disks.detach(loop);
    }
    assert.ok(killedAt >= 3, `only ${killedAt} crash points were reached (before, during, after xfs_growfs)`);
  });

  it('leaves a root bound from a directory of a filesystem alone (a container on its host\'s disk)', async () => {
    const { file, loop, root } = await mountedFs('xfs');
    await mkdir(path.join(root, 'machines/c1'), { recursive: true });
    await disks.grow(file, loop, '640M');
    const before = await sizeOf(root);
    const bound = await disks.bind(path.join(root, 'machines/c1'), 'container-root');
    const run = await bootRoot(bound);
    assert.equal(run.code, 0, run.stderr);
    assert.equal(run.grow?.status, 'skipped');
    assert.deepEqual(run.grow?.actions, [`the root is /machines/c1 of the filesystem on ${loop} (a bind mount, as in a container): not grown`]);
    assert.equal(await sizeOf(root), before);
  });

  it('leaves an offline tree (not a mount point) alone', async () => {
    const dir = path.join(await disks.dir, 'offline');
    await mkdir(dir);
    const run = await bootRoot(dir, {}, '--verbose');
    assert.equal(run.code, 0, run.stderr);
    assert.equal(run.grow?.status, 'skipped');
    assert.match(run.stderr, /grow-root: .*offline.* is not a mount point: no root filesystem to grow \(an offline tree\)/);
  });
});

describe('grow-root: a mounted root partition of a grown disk, end to end (partition nodes by BLKPG)', function () {
  this.timeout(300_000);
  let disks: LoopDisks;
  beforeEach(() => {
    disks = new LoopDisks();
  });
  afterEach(async () => {
    await disks.cleanup();
  });

  /** A 400 MiB GPT disk: a 32 MiB partition, then the root partition (the last), its filesystem mounted. */
  async function partitionedRoot(ctx: Mocha.Context, fstype: string) {
    const file = await disks.image(`${fstype}-disk.img`, '400M');
    await run('sfdisk', ['-q', file], { input: 'label: gpt\n,32M\n,320M\n' });
    const loop = await disks.attach(file);
    const parts = await disks.addPartitions(loop);
    if (!parts || parts.length !== 2) {
      ctx.skip(); // this kernel made no partition nodes for a loop device
    }
    const part = (parts as string[])[1] as string;
    const [program, ...args] = MKFS[fstype] as string[];
    await exec(program as string, [...args, part]);
    const root = await disks.mount(part, `${fstype}-root`);
    return { file, loop, part, root };
  }

  const kernelSectors = async (part: string): Promise<number> => Number((await exec('blockdev', ['--getsz', part])).stdout.trim());

  for (const fstype of ['xfs', 'btrfs']) {
    it(`grows the last partition (sfdisk), tells the kernel (partx), then grows ${fstype} online; the table verifies and the filesystem fscks clean`, async function () {
      const { file, loop, part, root } = await partitionedRoot(this, fstype);
      const before = await sizeOf(root);
      const sectorsBefore = await kernelSectors(part);
      await disks.grow(file, loop, '800M');
      const run = await bootRoot(root);
      assert.equal(run.code, 0, run.stderr);
      assert.equal(run.grow?.status, 'done', JSON.stringify(run.grow));
      const actions = run.grow?.actions ?? [];
      assert.match(actions[0] ?? '', new RegExp(`^grew partition 2 of ${loop} from 320 MiB to 7\\d\\d(\\.\\d)? MiB$`));
      assert.match(actions[1] ?? '', new RegExp(`^grew the ${fstype} filesystem on ${part} from`));
      // The kernel's idea of the partition is the table's new one (partx --update), while mounted.
      const table = await readPartitionTable(loop);
      const inTable = table?.partitions.find((p) => p.number === 2);
      assert.equal(await kernelSectors(part), inTable?.size);
      assert.ok((inTable?.size ?? 0) > sectorsBefore + 700_000, `${sectorsBefore} → ${inTable?.size}`);
      assert.equal(table?.partitions.find((p) => p.number === 1)?.size, 32 * 2048, 'partition 1 changed');
      assert.ok((await sizeOf(root)) > before + 350 * MiB, `${before} → ${await sizeOf(root)}`);
      const verify = await exec('sfdisk', ['--verify', loop]);
      assert.match(verify.stdout, /No errors detected/);
      await disks.unmount(root);
      await fsckClean(fstype, part);
    });
  }

  it('ext4: grows the partition; the online resize2fs is refused without CAP_SYS_RESOURCE and said so, the filesystem untouched; it grows offline into the new room', async function () {
    const { file, loop, part, root } = await partitionedRoot(this, 'ext4');
    const before = await sizeOf(root);
    await disks.grow(file, loop, '800M');
    const run = await bootRoot(root);
    assert.match(run.grow?.actions[0] ?? '', new RegExp(`^grew partition 2 of ${loop} from 320 MiB to 7\\d\\d(\\.\\d)? MiB$`));
    const grownSectors = await kernelSectors(part);
    assert.ok(grownSectors > 1_400_000, `the kernel still sees ${grownSectors} sectors`);
    if (await canResizeMountedExt4()) {
      assert.equal(run.grow?.status, 'done', JSON.stringify(run.grow));
      assert.ok((await sizeOf(root)) > before + 350 * MiB);
      await disks.unmount(root);
    } else {
      assert.equal(run.code, 1);
      assert.equal(run.grow?.status, 'failed');
      assert.match(run.grow?.error ?? '', /resize2fs failed: .*Permission denied/);
      assert.equal(await sizeOf(root), before);
      // What can be shown here: the partition imprint grew has the room, and ext4 takes it offline.
      await disks.unmount(root);
      await fsckClean('ext4', part);
      await untilNotBusy(() => exec('resize2fs', [part]));
      const remounted = await disks.mount(part, 'ext4-offline');
      assert.ok((await sizeOf(remounted)) > before + 350 * MiB, `offline: ${before} → ${await sizeOf(remounted)}`);
      await disks.unmount(remounted);
    }
    await fsckClean('ext4', part);
  });
});

describe('grow-root: the root partition grows to the end of a grown disk (sfdisk on image files)', function () {
  this.timeout(60_000);
  let disks: LoopDisks;
  beforeEach(() => {
    disks = new LoopDisks();
  });
  afterEach(async () => {
    await disks.cleanup();
  });

  async function partitioned(label: 'gpt' | 'dos', layout: string, size: string): Promise<string> {
    const file = await disks.image(`${label}.img`, size);
    await run('sfdisk', ['-q', file], { input: `label: ${label}\n${layout}` });
    return file;
  }

  const sizeOfPartition = async (file: string, n: number) => (await readPartitionTable(file))?.partitions.find((p) => p.number === n);

  for (const label of ['gpt', 'dos'] as const) {
    it(`grows the last partition of a grown ${label} disk to its end, and the table verifies`, async () => {
      const file = await partitioned(label, ',16M\n,+\n', '64M');
      const before = await sizeOfPartition(file, 2);
      await exec('truncate', ['-s', '256M', file]);
      const step = await growPartitionStep(file, 2);
      assert.equal(step.changed, true, step.line);
      assert.match(step.line, new RegExp(`grew partition 2 of ${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} from 4\\d MiB to 2\\d\\d`));
      const after = await sizeOfPartition(file, 2);
      assert.equal(after?.start, before?.start, 'the start moved');
      assert.ok((after?.size ?? 0) * 512 > 230 * MiB, JSON.stringify(after));
      assert.equal((await sizeOfPartition(file, 1))?.size, 16 * 2048, 'partition 1 changed');
      // GPT: the backup header is at the new end (sfdisk --verify complains otherwise).
      const verify = await exec('sfdisk', ['--verify', file]);
      assert.match(verify.stdout, /No errors detected/);
      assert.doesNotMatch(verify.stderr, /backup GPT table is not on the end/);
    });
  }

  it('leaves a partition that is not the last one alone', async () => {
    const file = await partitioned('gpt', ',16M\n,16M\n', '64M');
    await exec('truncate', ['-s', '256M', file]);
    const step = await growPartitionStep(file, 1);
    assert.equal(step.changed, false);
    assert.match(step.line, /partition 1 is not the last on its disk \(partition 2 follows\): not grown/);
    assert.equal((await sizeOfPartition(file, 1))?.size, 16 * 2048);
  });

  it('leaves the table alone when the disk did not grow', async () => {
    const file = await partitioned('gpt', ',16M\n,+\n', '64M');
    const before = await exec('sfdisk', ['--dump', file]);
    const step = await growPartitionStep(file, 2);
    assert.equal(step.changed, false);
    assert.match(step.line, /partition 2 already fills its disk/);
    assert.equal((await exec('sfdisk', ['--dump', file])).stdout, before.stdout);
  });

  it('never shrinks: a partition reaching past a disk that got smaller is not touched', async () => {
    const file = await partitioned('dos', ',16M\n,+\n', '128M');
    const before = await exec('sfdisk', ['--dump', file]);
    await exec('truncate', ['-s', '64M', file]);
    const step = await growPartitionStep(file, 2);
    assert.equal(step.changed, false);
    assert.match(step.line, /already reaches past the end of the disk: not touched \(never shrunk\)/);
    assert.equal((await exec('sfdisk', ['--dump', file])).stdout, before.stdout);
  });
});
