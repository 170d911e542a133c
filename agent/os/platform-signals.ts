import { open } from 'node:fs/promises';
import { run } from './exec.js';
import { listTreeDir, readTreeFile, statTree } from './files.js';
import type { RootTree } from './root.js';

// The local facts platform detection decides on, read before any network use: the DMI strings
// the firmware sets, Xen's hypervisor UUID, the kernel command line and the labels of attached
// filesystems. On a booted system they come from /sys, /proc and /dev; with --root from the
// same paths inside the tree (tests give fixture trees), and then no link is followed, so a
// tree cannot make imprint read this host's own DMI.

export const DMI_FIELDS = ['sys_vendor', 'product_name', 'product_serial', 'chassis_asset_tag', 'product_uuid', 'bios_vendor'] as const;
export type DmiField = (typeof DMI_FIELDS)[number];

export interface PlatformSignals {
  /** Trimmed DMI strings; a field the system does not have is absent. */
  dmi: Partial<Record<DmiField, string>>;
  /** /sys/hypervisor/uuid (Xen guests), trimmed, or absent. */
  hypervisorUuid?: string;
  /** Kernel command line words. */
  cmdline: string[];
  /** Filesystem labels seen under /dev/disk/by-label (or, with no udev links, by blkid). */
  labels: string[];
}

const MAX_SIGNAL_BYTES = 4096;

/** A small sysfs/procfs file: sysfs reports size 4096 whatever it holds, so read, do not stat. */
async function readLiveSmall(file: string): Promise<string | null> {
  const handle = await open(file, 'r').catch(() => null);
  if (!handle) return null;
  try {
    const buf = Buffer.alloc(MAX_SIGNAL_BYTES);
    const { bytesRead } = await handle.read(buf, 0, MAX_SIGNAL_BYTES, 0);
    return buf.subarray(0, bytesRead).toString('utf8');
  } catch {
    return null; // product_serial is root-only; EACCES means "not known"
  } finally {
    await handle.close();
  }
}

async function readSignal(root: RootTree, file: string): Promise<string | undefined> {
  let text: string | null;
  if (root.isLive) text = await readLiveSmall(file);
  else text = await readTreeFile(root, file, MAX_SIGNAL_BYTES).then((b) => (b === null ? null : b.toString('utf8')), () => null);
  const clean = text?.replace(/\0/g, '').trim();
  return clean ? clean : undefined;
}

/**
 * The labels udev links under /dev/disk/by-label. A booted system without those links at all
 * (no udev: a container; udev not yet through its coldplug) is asked with blkid, as seed
 * reading does (labelled-fs.ts), so a context CD attached there is not missed. A tree is
 * never probed: its /dev is not this machine's.
 */
async function readLabels(root: RootTree): Promise<string[]> {
  const linked = await listTreeDir(root, '/dev/disk/by-label').catch(() => []);
  if (!root.isLive || linked.length > 0 || (await statTree(root, '/dev/disk/by-label').catch(() => null))) return linked;
  // -c /dev/null: probe the devices now, not a cache written before this boot; exit 2: no labels.
  const found = await run('blkid', ['-c', '/dev/null', '-s', 'LABEL', '-o', 'value'], { okCodes: [2], timeoutMs: 10_000 }).catch(() => null);
  return [...new Set((found?.stdout ?? '').split('\n').map((l) => l.trim()).filter(Boolean))].sort();
}

export async function readPlatformSignals(root: RootTree): Promise<PlatformSignals> {
  const dmi: PlatformSignals['dmi'] = {};
  await Promise.all(DMI_FIELDS.map(async (field) => {
    const value = await readSignal(root, `/sys/class/dmi/id/${field}`);
    if (value !== undefined) dmi[field] = value;
  }));
  const hypervisorUuid = await readSignal(root, '/sys/hypervisor/uuid');
  const cmdline = (await readSignal(root, '/proc/cmdline'))?.split(/\s+/).filter(Boolean) ?? [];
  const labels = await readLabels(root);
  return { dmi, cmdline, labels, ...(hypervisorUuid === undefined ? {} : { hypervisorUuid }) };
}
