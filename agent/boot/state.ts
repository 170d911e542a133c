import { readTreeText, ensureTreeDir, writeTreeFileAtomic } from '../os/files.js';
import type { RootTree } from '../os/root.js';

// Per-instance state in /var/lib/imprint/state.json. It only ever says "this work is already
// done for this instance": a missing, unreadable or foreign state file means the work is done
// again, never skipped. The metadata instance-id is the instance's identity whenever a source
// has said it; the local hint (DMI UUID, machine-id) is the early guess before the service
// answers and the fallback when none does. So state is kept for an instance with no usable
// hint once metadata names it, and a changed hint with the same instance-id is the same
// instance.

export const STATE_DIR = '/var/lib/imprint';
export const STATE_FILE = `${STATE_DIR}/state.json`;
const FORMAT = 1;

export interface InstanceState {
  format: number;
  /** The local hint the work was done under, and where it came from. */
  hint: { id: string; source: string };
  /** The metadata instance-id, once a source has said it. */
  instanceId: string | null;
  /** Task name → ISO time it completed for this instance. */
  completed: Record<string, string>;
}

export interface LoadedState {
  state: InstanceState | null;
  /** Why the state was not usable, for the console (corrupt file...). */
  problem: string | null;
}

function isInstanceState(value: unknown): value is InstanceState {
  if (typeof value !== 'object' || value === null) return false;
  const v = value as Record<string, unknown>;
  const hint = v.hint as Record<string, unknown> | undefined;
  const completed = v.completed as Record<string, unknown> | undefined;
  return v.format === FORMAT && typeof hint?.id === 'string' && typeof hint.source === 'string'
    && (v.instanceId === null || typeof v.instanceId === 'string')
    && typeof completed === 'object' && completed !== null && Object.values(completed).every((t) => typeof t === 'string');
}

export async function loadState(root: RootTree): Promise<LoadedState> {
  let text: string | null;
  try {
    text = await readTreeText(root, STATE_FILE);
  } catch (err) {
    return { state: null, problem: `state file unreadable (${(err as Error).message}); doing all the work again` };
  }
  if (text === null) return { state: null, problem: null };
  try {
    const parsed: unknown = JSON.parse(text);
    if (isInstanceState(parsed)) return { state: parsed, problem: null };
  } catch {
    /* fall through: corrupt */
  }
  return { state: null, problem: `${STATE_FILE} is corrupt; doing all the work again` };
}

export async function saveState(root: RootTree, state: InstanceState): Promise<void> {
  await ensureTreeDir(root, '/var/lib', 0o755); // a tree without /var must not get a 0700 one
  await ensureTreeDir(root, STATE_DIR, 0o700);
  await writeTreeFileAtomic(root, STATE_FILE, `${JSON.stringify(state, null, 2)}\n`, { mode: 0o600, uid: 0, gid: 0 });
}

export function freshState(hint: { id: string; source: string }): InstanceState {
  return { format: FORMAT, hint, instanceId: null, completed: {} };
}

/**
 * How the state on disk relates to this boot, before the metadata service has spoken:
 * - 'same-hint': the local hint matches; presumed the same instance (metadata may still say
 *   otherwise: a clone that kept its machine-id);
 * - 'ask-metadata': the hint is missing or changed but the state names an instance-id; only
 *   the metadata service can say whether this is that instance (fresh state if it cannot);
 * - 'new': nothing to go on; all the work is done.
 */
export type StateMatch = 'same-hint' | 'ask-metadata' | 'new';

export function matchState(hint: { id: string; source: string }, loaded: InstanceState | null): { state: InstanceState; match: StateMatch } {
  const fresh = (): InstanceState => freshState({ id: hint.id, source: hint.source });
  if (loaded === null) return { state: fresh(), match: 'new' };
  if (hint.source !== 'none' && loaded.hint.id === hint.id) return { state: loaded, match: 'same-hint' };
  if (loaded.instanceId !== null) return { state: loaded, match: 'ask-metadata' };
  return { state: fresh(), match: 'new' };
}
