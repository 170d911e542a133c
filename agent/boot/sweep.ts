import { listTreeDir, shredTreeFile, statTree } from '../os/files.js';
import type { RootTree } from '../os/root.js';
import { STATE_DIR } from './state.js';

// Temp files a killed run leaves beside what it was replacing: "<dir>/.imprint-<hex>.tmp" from
// every atomic write (the state file; /etc/passwd and /etc/shadow, whose copies hold password
// hashes, hence shredded) and the sudoers check file. Swept only while holding the run lock,
// so no live run's temp file is taken from under it. Host key temps are swept by host-keys,
// check files by sshd-config, ~/.ssh temps by the authorized-keys writer.

const SWEPT: readonly { dir: string; name: RegExp }[] = [
  { dir: STATE_DIR, name: /^\.imprint-[0-9a-f]{12}\.tmp$/ },
  { dir: '/etc', name: /^\.imprint-[0-9a-f]{12}\.tmp$/ },
  { dir: '/etc/sudoers.d', name: /^\.imprint-check-[0-9a-f]{8}$/ },
];

/** Removes what a killed run left; returns the in-tree paths removed. */
export async function sweepTempFiles(root: RootTree): Promise<string[]> {
  const removed: string[] = [];
  for (const { dir, name } of SWEPT) {
    for (const entry of (await listTreeDir(root, dir).catch(() => [])).filter((n) => name.test(n))) {
      const file = `${dir}/${entry}`;
      if (!(await statTree(root, file))?.isFile()) continue;
      await shredTreeFile(root, file);
      removed.push(file);
    }
  }
  return removed;
}
