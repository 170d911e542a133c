import { readFile } from 'node:fs/promises';
import { listTreeDir, statTree } from './files.js';
import type { RootTree } from './root.js';

// What the booted system says about who should provision it: the kernel command line, and
// whether cloud-init is installed, enabled and not switched off.

/** The kernel command line words; empty for an offline tree (it has no kernel running). */
export async function kernelCommandLine(root: RootTree): Promise<string[]> {
  if (!root.isLive) return [];
  const text = await readFile('/proc/cmdline', 'utf8').catch(() => '');
  return text.trim().split(/\s+/).filter(Boolean);
}

const CLOUD_INIT_UNITS = ['cloud-init.service', 'cloud-init-local.service', 'cloud-init.target', 'cloud-config.service', 'cloud-final.service'];
const UNIT_DIRS = ['/etc/systemd/system', '/lib/systemd/system', '/usr/lib/systemd/system'];

export interface CloudInitState {
  willRun: boolean;
  /** Why, in words, for the console. */
  why: string;
}

/**
 * cloud-init runs when it is installed, a unit of it is enabled (a *.wants link), and neither
 * /etc/cloud/cloud-init.disabled nor cloud-init=disabled on the kernel command line turns it off.
 */
export async function cloudInitState(root: RootTree, cmdline: string[]): Promise<CloudInitState> {
  const installed = (await statTree(root, '/usr/bin/cloud-init')) !== null;
  if (!installed) return { willRun: false, why: 'cloud-init is not installed' };
  if ((await statTree(root, '/etc/cloud/cloud-init.disabled')) !== null) return { willRun: false, why: 'cloud-init is installed but /etc/cloud/cloud-init.disabled turns it off' };
  if (cmdline.includes('cloud-init=disabled')) return { willRun: false, why: 'cloud-init=disabled is on the kernel command line' };
  // On a booted system cloud-init's generator has already decided (ds-identify may have found
  // no datasource): its verdict is the link it made, or did not make, under /run.
  if (root.isLive && (await statTree(root, '/run/systemd/generator.early')) !== null) {
    const wanted = (await statTree(root, '/run/systemd/generator.early/multi-user.target.wants/cloud-init.target')) !== null;
    return wanted
      ? { willRun: true, why: 'cloud-init is installed and its generator enabled it for this boot' }
      : { willRun: false, why: 'cloud-init is installed but its generator did not enable it for this boot' };
  }
  for (const dir of UNIT_DIRS) {
    for (const name of await listTreeDir(root, dir)) {
      if (!name.endsWith('.wants')) continue;
      const wanted = await listTreeDir(root, `${dir}/${name}`);
      const unit = wanted.find((u) => CLOUD_INIT_UNITS.includes(u));
      if (unit) return { willRun: true, why: `cloud-init is installed and enabled (${dir}/${name}/${unit})` };
    }
  }
  return { willRun: false, why: 'cloud-init is installed but none of its units is enabled' };
}
