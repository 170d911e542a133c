import { execFile } from 'node:child_process';
import { constants } from 'node:fs';
import { mkdir, mkdtemp, open, readFile, rm, statfs, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';

// Image files, loop devices and mounts that the disk tests make and always take down again.
// Only devices listed here are ever touched: never the machine's own disks or swap.

export const exec = promisify(execFile);

export class LoopDisks {
  readonly dir: Promise<string> = mkdtemp(path.join(tmpdir(), 'imprint-disk-'));
  private readonly loops: string[] = [];
  private readonly mounts: string[] = [];
  private readonly swaps: string[] = [];
  private readonly partitioned: string[] = [];

  async image(name: string, size: string): Promise<string> {
    const file = path.join(await this.dir, name);
    await writeFile(file, Buffer.alloc(0));
    await exec('truncate', ['-s', size, file]);
    return file;
  }

  async attach(file: string): Promise<string> {
    const loop = (await exec('losetup', ['--find', '--show', file])).stdout.trim();
    if (!/^\/dev\/loop\d+$/.test(loop)) throw new Error(`losetup gave ${loop}`);
    this.loops.push(loop);
    return loop;
  }

  /**
   * Partition nodes for a partitioned loop device: `partx --add` tells the kernel each
   * partition (BLKPG_ADD_PARTITION) and devtmpfs makes /dev/loopNpM. (losetup -P does not make
   * them on this machine.) The paths, or null when the kernel made none.
   */
  async addPartitions(loop: string): Promise<string[] | null> {
    this.partitioned.push(loop);
    // Nodes left from an earlier device of this name would be the old partitions: gone first.
    await untilNotBusy(() => exec('partx', ['--delete', loop]).then(() => undefined).catch((e: Error) => {
      if (/busy/i.test(e.message)) throw e;
    }));
    const added = await exec('partx', ['--add', loop]).then(() => true, () => false);
    if (!added) return null;
    const names = (await exec('lsblk', ['-n', '-r', '-o', 'PATH,TYPE', loop])).stdout.split('\n').map((l) => l.split(' '))
      .filter((f) => f[1] === 'part').map((f) => f[0] as string);
    // A partition node of an earlier loop device of the same name can come back with that
    // device's cached blocks (seen here: mkfs found the last test's filesystem on a new image).
    for (const n of names) await exec('blockdev', ['--flushbufs', n]);
    return names.length > 0 ? names : null;
  }

  /** Grows the image file and tells its loop device (as a cloud grows a volume). */
  async grow(file: string, loop: string, size: string): Promise<void> {
    await exec('truncate', ['-s', size, file]);
    await exec('losetup', ['-c', loop]);
  }

  /**
   * Switches a test swap area on, with the kernel's automatic priority: negative, below every
   * priority swapon -p can set, and below the machine's own areas, so nothing prefers it.
   * cleanup() switches it off again before anything else. A set priority is for the test of
   * keeping one; 0, the lowest swapon can set.
   */
  async swapOn(device: string, priority: number | null = null): Promise<void> {
    this.swaps.push(device);
    await exec('swapon', [...(priority === null ? [] : ['-p', String(priority)]), device]);
  }

  async mount(device: string, name: string): Promise<string> {
    const target = path.join(await this.dir, name);
    await mkdir(target, { recursive: true });
    await exec('mount', [device, target]);
    this.mounts.push(target);
    return target;
  }

  /** Binds a directory at a new mount point (as a container's root is bound from its host's disk). */
  async bind(dir: string, name: string): Promise<string> {
    const target = path.join(await this.dir, name);
    await mkdir(target, { recursive: true });
    await exec('mount', ['--bind', dir, target]);
    this.mounts.push(target);
    return target;
  }

  async unmount(target: string): Promise<void> {
    await exec('umount', [target]);
    this.mounts.splice(this.mounts.indexOf(target), 1);
  }

  async detach(loop: string): Promise<void> {
    await exec('losetup', ['-d', loop]);
    this.loops.splice(this.loops.indexOf(loop), 1);
  }

  async cleanup(): Promise<void> {
    for (const s of this.swaps) await exec('swapoff', [s]).catch(() => undefined);
    this.swaps.length = 0;
    for (const m of [...this.mounts].reverse()) await exec('umount', [m]).catch(() => exec('umount', ['-l', m]).catch(() => undefined));
    for (const l of this.partitioned) await untilNotBusy(() => exec('partx', ['--delete', l])).catch(() => undefined);
    this.partitioned.length = 0;
    for (const l of this.loops) await exec('losetup', ['-d', l]).catch(() => undefined);
    this.mounts.length = 0;
    this.loops.length = 0;
    await rm(await this.dir, { recursive: true, force: true });
  }
}

/** Bytes the mounted filesystem offers (df's size). */
export async function sizeOf(mountpoint: string): Promise<number> {
  const s = await statfs(mountpoint);
  return s.blocks * s.bsize;
}

/** A read-only check of the filesystem on an unmounted device; throws with its output if unclean. */
export async function fsckClean(fstype: string, device: string): Promise<void> {
  const [program, args] = fstype === 'xfs' ? ['xfs_repair', ['-n', device]]
    : fstype === 'btrfs' ? ['btrfs', ['check', '--readonly', device]]
      : ['e2fsck', ['-fn', device]];
  // An unmounted filesystem can live on for a while: a mount namespace made while it was
  // mounted (another test's sandbox or container starting) holds a copy of the mount until it
  // is gone, and only then is the filesystem's last state written. xfs_repair -n looks for
  // mounts in this namespace only, so it would read the old primary superblock ("would write
  // modified primary superblock"; seen at load 10 in the full suite). So: wait until nothing
  // holds the device (an exclusive open works), drop its page cache (blocks mkfs and blkid read
  // through it before the filesystem wrote past them), then check.
  await untilReleased(device);
  await exec('blockdev', ['--flushbufs', device]);
  await untilNotBusy(() => exec(program, args));
}

/** Waits (30 s at most) until no filesystem holds the block device: an O_EXCL open succeeds. */
export async function untilReleased(device: string): Promise<void> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    try {
      await (await open(device, constants.O_RDONLY | constants.O_EXCL)).close();
      return;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EBUSY') throw err;
      if (Date.now() > deadline) throw new Error(`${device} is still held 30 s after its unmount (mounted in another mount namespace?)`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}

/**
 * Runs fn again while it fails with EBUSY, for at most 10 s. Since Linux 6.9 a filesystem's
 * exclusive hold on its block device can be let go just after umount returns (the device file
 * is released by deferred work), so a check or partx right after an unmount may find it busy.
 */
export async function untilNotBusy<T>(fn: () => Promise<T>): Promise<T> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    try {
      return await fn();
    } catch (err) {
      if (!/busy/i.test(String((err as Error).message)) || Date.now() > deadline) throw err;
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}

/** Whether this process may resize a mounted ext4 (EXT4_IOC_RESIZE_FS needs CAP_SYS_RESOURCE). */
export async function canResizeMountedExt4(): Promise<boolean> {
  const status = await readFile('/proc/self/status', 'utf8');
  const eff = BigInt(`0x${/^CapEff:\s*([0-9a-f]+)/m.exec(status)?.[1] ?? '0'}`);
  return (eff & (1n << 24n)) !== 0n;
}

export const MiB = 1024 * 1024;
