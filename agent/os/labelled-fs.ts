import { mkdtemp, readFile, readlink, rmdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { run } from './exec.js';

// Seed filesystems (NoCloud "cidata", OpenStack config drive "config-2") on a booted instance:
// found by label, mounted read-only and inert (nosuid,nodev,noexec) in a private temporary
// directory, read, and unmounted again.

async function deviceWithLabel(labels: string[]): Promise<string | null> {
  for (const label of labels) {
    try {
      return path.resolve('/dev/disk/by-label', await readlink(`/dev/disk/by-label/${label}`));
    } catch {
      /* not there under this spelling, or no udev links at all (early boot, containers) */
    }
  }
  // Without udev's links, blkid probes the block devices itself (exit 2: no such label).
  for (const label of labels) {
    const found = await run('blkid', ['-l', '-t', `LABEL=${label}`, '-o', 'device'], { okCodes: [2], timeoutMs: 10_000 }).catch(() => null);
    const device = found?.stdout.trim();
    if (device && device.startsWith('/dev/')) return device;
  }
  return null;
}

/** Reads the named files from the filesystem with one of the labels; null when there is none. */
export async function readLabelledFs(labels: string[], files: string[], maxBytes: number): Promise<Map<string, string> | null> {
  const device = await deviceWithLabel(labels);
  if (!device) return null;
  const mountPoint = await mkdtemp(path.join(tmpdir(), 'imprint-seed-'));
  try {
    await run('mount', ['-o', 'ro,nosuid,nodev,noexec,noatime', device, mountPoint], { timeoutMs: 10_000 });
    try {
      const out = new Map<string, string>();
      for (const file of files) {
        const data = await readFile(path.join(mountPoint, file)).catch(() => null);
        if (data !== null && data.length <= maxBytes) out.set(file, data.toString('utf8'));
      }
      return out;
    } finally {
      await run('umount', [mountPoint], { timeoutMs: 10_000 }).catch(() => undefined);
    }
  } finally {
    await rmdir(mountPoint).catch(() => undefined);
  }
}
