import { run } from './exec.js';
import { crashPoint } from './crash.js';
import type { RootTree } from './root.js';

// shadow-utils do every change to the account databases, so their lock files (/etc/.pwd.lock,
// /etc/shadow.lock) are honoured and a concurrent useradd cannot interleave with us.

function rootArgs(root: RootTree): string[] {
  return root.isLive ? [] : ['--root', root.dir];
}

export type CryptMethod = 'SHA512' | 'YESCRYPT' | 'SHA256';

/** Sets passwords. `-c METHOD` hashes in chpasswd itself (no PAM stack, which --root cannot load). */
export async function chpasswd(root: RootTree, entries: { user: string; password: string }[], method: CryptMethod): Promise<void> {
  if (entries.length === 0) return;
  const input = entries.map((e) => `${e.user}:${e.password}\n`).join('');
  crashPoint('before chpasswd');
  await run('chpasswd', ['-c', method, ...rootArgs(root)], { input });
  crashPoint('after chpasswd');
}

export async function lockPassword(root: RootTree, user: string): Promise<void> {
  crashPoint(`before usermod --lock ${user}`);
  await run('usermod', [...rootArgs(root), '--lock', user]);
  crashPoint(`after usermod --lock ${user}`);
}

export interface NewUser {
  name: string;
  shell: string;
  groups: string[];
  gecos: string;
}

export async function addUser(root: RootTree, user: NewUser): Promise<void> {
  const args = [...rootArgs(root), '--create-home', '--user-group', '--shell', user.shell, '--comment', user.gecos];
  if (user.groups.length > 0) args.push('--groups', user.groups.join(','));
  args.push(user.name);
  crashPoint(`before useradd ${user.name}`);
  await run('useradd', args);
  crashPoint(`after useradd ${user.name}`);
}

/** Checks one sudoers file on its own (`visudo -c -f`); throws with visudo's message if it is wrong. */
export async function checkSudoers(hostPath: string): Promise<void> {
  await run('visudo', ['-c', '-q', '-f', hostPath]);
}

/**
 * Removes an account with its home and mail spool: 'absent' when there is no such account
 * (exit 6); exit 12 means the account is gone but its home was not removed (userdel says why).
 */
export async function deleteUser(root: RootTree, user: string): Promise<'deleted' | 'absent' | { homeLeft: string }> {
  crashPoint(`before userdel ${user}`);
  const result = await run('userdel', [...rootArgs(root), '--remove', user], { okCodes: [6, 12] });
  crashPoint(`after userdel ${user}`);
  if (result.code === 6) return 'absent';
  return result.code === 12 ? { homeLeft: result.stderr.trim().split('\n').join(' / ') } : 'deleted';
}
