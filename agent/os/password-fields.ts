import { AccountTable, editAccountFiles, readAccountTable } from './account-db.js';
import { chpasswdEncrypted } from './shadow-utils.js';
import type { RootTree } from './root.js';

// Setting password fields (random locked hashes for boot, "!" for seal), on a tree by imprint
// itself under shadow-utils' locks, on the live system by one `chpasswd -e`.

export interface PasswordChange {
  account: string;
  /** The new password field: a hash, "!" + a hash, or "!". Never logged. */
  field: string;
  /** /etc/shadow line indexes to change (a tree; on the live system chpasswd finds the lines). */
  shadow: number[];
  /** /etc/passwd line indexes whose field holds the password itself. */
  passwd: number[];
}

/** Days since the epoch, as shadow-utils counts them (SOURCE_DATE_EPOCH honoured, for reproducible images). */
export function today(): number {
  const fixed = Number.parseInt(process.env.SOURCE_DATE_EPOCH ?? '', 10);
  const seconds = Number.isInteger(fixed) && fixed >= 0 && fixed * 1000 <= Date.now() ? fixed : Math.floor(Date.now() / 1000);
  return Math.floor(seconds / 86_400);
}

function apply(passwd: AccountTable, shadow: AccountTable, changes: readonly PasswordChange[]): void {
  const day = String(today());
  for (const c of changes) {
    for (const i of c.shadow) {
      shadow.setField(i, 1, c.field);
      // As chpasswd and usermod -p do: the password changed today.
      if ((shadow.lines[i] as string).split(':').length >= 3) shadow.setField(i, 2, day);
    }
    for (const i of c.passwd) passwd.setField(i, 1, c.field);
  }
}

/**
 * Reads /etc/passwd and /etc/shadow, lets `decide` say what changes (it sees the files as they
 * are under the lock), and makes the changes. Returns what `decide` returned.
 */
export async function changePasswordFields<T>(root: RootTree, decide: (passwd: AccountTable, shadow: AccountTable) => { changes: PasswordChange[]; result: T }): Promise<T> {
  if (root.isLive) {
    const { changes, result } = decide(await readAccountTable(root, '/etc/passwd'), await readAccountTable(root, '/etc/shadow'));
    await chpasswdEncrypted(root, changes.map((c) => ({ user: c.account, field: c.field })));
    return result;
  }
  return editAccountFiles(root, ['/etc/passwd', '/etc/shadow'], (tables) => {
    const passwd = tables.get('/etc/passwd') as AccountTable;
    const shadow = tables.get('/etc/shadow') as AccountTable;
    const { changes, result } = decide(passwd, shadow);
    apply(passwd, shadow, changes);
    return result;
  });
}
