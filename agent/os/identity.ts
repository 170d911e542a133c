import { readFile } from 'node:fs/promises';
import type { RootTree } from './root.js';
import { readTreeText } from './files.js';

export interface LocalIdentity {
  id: string;
  source: 'dmi-product-uuid' | 'machine-id' | 'override' | 'none';
}

/**
 * A hint of which instance this is, before the metadata service can say: the hypervisor's DMI
 * product UUID (new for every VM, even a clone), else /etc/machine-id. An offline tree has no
 * hardware of its own, so with --root only the tree's machine-id counts, never the host's DMI.
 */
export async function localIdentity(root: RootTree, override?: string): Promise<LocalIdentity> {
  if (override) return { id: override, source: 'override' };
  if (root.isLive) {
    const uuid = (await readFile('/sys/class/dmi/id/product_uuid', 'utf8').catch(() => '')).trim().toLowerCase();
    if (/^[0-9a-f-]{32,36}$/.test(uuid) && !/^[0-]+$/.test(uuid)) return { id: uuid, source: 'dmi-product-uuid' };
  }
  const machineId = (await readTreeText(root, '/etc/machine-id').catch(() => null))?.trim() ?? '';
  if (/^[0-9a-f]{32}$/.test(machineId)) return { id: machineId, source: 'machine-id' };
  return { id: '', source: 'none' };
}
