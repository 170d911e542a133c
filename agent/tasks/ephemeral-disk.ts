import type { Task, TaskContext } from '../boot/task.js';
import {
  activeSwaps, blockDevice, filesystemMountedAt, kernelNamesOn, makeFilesystem, mountpointsOn, probeDevice, zeroDevice, describeBytes,
} from '../os/block-devices.js';
import { ImprintError } from '../os/errors.js';

// Wipe the ephemeral disk on an instance's first boot (Eucalyptus: zero it, then make a
// filesystem), so a new instance never reads what an earlier tenant left on it. The device is
// named in the config, never guessed; a device that is mounted, in use as swap, or that holds
// the root filesystem is refused.

/** Why the device must not be wiped, or null. */
export async function refusalFor(ctx: TaskContext, device: string): Promise<string | null> {
  const dev = await blockDevice(device);
  if (!dev) return `${device} is not a block device`;
  const names = await kernelNamesOn(device);
  const root = await filesystemMountedAt(ctx.root.dir);
  const rootDev = root?.source.startsWith('/dev/') ? await blockDevice(root.source) : null;
  if (rootDev && names.includes(rootDev.kname)) return `${device} holds the root filesystem (${root?.source}): never wiped`;
  const mounted = await mountpointsOn(device);
  if (mounted.length > 0) return `${device} is mounted (${mounted.join(', ')}): not wiped`;
  for (const swap of await activeSwaps()) {
    if (swap.kind !== 'partition') continue;
    const s = await blockDevice(swap.name);
    if (s && names.includes(s.kname)) return `${device} is in use as swap (${swap.name}): not wiped`;
  }
  return null;
}

async function offlineReason(ctx: TaskContext): Promise<string | null> {
  // An unmounted tree (an image being prepared) is not a booted instance: the named device is
  // the build machine's, not this image's.
  if (ctx.root.isLive || (await filesystemMountedAt(ctx.root.dir))) return null;
  return `--root ${ctx.root.dir} is an offline tree, not a booted root: the ephemeral disk is not touched`;
}

export const ephemeralDiskTask: Task = {
  name: 'ephemeral-disk',
  phase: 'late',
  after: [],

  disabledBecause: (cfg) => (cfg.ephemeralDisk.device === null ? 'no ephemeral_disk.device in the config' : null),

  async plan(ctx) {
    const { device, filesystem, label } = ctx.config.ephemeralDisk;
    if (device === null) return [];
    const offline = await offlineReason(ctx);
    if (offline) return [offline];
    const refused = await refusalFor(ctx, device);
    if (refused) return [`would refuse: ${refused}`];
    return [`would zero ${device}${filesystem === 'none' ? '' : `, then make ${filesystem}${label ? ` labelled ${label}` : ''} on it`}`];
  },

  async run(ctx, rec) {
    const { device, filesystem, label } = ctx.config.ephemeralDisk;
    if (device === null) return 'skipped';
    const offline = await offlineReason(ctx);
    if (offline) {
      rec.action(offline);
      return 'skipped';
    }
    const refused = await refusalFor(ctx, device);
    if (refused) throw new ImprintError(refused);
    const size = (await blockDevice(device))?.sizeBytes ?? 0;
    await zeroDevice(device);
    rec.action(`zeroed ${device} (${describeBytes(size)})`);
    if (filesystem === 'none') return undefined;
    await makeFilesystem(filesystem, device, label);
    const made = await probeDevice(device);
    rec.detail('filesystem', { type: made.TYPE ?? null, uuid: made.UUID ?? null, label: made.LABEL ?? null });
    rec.action(`made ${filesystem} on ${device}${label ? ` labelled ${label}` : ''}${made.UUID ? ` (UUID ${made.UUID})` : ''}`);
    return undefined;
  },
};
