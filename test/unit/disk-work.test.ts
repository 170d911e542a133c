import assert from 'node:assert/strict';
import { ConfigError, defaultConfig, parseConfig } from '../../agent/config.js';
import { parseProcSwaps, type BlockDevice, type PartitionTable } from '../../agent/os/block-devices.js';
import { transientServiceArgs, upgradeCommands } from '../../agent/os/package-manager.js';
import { fstabSwapSpecs, parseSwapSpec } from '../../agent/parsers/fstab.js';
import { run } from '../../agent/os/exec.js';
import { classifyRoot, filesystemHasRoom, MIN_GROWTH_BYTES, missingTool, planPartition } from '../../agent/tasks/grow-root.js';

// Decisions of the disk tasks, on the facts lsblk, sfdisk and /proc/swaps give. Device-mapper
// and md roots are decided here on lsblk's answers: this machine's kernel has neither
// device-mapper nor md, so no such root can be made for an integration test.

const FILE = '/etc/imprint/imprint.yaml';

function problemsOf(text: string): string[] {
  try {
    parseConfig(text, FILE);
  } catch (err) {
    assert.ok(err instanceof ConfigError);
    return err.problems;
  }
  return [];
}

const dev = (kname: string, type: string, parent: string | null = null): BlockDevice => ({ kname, path: `/dev/${kname}`, type, parent, sizeBytes: 1 << 30 });

describe('disk work: config', () => {
  it('defaults: grow on; swap clearing, the ephemeral disk and package upgrades off', () => {
    const c = defaultConfig();
    assert.deepEqual([c.growRoot.enabled, c.swap.clear, c.ephemeralDisk.device, c.packages.upgrade], [true, false, null, false]);
  });

  it('reads every section', () => {
    const c = parseConfig('grow_root: {enabled: false}\nswap: {clear: true}\nephemeral_disk: {device: /dev/vdb, filesystem: xfs, label: scratch}\npackages: {upgrade: true, timeout: 5m}\n', FILE);
    assert.equal(c.growRoot.enabled, false);
    assert.equal(c.swap.clear, true);
    assert.deepEqual(c.ephemeralDisk, { device: '/dev/vdb', filesystem: 'xfs', label: 'scratch' });
    assert.deepEqual(c.packages, { upgrade: true, timeoutMs: 300_000 });
  });

  it('unknown keys are errors with did-you-mean', () => {
    assert.match(problemsOf('grow_root: {enable: false}\n')[0] ?? '', /:1:\d+: unknown key "enable" in grow_root \(did you mean "enabled"\?\); known keys: enabled$/);
    assert.match(problemsOf('swap: {clean: true}\n')[0] ?? '', /unknown key "clean" in swap \(did you mean "clear"\?\)/);
    assert.match(problemsOf('ephemeral_disk: {device: /dev/vdb, fs: ext4}\n')[0] ?? '', /unknown key "fs" in ephemeral_disk; known keys: device, filesystem, label/);
    assert.match(problemsOf('packages: {upgrades: true}\n')[0] ?? '', /unknown key "upgrades" in packages \(did you mean "upgrade"\?\)/);
    assert.match(problemsOf('growroot: {}\n')[0] ?? '', /unknown key "growroot" \(did you mean "grow_root"\?\)/);
  });

  it('the ephemeral device is a /dev path, named, never guessed; bad values are errors at their line', () => {
    assert.match(problemsOf('ephemeral_disk:\n  device: vdb\n')[0] ?? '', /:2:11: ephemeral_disk.device must be a device path such as \/dev\/vdb/);
    assert.match(problemsOf('ephemeral_disk:\n  device: /dev/../etc/shadow\n')[0] ?? '', /must be a device path/);
    assert.match(problemsOf('ephemeral_disk:\n  filesystem: ext4\n')[0] ?? '', /:2:3: ephemeral_disk.device is required: the disk to wipe is named, never guessed/);
    assert.match(problemsOf('ephemeral_disk: {device: /dev/vdb, filesystem: ext3}\n')[0] ?? '', /ephemeral_disk.filesystem must be one of ext4, xfs, btrfs, swap, none, not "ext3" \(did you mean "ext4"\?\)/);
    assert.match(problemsOf('ephemeral_disk: {device: /dev/vdb, label: "a label that is long"}\n')[0] ?? '', /ephemeral_disk.label must be 1 to 12/);
    assert.match(problemsOf('packages: {timeout: 10s}\n')[0] ?? '', /packages.timeout must be a duration such as "20m", between 1 m and 360 m/);
  });
});

describe('disk work: where the root lives', () => {
  it('grows a partition of a plain disk, and a filesystem on a whole disk or loop device', () => {
    assert.deepEqual(classifyRoot('/dev/vda1', dev('vda1', 'part', 'vda'), dev('vda', 'disk'), 1), { kind: 'partition', device: dev('vda1', 'part', 'vda'), disk: '/dev/vda', number: 1 });
    assert.equal(classifyRoot('/dev/vdb', dev('vdb', 'disk'), null, null).kind, 'whole-disk');
    assert.equal(classifyRoot('/dev/loop3', dev('loop3', 'loop'), null, null).kind, 'whole-disk');
  });

  it('skips LVM, dm-crypt, other device-mapper and md RAID roots with a line that says which', () => {
    for (const [type, words] of [['lvm', /device-mapper device \(\/dev\/dm-0, lvm: LVM, dm-crypt or multipath\): not grown/], ['crypt', /dm-crypt/], ['dm', /device-mapper/], ['raid1', /md RAID device \(\/dev\/dm-0, raid1\): not grown/], ['md', /md RAID/]] as const) {
      const layout = classifyRoot('/dev/dm-0', dev('dm-0', type), null, null);
      assert.equal(layout.kind, 'skip', type);
      assert.match(layout.kind === 'skip' ? layout.why : '', words, type);
    }
    const onRaid = classifyRoot('/dev/md0p1', dev('md0p1', 'part', 'md0'), dev('md0', 'raid1'), 1);
    assert.match(onRaid.kind === 'skip' ? onRaid.why : '', /\/dev\/md0p1 is a partition of \/dev\/md0 \(raid1\), not of a plain disk: not grown/);
  });

  it('skips a root bound from a directory of a filesystem (a container on its host\'s disk)', () => {
    const layout = classifyRoot('/dev/vda', dev('vda', 'disk'), null, null, '/var/lib/machines/c1');
    assert.match(layout.kind === 'skip' ? layout.why : '', /the root is \/var\/lib\/machines\/c1 of the filesystem on \/dev\/vda \(a bind mount, as in a container\): not grown/);
  });

  it('skips a root that is not on a block device (overlay, tmpfs, a container)', () => {
    const layout = classifyRoot('overlay', null, null, null);
    assert.match(layout.kind === 'skip' ? layout.why : '', /on overlay, not a block device: nothing to grow/);
  });
});

describe('disk work: partition and filesystem growth decisions', () => {
  const table = (label: string, parts: [number, number, number][]): PartitionTable => ({ label, sectorSize: 512, partitions: parts.map(([number, start, size]) => ({ number, start, size })) });

  it('grows the last partition up to the GPT backup table', () => {
    const plan = planPartition(table('gpt', [[1, 2048, 16384], [2, 18432, 110592]]), 2, 256 * 1024 * 1024);
    assert.deepEqual(plan, { grow: true, number: 2, fromSectors: 110592, toSectors: 524288 - 33 - 18432, sectorSize: 512 });
  });

  it('judges "last" by position, not by number', () => {
    const plan = planPartition(table('gpt', [[1, 2048 + 16384, 110592], [2, 2048, 16384]]), 1, 256 * 1024 * 1024);
    assert.equal(plan.grow, true);
    const notLast = planPartition(table('gpt', [[1, 2048 + 16384, 110592], [2, 2048, 16384]]), 2, 256 * 1024 * 1024);
    assert.match(notLast.grow ? '' : notLast.why, /partition 2 is not the last on its disk \(partition 1 follows\)/);
  });

  it('leaves a logical partition of an MBR disk alone', () => {
    const plan = planPartition(table('dos', [[1, 2048, 16384], [2, 18432, 1000], [5, 20480, 1000]]), 5, 256 * 1024 * 1024);
    assert.match(plan.grow ? '' : plan.why, /logical partition/);
  });

  it('needs at least a MiB of room', () => {
    const disk = 64 * 1024 * 1024;
    const end = disk / 512;
    assert.equal(planPartition(table('dos', [[1, 2048, end - 2048 - 2047]]), 1, disk).grow, false);
    assert.equal(planPartition(table('dos', [[1, 2048, end - 2048 - 2048]]), 1, disk).grow, true);
  });

  it('grows a filesystem only into room past it, never to a smaller size', () => {
    assert.equal(filesystemHasRoom(100 * MIN_GROWTH_BYTES, 200 * MIN_GROWTH_BYTES), true);
    assert.equal(filesystemHasRoom(200 * MIN_GROWTH_BYTES, 200 * MIN_GROWTH_BYTES), false);
    assert.equal(filesystemHasRoom(200 * MIN_GROWTH_BYTES, 100 * MIN_GROWTH_BYTES), false);
    assert.equal(filesystemHasRoom(Number.NaN, 100 * MIN_GROWTH_BYTES), false, 'an unreadable size is no room');
  });
});

describe('disk work: a tool the image lacks', () => {
  it('is recognised from what running it says (a warning, not a failed boot), and other errors are not', async () => {
    const err = await run('imprint-no-such-grow-tool', []).then(() => null, (e: unknown) => e);
    assert.equal(missingTool(err), 'imprint-no-such-grow-tool');
    const failed = await run('sh', ['-c', 'echo no room >&2; exit 1']).then(() => null, (e: unknown) => e);
    assert.equal(missingTool(failed), null);
  });
});

describe('disk work: swap areas and package commands', () => {
  it('reads /proc/swaps, with the kernel\'s octal escapes', () => {
    const text = 'Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority\n/dev/vda3                               partition\t1048572\t\t0\t\t-2\n/swap\\040file                           file\t\t524284\t\t0\t\t10\n';
    assert.deepEqual(parseProcSwaps(text), [{ name: '/dev/vda3', kind: 'partition', priority: -2 }, { name: '/swap file', kind: 'file', priority: 10 }]);
    assert.deepEqual(parseProcSwaps('Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority\n'), []);
  });

  it('finds the swap lines of an fstab, by path or tag, with octal escapes; comments and other types are not swap', () => {
    const text = '# /etc/fstab\nUUID=1b2c / ext4 defaults 0 1\nUUID=5c1e none swap sw 0 0\n  LABEL="my\\040swap"\tnone swap sw\n/swap\\040file none swap defaults 0 0\n#/dev/vdb1 none swap sw 0 0\n/dev/vdc1 /mnt/swap ext4 defaults\n';
    assert.deepEqual(fstabSwapSpecs(text), ['UUID=5c1e', 'LABEL="my swap"', '/swap file']);
    assert.deepEqual(fstabSwapSpecs(text).map(parseSwapSpec), [{ tag: 'UUID', value: '5c1e' }, { tag: 'LABEL', value: 'my swap' }, { path: '/swap file' }]);
    assert.equal(parseSwapSpec('swapfile'), null);
  });

  it('runs an upgrade command as a waited-for transient service with its bound and environment, output to the journal (no pipe)', () => {
    const args = transientServiceArgs('imprint-package-upgrade-1', 1270, { DEBIAN_FRONTEND: 'noninteractive' }, ['timeout', '--signal=TERM', '--kill-after=60', '1200', 'apt-get', '-q', 'update']);
    assert.deepEqual(args, ['--unit', 'imprint-package-upgrade-1', '--description', 'imprint: first-boot package upgrade (apt-get -q update)', '--quiet', '--collect', '--wait',
      '--property', 'RuntimeMaxSec=1270', '--setenv', 'DEBIAN_FRONTEND=noninteractive', '--', 'timeout', '--signal=TERM', '--kill-after=60', '1200', 'apt-get', '-q', 'update']);
  });

  it('upgrades non-interactively, keeping the image\'s changed config files', () => {
    const apt = upgradeCommands('apt').map((c) => [c.program, ...c.args].join(' '));
    assert.deepEqual(apt, ['apt-get -q update', 'apt-get -q -y -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold upgrade']);
    assert.deepEqual(upgradeCommands('dnf').map((c) => [c.program, ...c.args].join(' ')), ['dnf -y --refresh upgrade']);
  });
});
