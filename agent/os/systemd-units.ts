import { ImprintError, errorMessage } from './errors.js';
import { run, type RunOptions, type RunResult } from './exec.js';
import type { RootTree } from './root.js';

// Stopping systemd units (product_codes.on_mismatch: stop-units). Only a live system has units
// to stop: with --root the tree is an offline image, so nothing is run and the caller is told
// what would have been stopped.

export type UnitStopOutcome = 'stopped' | 'failed' | 'not-run';

export interface UnitStop {
  unit: string;
  outcome: UnitStopOutcome;
  /** Why it failed, or why it was not run. */
  detail?: string;
}

/** The same shape the config accepts, and never a leading "-" (it would read as an option). */
const UNIT_NAME = /^[A-Za-z0-9:_.@\\][A-Za-z0-9:_.@\\-]*\.(service|socket|timer|target|path)$/;

export type Runner = (program: string, args: readonly string[], opts?: RunOptions) => Promise<RunResult>;

/**
 * Stops each unit with `systemctl stop -- UNIT` (argument arrays, one unit a call so each gets
 * its own result). Waits for each stop job, bounded by a timeout. Never throws for a unit that
 * fails to stop: the result says so, and the caller decides.
 */
export async function stopUnits(root: RootTree, units: readonly string[], runner: Runner = run): Promise<UnitStop[]> {
  for (const unit of units) {
    if (!UNIT_NAME.test(unit)) throw new ImprintError(`"${unit}" is not a systemd unit name`, 'config');
  }
  if (!root.isLive) {
    return units.map((unit) => ({ unit, outcome: 'not-run', detail: `--root ${root.dir}: an offline tree has no running units; systemctl not run` }));
  }
  const results: UnitStop[] = [];
  for (const unit of units) {
    try {
      await runner('systemctl', ['stop', '--no-ask-password', '--', unit], { timeoutMs: 90_000 });
      results.push({ unit, outcome: 'stopped' });
    } catch (err) {
      results.push({ unit, outcome: 'failed', detail: errorMessage(err) });
    }
  }
  return results;
}
