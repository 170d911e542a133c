import { readFile, stat, statfs } from 'node:fs/promises';
import path from 'node:path';
import { crashPoint } from './crash.js';
import { ImprintError } from './errors.js';
import { run } from './exec.js';

// Block devices, partition tables and filesystem growth: every command imprint runs against a
// disk is here (findmnt, lsblk, sfdisk, partx, resize2fs, xfs_growfs, btrfs, blkdiscard, mkfs,
// mkswap, swapoff, swapon), with argument arrays, so what a root agent does to disks can be
// read in one place.

const QUERY_MS = 10_000;
/** Growing or zeroing a large disk takes long; the boot is past sshd's start by then. */
const WORK_MS = 30 * 60_000;

export interface MountedFs {
  /** The device, without findmnt's "[/path]" suffix. */
  source: string;
  /** The directory of the filesystem mounted here when it is not its top ("[/path]": a bind mount, a btrfs subvolume). */
  subpath: string | null;
  fstype: string;
  target: string;
}

/** The filesystem mounted exactly at dir (not the one dir happens to be on), or null. */
export async function filesystemMountedAt(dir: string): Promise<MountedFs | null> {
  // A directory on the same device as its parent is no mount point (or a bind mount from the
  // same filesystem, which is never grown either): said without running findmnt, as on every
  // boot of an offline tree.
  if (dir !== '/') {
    const [here, parent] = await Promise.all([stat(dir), stat(path.dirname(dir))]);
    if (here.dev === parent.dev) return null;
  }
  const found = await run('findmnt', ['-J', '-n', '--mountpoint', dir, '-o', 'SOURCE,FSTYPE,TARGET'], { okCodes: [1], timeoutMs: QUERY_MS });
  if (found.code !== 0 || found.stdout.trim() === '') return null;
  const parsed = JSON.parse(found.stdout) as { filesystems?: { source?: string; fstype?: string; target?: string }[] };
  // Over-mounts: the last one listed is the one visible at dir.
  const fs = parsed.filesystems?.at(-1);
  if (!fs?.source || !fs.fstype || !fs.target) return null;
  const sub = /\[(.*)\]$/.exec(fs.source)?.[1] ?? null;
  return { source: fs.source.replace(/\[.*\]$/, ''), subpath: sub === '/' ? null : sub, fstype: fs.fstype, target: fs.target };
}

export interface BlockDevice {
  /** Kernel name (sda1, nvme0n1p2, loop0, dm-0). */
  kname: string;
  path: string;
  /** lsblk's TYPE: disk, part, loop, lvm, crypt, dm, raid1, md... */
  type: string;
  /** Kernel name of the parent (the disk of a partition), or null. */
  parent: string | null;
  sizeBytes: number;
}

interface LsblkRow { kname?: string; path?: string; type?: string; pkname?: string | null; size?: number; mountpoints?: (string | null)[]; children?: LsblkRow[] }

async function lsblk(device: string, columns: string, alsoChildren: boolean): Promise<LsblkRow[]> {
  const args = ['-J', '-b', '-o', columns, ...(alsoChildren ? [] : ['-d']), device];
  const out = await run('lsblk', args, { timeoutMs: QUERY_MS });
  return (JSON.parse(out.stdout) as { blockdevices?: LsblkRow[] }).blockdevices ?? [];
}

/** What the kernel says about one block device; null when the path is not one. */
export async function blockDevice(device: string): Promise<BlockDevice | null> {
  const info = await stat(device).catch(() => null);
  if (!info?.isBlockDevice()) return null;
  const row = (await lsblk(device, 'KNAME,PATH,TYPE,PKNAME,SIZE', false))[0];
  if (!row?.kname || !row.type) return null;
  return { kname: row.kname, path: row.path ?? device, type: row.type, parent: row.pkname ?? null, sizeBytes: row.size ?? 0 };
}

/** The partition number of a partition (from sysfs), or null for a whole device. */
export async function partitionNumber(kname: string): Promise<number | null> {
  const text = await readFile(`/sys/class/block/${kname}/partition`, 'utf8').catch(() => null);
  const n = text === null ? NaN : Number.parseInt(text, 10);
  return Number.isInteger(n) && n > 0 ? n : null;
}

/** Where the device, or anything on it (partitions, device-mapper holders), is mounted. */
export async function mountpointsOn(device: string): Promise<string[]> {
  const rows = await lsblk(device, 'KNAME,MOUNTPOINTS', true);
  const out: string[] = [];
  const walk = (r: LsblkRow): void => {
    for (const m of r.mountpoints ?? []) if (m) out.push(m);
    for (const c of r.children ?? []) walk(c);
  };
  rows.forEach(walk);
  return out;
}

/** Kernel names of the device and everything on it (its partitions, holders). */
export async function kernelNamesOn(device: string): Promise<string[]> {
  const rows = await lsblk(device, 'KNAME', true);
  const out: string[] = [];
  const walk = (r: LsblkRow): void => {
    if (r.kname) out.push(r.kname);
    for (const c of r.children ?? []) walk(c);
  };
  rows.forEach(walk);
  return out;
}

/** Size in bytes of a disk: a block device's, or an image file's. */
export async function diskBytes(disk: string): Promise<number> {
  const info = await stat(disk);
  if (info.isFile()) return info.size;
  const out = await run('blockdev', ['--getsize64', disk], { timeoutMs: QUERY_MS });
  return Number.parseInt(out.stdout.trim(), 10);
}

export interface TablePartition {
  number: number;
  /** In sectors. */
  start: number;
  size: number;
}

export interface PartitionTable {
  label: string;
  sectorSize: number;
  partitions: TablePartition[];
}

/** The partition table of a disk or image file (sfdisk --json); null when it has none. */
export async function readPartitionTable(disk: string): Promise<PartitionTable | null> {
  const out = await run('sfdisk', ['--json', disk], { okCodes: [1], timeoutMs: QUERY_MS });
  if (out.code !== 0 || out.stdout.trim() === '') return null;
  const table = (JSON.parse(out.stdout) as { partitiontable?: { label?: string; sectorsize?: number; partitions?: { node?: string; start?: number; size?: number }[] } }).partitiontable;
  if (!table?.label) return null;
  const partitions = (table.partitions ?? []).map((p) => ({
    number: Number.parseInt(/(\d+)$/.exec(p.node ?? '')?.[1] ?? '0', 10),
    start: p.start ?? 0,
    size: p.size ?? 0,
  }));
  return { label: table.label, sectorSize: table.sectorsize ?? 512, partitions };
}

/**
 * Grows partition `number` to the end of the disk, the way growpart does: sfdisk rewrites the
 * table (moving a GPT's backup header to the new end) without asking the kernel to re-read a
 * disk that is in use. Nothing else in the table changes; the start stays where it is.
 */
export async function growPartitionToEnd(disk: string, number: number): Promise<void> {
  crashPoint(`before sfdisk -N ${number} ${disk}`);
  await run('sfdisk', ['--no-reread', '--no-tell-kernel', '-q', '-N', String(number), disk], { input: ', +\n', timeoutMs: QUERY_MS * 6 });
  crashPoint(`after sfdisk -N ${number} ${disk}`);
}

/** Tells the kernel a partition's new size (BLKPG_RESIZE_PARTITION), while it is mounted. */
export async function tellKernelPartitionSize(disk: string, number: number): Promise<void> {
  await run('partx', ['--update', '--nr', String(number), disk], { timeoutMs: QUERY_MS });
  crashPoint(`after partx --update ${disk}`);
}

export type GrowableFs = 'ext2' | 'ext3' | 'ext4' | 'xfs' | 'btrfs';
export const GROWABLE_FILESYSTEMS: readonly GrowableFs[] = ['ext2', 'ext3', 'ext4', 'xfs', 'btrfs'];

const field = (text: string, pattern: RegExp): number => Number.parseInt(pattern.exec(text)?.[1] ?? 'NaN', 10);

/** How many bytes of its device the filesystem spans (its own record, not df's). */
export async function filesystemBytes(fstype: GrowableFs, device: string, mountpoint: string): Promise<number> {
  if (fstype === 'xfs') {
    const info = (await run('xfs_info', [mountpoint], { timeoutMs: QUERY_MS })).stdout;
    // "data     =                       bsize=4096   blocks=16384, imaxpct=25"
    const data = /^data\s*=.*$/m.exec(info)?.[0] ?? '';
    return field(data, /bsize=(\d+)/) * field(data, /blocks=(\d+)/);
  }
  if (fstype === 'btrfs') {
    const show = (await run('btrfs', ['filesystem', 'show', '--raw', mountpoint], { timeoutMs: QUERY_MS })).stdout;
    const line = show.split('\n').find((l) => /\bdevid\s+\d+/.test(l) && l.trim().endsWith(` ${device}`)) ?? '';
    return field(line, /\bsize\s+(\d+)/);
  }
  const header = (await run('dumpe2fs', ['-h', device], { timeoutMs: QUERY_MS })).stdout;
  return field(header, /^Block count:\s+(\d+)/m) * field(header, /^Block size:\s+(\d+)/m);
}

/** The number of devices of a btrfs filesystem (growing one of several is not this task's call). */
export async function btrfsDeviceCount(mountpoint: string): Promise<number> {
  const show = (await run('btrfs', ['filesystem', 'show', '--raw', mountpoint], { timeoutMs: QUERY_MS })).stdout;
  return field(show, /Total devices\s+(\d+)/);
}

/** Grows a mounted filesystem to fill its device, online. */
export async function growFilesystem(fstype: GrowableFs, device: string, mountpoint: string): Promise<void> {
  const [program, args]: [string, string[]] = fstype === 'xfs' ? ['xfs_growfs', [mountpoint]]
    : fstype === 'btrfs' ? ['btrfs', ['filesystem', 'resize', 'max', mountpoint]]
      : ['resize2fs', [device]];
  crashPoint(`before ${program} ${device}`);
  await run(program, args, {
    timeoutMs: WORK_MS,
    onSpawn: (child) => crashPoint(`during ${program} ${device}`, () => child.kill('SIGKILL')),
  });
  crashPoint(`after ${program} ${device}`);
}

/** Bytes the mounted filesystem offers (df's size): what a user sees grow. */
export async function mountedSizeBytes(mountpoint: string): Promise<number> {
  const s = await statfs(mountpoint);
  return s.blocks * s.bsize;
}

/** Writes zeros over the whole device (the kernel's BLKZEROOUT: fast where the disk offloads it). */
export async function zeroDevice(device: string): Promise<void> {
  crashPoint(`before blkdiscard --zeroout ${device}`);
  await run('blkdiscard', ['--zeroout', device], { timeoutMs: WORK_MS });
}

export type EphemeralFs = 'ext4' | 'xfs' | 'btrfs' | 'swap';

/** Makes a new filesystem (or swap area) on a device, with a label when given. */
export async function makeFilesystem(fstype: EphemeralFs, device: string, label: string | null): Promise<void> {
  const labelArgs = label ? ['-L', label] : [];
  const [program, args]: [string, string[]] = fstype === 'swap' ? ['mkswap', [...labelArgs, device]]
    : fstype === 'xfs' ? ['mkfs.xfs', ['-q', '-f', ...labelArgs, device]]
      : fstype === 'btrfs' ? ['mkfs.btrfs', ['-q', '-f', ...labelArgs, device]]
        : ['mkfs.ext4', ['-q', '-F', ...labelArgs, device]];
  await run(program, args, { timeoutMs: WORK_MS });
}

/** What blkid says the device holds (TYPE, LABEL, UUID...); empty when nothing it knows. */
export async function probeDevice(device: string): Promise<Record<string, string>> {
  const out = await run('blkid', ['-p', '-o', 'export', device], { okCodes: [2], timeoutMs: QUERY_MS });
  const fields: Record<string, string> = {};
  for (const line of out.stdout.split('\n')) {
    const eq = line.indexOf('=');
    if (eq > 0) fields[line.slice(0, eq)] = line.slice(eq + 1);
  }
  return fields;
}

export interface ActiveSwap {
  /** The device or file, as /proc/swaps names it. */
  name: string;
  kind: 'partition' | 'file';
  /** The kernel's priority: one swapon -p set (0 and up), or an automatic one (negative). */
  priority: number;
}

/** Parses /proc/swaps (octal escapes for spaces in names, as the kernel writes them). */
export function parseProcSwaps(text: string): ActiveSwap[] {
  return text.split('\n').slice(1).map((l) => l.trim().split(/\s+/)).filter((f) => f.length >= 2 && f[0] !== '')
    .map((f) => ({
      name: (f[0] as string).replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(Number.parseInt(o, 8))),
      kind: f[1] === 'file' ? 'file' : 'partition',
      priority: Number.parseInt(f[4] ?? '-1', 10),
    }));
}

export async function activeSwaps(): Promise<ActiveSwap[]> {
  return parseProcSwaps(await readFile('/proc/swaps', 'utf8').catch(() => ''));
}

/** Frees the page cache first (so swapoff has room to bring pages back), as the guide does. */
export async function dropCaches(): Promise<void> {
  await run('sync', [], { timeoutMs: WORK_MS });
  await run('sysctl', ['-q', 'vm.drop_caches=3'], { timeoutMs: QUERY_MS });
}

export async function swapOff(name: string): Promise<void> {
  await run('swapoff', [name], { timeoutMs: WORK_MS });
}

/**
 * Switches an area on again with the priority it had when it was set (fstab's pri=, swapon
 * -p); an automatic one (negative) cannot be given back and is the kernel's to choose again.
 */
export async function swapOn(name: string, priority: number): Promise<void> {
  await run('swapon', [...(priority >= 0 ? ['-p', String(priority)] : []), name], { timeoutMs: QUERY_MS * 6 });
}

/**
 * What a path is, for telling whether two names are the same swap area: a block device by its
 * device number, a file by its filesystem and inode; null when it does not exist.
 */
export async function nodeIdentity(file: string): Promise<string | null> {
  const st = await stat(file).catch(() => null);
  if (!st) return null;
  return st.isBlockDevice() ? `block:${st.rdev}` : `file:${st.dev}:${st.ino}`;
}

/** Zeros a swap file in place (its blocks stay where they are, as swap files need). */
export async function zeroFileInPlace(file: string): Promise<void> {
  const size = (await stat(file)).size;
  // conv=fsync: the zeros must be on disk before mkswap and swapon reuse the blocks (the old swap's secrets).
  await run('dd', ['if=/dev/zero', `of=${file}`, 'bs=1M', `count=${size}`, 'iflag=count_bytes', 'conv=notrunc,fsync', 'status=none'], { timeoutMs: WORK_MS });
}

/** A fresh swap signature that keeps the UUID and label fstab may name it by. */
export async function remakeSwap(name: string, uuid: string | null, label: string | null): Promise<void> {
  await run('mkswap', [...(uuid ? ['-U', uuid] : []), ...(label ? ['-L', label] : []), name], { timeoutMs: QUERY_MS * 6 });
}

export function describeBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i += 1;
  }
  return `${Number.isInteger(v) ? v : v.toFixed(1)} ${units[i]}`;
}

export function assertAbsoluteDevice(device: string): void {
  if (!/^\/dev\/[A-Za-z0-9._\/-]+$/.test(device) || device.includes('..')) throw new ImprintError(`${device} is not a /dev path`);
}
