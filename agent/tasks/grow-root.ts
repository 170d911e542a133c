import type { Task, TaskContext } from '../boot/task.js';
import type { TaskRecorder } from '../boot/report.js';
import {
  blockDevice, btrfsDeviceCount, describeBytes, diskBytes, filesystemBytes, filesystemMountedAt, GROWABLE_FILESYSTEMS, growFilesystem,
  growPartitionToEnd, mountedSizeBytes, partitionNumber, readPartitionTable, tellKernelPartitionSize,
  type BlockDevice, type GrowableFs, type MountedFs, type PartitionTable,
} from '../os/block-devices.js';
import { errorMessage, ImprintError } from '../os/errors.js';

// Grow the root partition and filesystem when the disk is bigger than the image was (EGI:
// "enable partition grow and resizefs"). At every boot, after the network phase: sshd is
// already up. Only the root's own disk, only when the root partition is the last one on it,
// only ever larger; device-mapper (LVM, dm-crypt) and md RAID roots are left alone.

/** Less room than this is not worth a rewrite of the partition table (growpart's rule too). */
export const MIN_GROWTH_BYTES = 1024 * 1024;

export type RootLayout =
  | { kind: 'partition'; device: BlockDevice; disk: string; number: number }
  | { kind: 'whole-disk'; device: BlockDevice }
  | { kind: 'skip'; why: string };

/** Where the root filesystem lives, and whether imprint may grow what it lives on. */
export function classifyRoot(source: string, device: BlockDevice | null, parent: BlockDevice | null, number: number | null, bindOf: string | null = null): RootLayout {
  // A directory of a filesystem bound at the root is a container's root on its host's disk:
  // that disk is the host's, never this system's to grow.
  if (bindOf !== null) return { kind: 'skip', why: `the root is ${bindOf} of the filesystem on ${source} (a bind mount, as in a container): not grown` };
  if (!device) return { kind: 'skip', why: `the root filesystem is on ${source}, not a block device: nothing to grow` };
  const t = device.type;
  if (t === 'lvm' || t === 'crypt' || t === 'dm' || t === 'mpath') return { kind: 'skip', why: `the root filesystem is on a device-mapper device (${device.path}, ${t}: LVM, dm-crypt or multipath): not grown; grow it with the tools of that layer` };
  if (t.startsWith('raid') || t === 'md') return { kind: 'skip', why: `the root filesystem is on an md RAID device (${device.path}, ${t}): not grown` };
  if (t === 'disk' || t === 'loop') return { kind: 'whole-disk', device };
  if (t !== 'part') return { kind: 'skip', why: `the root filesystem is on a ${t} device (${device.path}): not grown` };
  if (!parent || number === null) return { kind: 'skip', why: `cannot tell which disk holds ${device.path}: not grown` };
  if (parent.type !== 'disk' && parent.type !== 'loop') return { kind: 'skip', why: `${device.path} is a partition of ${parent.path} (${parent.type}), not of a plain disk: not grown` };
  return { kind: 'partition', device, disk: parent.path, number };
}

export type PartitionPlan =
  | { grow: true; number: number; fromSectors: number; toSectors: number; sectorSize: number }
  | { grow: false; why: string };

/**
 * Whether partition `number` can grow, and to about how many sectors: it must be the last on
 * the disk (no partition starts after it), a primary one, and the disk must have at least
 * MIN_GROWTH_BYTES past its end (a GPT keeps its backup table in the last sectors).
 */
export function planPartition(table: PartitionTable, number: number, diskSize: number): PartitionPlan {
  const mine = table.partitions.find((p) => p.number === number);
  if (!mine) return { grow: false, why: `partition ${number} is not in the partition table` };
  if (table.label === 'dos' && number > 4) return { grow: false, why: `partition ${number} is a logical partition inside an extended one: not grown` };
  const after = table.partitions.filter((p) => p.start > mine.start);
  if (after.length > 0) return { grow: false, why: `partition ${number} is not the last on its disk (partition ${after.map((p) => p.number).join(', ')} follows): not grown` };
  const sectors = Math.floor(diskSize / table.sectorSize);
  const reserved = table.label === 'gpt' ? 1 + Math.ceil((128 * 128) / table.sectorSize) : 0;
  const end = sectors - reserved;
  const room = (end - (mine.start + mine.size)) * table.sectorSize;
  if (room < MIN_GROWTH_BYTES) {
    return { grow: false, why: room < 0 ? `partition ${number} already reaches past the end of the disk: not touched (never shrunk)` : `partition ${number} already fills its disk` };
  }
  return { grow: true, number, fromSectors: mine.size, toSectors: end - mine.start, sectorSize: table.sectorSize };
}

/** The filesystem is grown only when its device has room past it: never to a smaller size. */
export function filesystemHasRoom(fsBytes: number, deviceBytes: number): boolean {
  return Number.isFinite(fsBytes) && deviceBytes - fsBytes >= MIN_GROWTH_BYTES;
}

interface RootFacts {
  mount: MountedFs;
  layout: RootLayout;
}

async function rootFacts(ctx: TaskContext): Promise<RootFacts | string> {
  const mount = await filesystemMountedAt(ctx.root.dir);
  if (!mount) return `${ctx.root.dir} is not a mount point: no root filesystem to grow (an offline tree)`;
  const bindOf = mount.fstype === 'btrfs' ? null : mount.subpath; // btrfs: a subvolume, the usual root
  if (bindOf !== null) return { mount, layout: classifyRoot(mount.source, null, null, null, bindOf) };
  const device = mount.source.startsWith('/dev/') ? await blockDevice(mount.source) : null;
  const parent = device?.type === 'part' && device.parent ? await blockDevice(`/dev/${device.parent}`) : null;
  const number = device?.type === 'part' ? await partitionNumber(device.kname) : null;
  return { mount, layout: classifyRoot(mount.source, device, parent, number) };
}

function growableFs(fstype: string): GrowableFs | null {
  return (GROWABLE_FILESYSTEMS as readonly string[]).includes(fstype) ? fstype as GrowableFs : null;
}

const sectorsText = (sectors: number, sectorSize: number): string => describeBytes(sectors * sectorSize);

/**
 * Grows partition `number` of `disk` (a block device, or an image file in tests) to the end of
 * the disk when it is the last one and the disk has room; a block device's kernel is told the
 * new size. Checked again after the write: a start that moved or a smaller size is an error.
 */
export async function growPartitionStep(disk: string, number: number): Promise<{ changed: boolean; line: string }> {
  const table = await readPartitionTable(disk);
  if (!table) throw new ImprintError(`${disk} holds the root partition but sfdisk reads no partition table on it`);
  const plan = planPartition(table, number, await diskBytes(disk));
  if (!plan.grow) return { changed: false, line: plan.why };
  const before = table.partitions.find((p) => p.number === number);
  await growPartitionToEnd(disk, plan.number);
  const after = (await readPartitionTable(disk))?.partitions.find((p) => p.number === number);
  if (!before || !after || after.start !== before.start || after.size < before.size) {
    throw new ImprintError(`sfdisk left partition ${number} of ${disk} at ${JSON.stringify(after ?? null)}, was ${JSON.stringify(before ?? null)}`);
  }
  if ((await blockDevice(disk)) !== null) await tellKernelPartitionSize(disk, number);
  return { changed: true, line: `grew partition ${number} of ${disk} from ${sectorsText(before.size, table.sectorSize)} to ${sectorsText(after.size, table.sectorSize)}` };
}

/** The program an error says is not installed (exec.ts's wording), or null. */
export function missingTool(err: unknown): string | null {
  return /^(\S+): not installed$/.exec(errorMessage(err))?.[1] ?? null;
}

export const growRootTask: Task = {
  name: 'grow-root',
  phase: 'late',
  after: [],
  everyBoot: true,

  disabledBecause: (cfg) => (cfg.growRoot.enabled ? null : 'grow_root.enabled is false'),

  async plan(ctx) {
    const facts = await rootFacts(ctx);
    if (typeof facts === 'string') return [facts];
    const { mount, layout } = facts;
    if (layout.kind === 'skip') return [layout.why];
    const lines: string[] = [];
    if (layout.kind === 'partition') {
      const table = await readPartitionTable(layout.disk);
      const plan = table ? planPartition(table, layout.number, await diskBytes(layout.disk)) : { grow: false as const, why: `${layout.disk} has no partition table` };
      lines.push(plan.grow
        ? `would grow partition ${plan.number} of ${layout.disk} from ${sectorsText(plan.fromSectors, plan.sectorSize)} to about ${sectorsText(plan.toSectors, plan.sectorSize)}`
        : plan.why);
    }
    const fstype = growableFs(mount.fstype);
    lines.push(fstype ? `would grow the ${fstype} filesystem on ${mount.source} to fill its device` : `the root filesystem is ${mount.fstype}: imprint grows ext2/3/4, xfs and btrfs only`);
    return lines;
  },

  async run(ctx: TaskContext, rec: TaskRecorder) {
    try {
      return await growRoot(ctx, rec);
    } catch (err) {
      // A tool the image does not have (sfdisk is in Debian's fdisk package, xfs_growfs in
      // xfsprogs) is a gap in the image, not a failed boot: a warning at every boot.
      const missing = missingTool(err);
      if (!missing) throw err;
      rec.warn(`${missing} is not installed: the root ${missing === 'sfdisk' || missing === 'partx' ? 'partition' : 'filesystem'} cannot grow (install it in the image)`);
      return 'skipped';
    }
  },
};

async function growRoot(ctx: TaskContext, rec: TaskRecorder): Promise<'skipped' | undefined> {
  const facts = await rootFacts(ctx);
  if (typeof facts === 'string') {
    rec.verbose(facts); // the usual --root case: said with --verbose, like a task that is off
    return 'skipped';
  }
  const { mount, layout } = facts;
  if (layout.kind === 'skip') {
    rec.action(layout.why);
    return 'skipped';
  }
  rec.detail('device', mount.source);
  rec.detail('fstype', mount.fstype);
  let changed = false;
  if (layout.kind === 'partition') {
    const step = await growPartitionStep(layout.disk, layout.number);
    rec.action(step.line);
    changed = step.changed;
  }
  const fstype = growableFs(mount.fstype);
  if (!fstype) {
    rec.action(`the root filesystem is ${mount.fstype}: imprint grows ext2/3/4, xfs and btrfs only; not grown`);
    return changed ? undefined : 'skipped';
  }
  if (fstype === 'btrfs' && (await btrfsDeviceCount(mount.target)) !== 1) {
    rec.action('the root btrfs filesystem spans several devices: not grown (btrfs filesystem resize names the device to grow)');
    return changed ? undefined : 'skipped';
  }
  const device = await blockDevice(mount.source);
  const deviceSize = device?.sizeBytes ?? 0;
  const fsSize = await filesystemBytes(fstype, mount.source, mount.target);
  if (!filesystemHasRoom(fsSize, deviceSize)) {
    rec.action(`the ${fstype} filesystem already fills ${mount.source} (${describeBytes(deviceSize)})`);
    return changed ? undefined : 'skipped';
  }
  const before = await mountedSizeBytes(mount.target);
  await growFilesystem(fstype, mount.source, mount.target);
  const after = await mountedSizeBytes(mount.target);
  rec.detail('sizeBytes', { before, after });
  if (after <= before) throw new ImprintError(`the ${fstype} grow tool ran but ${mount.target} is still ${describeBytes(after)}`);
  rec.action(`grew the ${fstype} filesystem on ${mount.source} from ${describeBytes(before)} to ${describeBytes(after)}`);
  return undefined;
}
