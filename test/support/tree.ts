import { mkdtemp, rm, mkdir, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { buildDemoImage } from '../../agent/demo/image.js';
import { snapshotTree } from '../../agent/demo/snapshot.js';

export { DEMO_PASSWORD, DEMO_USER, DEMO_MACHINE_ID } from '../../agent/demo/image.js';
export { snapshotTree, diffSnapshots } from '../../agent/demo/snapshot.js';

/** A scratch image tree (the demo image: known passwords, baked keys, passwords allowed in sshd). */
export async function scratchImage(): Promise<string> {
  const dir = await mkdtemp(path.join(tmpdir(), 'imprint-test-'));
  await buildDemoImage(dir);
  return dir;
}

export async function removeScratch(dir: string): Promise<void> {
  if (!path.basename(dir).startsWith('imprint-test-')) throw new Error(`refusing to remove ${dir}`);
  await rm(dir, { recursive: true, force: true });
}

export async function writeConfig(root: string, yaml: string): Promise<string> {
  const file = path.join(root, 'etc/imprint/imprint.yaml');
  await mkdir(path.dirname(file), { recursive: true });
  await writeFile(file, yaml);
  return file;
}

/** A single digest of the whole tree: equal digests mean nothing changed (content, mode, owner). */
export async function treeDigest(root: string, opts: { besidesReports?: boolean } = {}): Promise<string> {
  const entries = [...(await snapshotTree(root))];
  // Every boot records itself (imprint status reads it): "nothing changed" means nothing else.
  const aReport = ([p, what]: [string, string]): boolean => SAVED_REPORTS.includes(p) || (what.startsWith('dir:') && SAVED_REPORTS.some((r) => r.startsWith(`${p}/`)));
  return JSON.stringify(opts.besidesReports ? entries.filter((e) => !aReport(e)) : entries);
}

/** The saved boot reports; with besidesReports, they and the directories holding them are left out. */
const SAVED_REPORTS = ['/run/imprint/report.json', '/var/lib/imprint/last-boot.json'];

/** Fast key types for tests that boot many times; RSA is covered by its own tests. */
export const FAST_KEYS_CONFIG = 'host_keys:\n  types: [ed25519, ecdsa]\n';
