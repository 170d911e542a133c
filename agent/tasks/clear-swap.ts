import type { Task } from '../boot/task.js';
import type { TaskContext } from '../boot/task.js';
import {
  activeSwaps, dropCaches, filesystemMountedAt, nodeIdentity, probeDevice, remakeSwap, swapOff, swapOn, zeroDevice, zeroFileInPlace, type ActiveSwap,
} from '../os/block-devices.js';
import { errorMessage, ImprintError } from '../os/errors.js';
import { readResolvedText } from '../os/tree-read.js';
import { fstabSwapSpecs, parseSwapSpec } from '../parsers/fstab.js';

// Clear swap at every boot (Eucalyptus: "sync && sysctl vm.drop_caches=3 && swapoff -a &&
// swapon -a"). swapoff alone brings the pages back into memory but leaves them on the disk, so
// each area is also zeroed and given a fresh swap signature with its old UUID and label (fstab
// names swap by those) before it is switched on again. On a booted system every area in use is
// the machine's. With --root, a mounted root (a booted instance's disk, or a test's) claims only
// the areas in use that its own /etc/fstab names; an offline tree claims none (its swap is not
// switched on here, and the build machine's is not its to clear).

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

const BLKID_TAG = { UUID: 'UUID', LABEL: 'LABEL', PARTUUID: 'PART_ENTRY_UUID', PARTLABEL: 'PART_ENTRY_NAME' } as const;

/** Whether an fstab swap line of the tree names this area in use (by tag, or as the same device or file). */
async function fstabNames(ctx: TaskContext, spec: string, area: ActiveSwap): Promise<boolean> {
  const parsed = parseSwapSpec(spec);
  if (!parsed) return false;
  if ('tag' in parsed) return (await probeDevice(area.name))[BLKID_TAG[parsed.tag]] === parsed.value;
  // A path is read inside the tree (a swap file of the tree's, or the tree's own /dev), never
  // as this machine's: /dev/vda2 in a mounted image's fstab may well be this machine's swap.
  const named = await nodeIdentity(ctx.root.path(parsed.path));
  return named !== null && named === (await nodeIdentity(area.name));
}

interface SwapScope { areas: ActiveSwap[]; none: string }

/** The areas this run may clear, and what to say when there are none. */
async function swapScope(ctx: TaskContext): Promise<SwapScope> {
  const inUse = await activeSwaps();
  if (ctx.root.isLive) return { areas: inUse, none: 'no swap in use' };
  if (!(await filesystemMountedAt(ctx.root.dir))) {
    return { areas: [], none: `--root ${ctx.root.dir} is an offline tree, not a booted root: swap belongs to the machine; not touched` };
  }
  const fstab = await readResolvedText(ctx.root, '/etc/fstab');
  const specs = fstab ? fstabSwapSpecs(fstab.text) : [];
  const areas: ActiveSwap[] = [];
  for (const area of inUse) {
    for (const spec of specs) {
      if (await fstabNames(ctx, spec, area)) {
        areas.push(area);
        break;
      }
    }
  }
  return { areas, none: `--root: no swap in use is named in ${ctx.root.dir}/etc/fstab (${specs.length === 0 ? 'it names none' : specs.join(', ')}); the machine's other swap is not touched` };
}

export const clearSwapTask: Task = {
  name: 'clear-swap',
  phase: 'late',
  after: [],
  everyBoot: true,

  disabledBecause: (cfg) => (cfg.swap.clear ? null : 'swap.clear is false'),

  async plan(ctx) {
    const scope = await swapScope(ctx);
    if (scope.areas.length === 0) return [scope.none];
    return [`would drop caches, then switch off, zero, re-make (same UUID and label) and switch on ${scope.areas.map((s) => s.name).join(', ')}`];
  },

  async run(ctx, rec) {
    const { areas: swaps, none } = await swapScope(ctx);
    if (swaps.length === 0) {
      rec.action(none);
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
        await swapOn(area.name, area.priority);
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
