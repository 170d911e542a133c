import { readFile } from 'node:fs/promises';
import type { RootTree } from './root.js';
import { readTreeText } from './files.js';

export interface LocalIdentity {
  id: string;
  source: 'dmi-product-uuid' | 'machine-id' | 'override' | 'none';
  /** With source 'none': what was missing or unusable ("empty /etc/machine-id"...). */
  why?: string;
}

/**
 * A hint of which instance this is, before the metadata service can say: the hypervisor's DMI
 * product UUID (new for every VM, even a clone), else /etc/machine-id. An offline tree has no
 * hardware of its own, so with --root only the tree's machine-id counts, never the host's DMI.
 * The hint is only the early guess and the offline fallback: the metadata instance-id is the
 * instance's identity whenever a source answers (agent/boot/state.ts).
 */
export async function localIdentity(root: RootTree, override?: string): Promise<LocalIdentity> {
  if (override) return { id: override, source: 'override' };
  const missing: string[] = [];
  if (root.isLive) {
    const raw = await readFile('/sys/class/dmi/id/product_uuid', 'utf8').catch(() => null);
    const uuid = (raw ?? '').trim().toLowerCase();
    if (/^[0-9a-f-]{32,36}$/.test(uuid) && !/^[0-]+$/.test(uuid)) return { id: uuid, source: 'dmi-product-uuid' };
    missing.push(raw === null ? 'no DMI UUID' : `unusable DMI UUID ${JSON.stringify(uuid.slice(0, 40))}`);
  }
  const raw = await readTreeText(root, '/etc/machine-id').catch(() => null);
  const machineId = raw?.trim() ?? '';
  if (/^[0-9a-f]{32}$/.test(machineId)) return { id: machineId, source: 'machine-id' };
  // systemd's own words for a machine-id it has not made yet (a sealed image's first boot).
  if (raw === null) missing.push('no machine-id');
  else if (machineId === '') missing.push('empty /etc/machine-id');
  else if (machineId === 'uninitialized') missing.push('/etc/machine-id not initialized yet ("uninitialized")');
  else missing.push(`malformed /etc/machine-id ${JSON.stringify(machineId.slice(0, 40))}`);
  return { id: '', source: 'none', why: missing.join(', ') };
}
