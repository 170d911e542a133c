import type { Task } from '../boot/task.js';
import {
  activeSwaps, dropCaches, probeDevice, remakeSwap, swapOff, swapOn, zeroDevice, zeroFileInPlace, type ActiveSwap,
} from '../os/block-devices.js';
import { errorMessage, ImprintError } from '../os/errors.js';

// Clear swap at every boot (Eucalyptus: "sync && sysctl vm.drop_caches=3 && swapoff -a &&
// swapon -a"). swapoff alone brings the pages back into memory but leaves them on the disk, so
// each area is also zeroed and given a fresh swap signature with its old UUID and label (fstab
// names swap by those) before it is switched on again. Swap is the machine's, never a tree's:
// with --root nothing is touched.

/** Zeros a swap area that is switched off and makes it a swap area again, same UUID and label. */
export async function reinitializeSwapArea(area: ActiveSwap): Promise<{ uuid: string | null; label: string | null }> {
  const probed = await probeDevice(area.name);
  if (probed.TYPE !== 'swap') throw new ImprintError(`${area.name} does not hold a swap signature (blkid says ${probed.TYPE ?? 'nothing'}): not zeroed`);
  const uuid = probed.UUID ?? null;
  const label = probed.LABEL ?? null;
  if (area.kind === 'file') await zeroFileInPlace(area.name);
  else await zeroDevice(area.name);
  await remakeSwap(area.name, uuid, label);
  return { uuid, label };
}

export const clearSwapTask: Task = {
  name: 'clear-swap',
  phase: 'late',
  after: [],
  everyBoot: true,

  disabledBecause: (cfg) => (cfg.swap.clear ? null : 'swap.clear is false'),

  async plan(ctx) {
    if (!ctx.root.isLive) return ['--root: swap belongs to the machine, not to the tree; nothing would be touched'];
    const swaps = await activeSwaps();
    if (swaps.length === 0) return ['no swap in use'];
    return [`would drop caches, then switch off, zero, re-make (same UUID and label) and switch on ${swaps.map((s) => s.name).join(', ')}`];
  },

  async run(ctx, rec) {
    if (!ctx.root.isLive) {
      rec.action('--root: swap belongs to the machine, not to the tree; not touched');
      return 'skipped';
    }
    const swaps = await activeSwaps();
    if (swaps.length === 0) {
      rec.action('no swap in use');
      return 'skipped';
    }
    await dropCaches();
    const failed: string[] = [];
    for (const area of swaps) {
      try {
        await swapOff(area.name);
      } catch (err) {
        // Not enough memory to take the pages back: the area stays on, as it was.
        rec.warn(`could not switch off ${area.name} (${errorMessage(err)}); left on, not cleared`);
        failed.push(area.name);
        continue;
      }
      try {
        await reinitializeSwapArea(area);
        await swapOn(area.name);
        rec.action(`cleared ${area.name}: switched off, zeroed, re-made and switched on`);
      } catch (err) {
        rec.warn(`${area.name} is switched off and not back on: ${errorMessage(err)}`);
        failed.push(area.name);
      }
    }
    if (failed.length > 0) throw new ImprintError(`swap not cleared: ${failed.join(', ')}`);
    return undefined;
  },
};
