import { run } from './exec.js';
import { crashPoint } from './crash.js';
import type { RootTree } from './root.js';
import { deleteUserFromTree } from './tree-userdel.js';

// The live system's own shadow-utils (trusted: they are the system's). For an offline tree
// (--root) nothing here runs: shadow-utils' --root chroots into the tree and glibc then loads
// the tree's NSS modules as root; account-db.ts and the tree functions in accounts.ts edit the
// files in imprint itself, under the same locks.

/**
 * Sets password fields to values already made (hashes, "!"-locked hashes, "!"): ONE chpasswd
 * with -e for every account, so the fields are set and locked in one step. The values are
 * never logged (stdin only). chpasswd discards the whole batch on any bad line, so the caller
 * passes only accounts that are in /etc/passwd.
 */
export async function chpasswdEncrypted(root: RootTree, entries: readonly { user: string; field: string }[]): Promise<void> {
  if (entries.length === 0) return;
  if (!root.isLive) throw new Error('internal: chpasswd is for the live system only');
  const input = entries.map((e) => `${e.user}:${e.field}\n`).join('');
  crashPoint('before chpasswd');
  await run('chpasswd', ['-e'], { input });
  crashPoint('after chpasswd');
}

export interface NewUser {
  name: string;
  shell: string;
  groups: string[];
  gecos: string;
}

/** useradd on the live system (its home from /etc/skel, its own group, locked password "!"). */
export async function useradd(root: RootTree, user: NewUser): Promise<void> {
  if (!root.isLive) throw new Error('internal: useradd is for the live system only');
  const args = ['--create-home', '--user-group', '--shell', user.shell, '--comment', user.gecos];
  if (user.groups.length > 0) args.push('--groups', user.groups.join(','));
  args.push(user.name);
  crashPoint(`before useradd ${user.name}`);
  await run('useradd', args);
  crashPoint(`after useradd ${user.name}`);
}

/** Checks one sudoers file on its own (`visudo -c -f`, the host's visudo on a host-side file); throws with visudo's message if it is wrong. */
export async function checkSudoers(hostPath: string): Promise<void> {
  await run('visudo', ['-c', '-q', '-f', hostPath]);
}

/**
 * Removes an account with its home and mail spool (on a tree: tree-userdel.ts, no image code): 'absent' when there is no such account
 * (exit 6); exit 12 means the account is gone but its home was not removed (userdel says why).
 */
export async function deleteUser(root: RootTree, user: string): Promise<'deleted' | 'absent' | { homeLeft: string }> {
  if (!root.isLive) return deleteUserFromTree(root, user);
  crashPoint(`before userdel ${user}`);
  const result = await run('userdel', ['--remove', user], { okCodes: [6, 12] });
  crashPoint(`after userdel ${user}`);
  if (result.code === 6) return 'absent';
  return result.code === 12 ? { homeLeft: result.stderr.trim().split('\n').join(' / ') } : 'deleted';
}
