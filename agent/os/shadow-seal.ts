import { crashPoint } from './crash.js';
import { run } from './exec.js';
import type { RootTree } from './root.js';

// For imprint seal: after `usermod --lock` (shadow-utils.ts lockPassword), a locked password
// still holds its hash ("!$6$..."), which anyone with the image can try to crack offline. The
// hash is replaced by "!" alone, through usermod so that shadow-utils' lock files are honoured.
// "!" is not a secret: it may appear on a command line.

export async function clearPasswordHash(root: RootTree, user: string): Promise<void> {
  crashPoint(`before usermod --password ! ${user}`);
  await run('usermod', [...(root.isLive ? [] : ['--root', root.dir]), '--password', '!', user]);
  crashPoint(`after usermod --password ! ${user}`);
}
