import path from 'node:path';
import { AccountTable, editAccountFiles, type AccountDbPath } from './account-db.js';
import { crashPoint } from './crash.js';
import type { RootTree } from './root.js';
import { removeTreeAt, TreeDir, unlinkAt } from './tree-ops.js';

// `userdel --remove` for an offline tree, done by imprint itself: shadow-utils' --root chroots
// into the tree, where glibc loads the NSS modules the image names (root code execution from a
// hostile image). The same edits userdel makes: the account's lines in passwd, shadow, subuid
// and subgid; its name in every group's member (and gshadow admin) list; its own group when no
// one else is in it and no other account has it as primary group; then its home, only a
// directory it owns (never through a mount point or a symlink), and its mail spool.

const FILES: readonly AccountDbPath[] = ['/etc/passwd', '/etc/shadow', '/etc/group', '/etc/gshadow', '/etc/subuid', '/etc/subgid'];

/** Drops `name` from a comma-separated member list field; the other bytes stay. */
function withoutMember(table: AccountTable, i: number, field: number, name: string): void {
  const fields = (table.lines[i] as string).split(':');
  const list = fields[field];
  if (list === undefined || list === '') return;
  const kept = list.split(',').filter((m) => m !== name);
  if (kept.length !== list.split(',').length) table.setField(i, field, kept.join(','));
}

interface Removed {
  uid: number;
  home: string;
}

async function removeAccount(root: RootTree, name: string): Promise<Removed | null> {
  return editAccountFiles(root, FILES, (t) => {
    const passwd = t.get('/etc/passwd') as AccountTable;
    const line = passwd.indexesOf(name).map((i) => passwd.lines[i] as string)[0];
    if (line === undefined) return null;
    const fields = line.split(':');
    const uid = Number(fields[2]);
    const gid = fields[3] ?? '';
    for (const file of ['/etc/passwd', '/etc/shadow', '/etc/subuid', '/etc/subgid'] as const) t.get(file)?.removeEntries(name);
    const group = t.get('/etc/group') as AccountTable;
    const gshadow = t.get('/etc/gshadow') as AccountTable;
    group.lines.forEach((_l, i) => { if (!AccountTable.isNis(group.lines[i] as string)) withoutMember(group, i, 3, name); });
    gshadow.lines.forEach((_l, i) => {
      if (AccountTable.isNis(gshadow.lines[i] as string)) return;
      withoutMember(gshadow, i, 2, name);
      withoutMember(gshadow, i, 3, name);
    });
    const ownGroup = group.indexesOf(name).map((i) => (group.lines[i] as string).split(':'))[0];
    const stillPrimary = passwd.lines.some((l) => !AccountTable.isNis(l) && l.split(':')[3] === gid);
    if (ownGroup && ownGroup[2] === gid && (ownGroup[3] ?? '') === '' && !stillPrimary) {
      group.removeEntries(name);
      gshadow.removeEntries(name);
    }
    return { uid, home: fields[5] ?? '' };
  });
}

/** Removes `name` from the tree's account files, then its home and mail spool. */
export async function deleteUserFromTree(root: RootTree, name: string): Promise<'deleted' | 'absent' | { homeLeft: string }> {
  crashPoint(`before userdel ${name}`);
  const removed = await removeAccount(root, name);
  crashPoint(`after userdel ${name}`);
  if (!removed) return 'absent';
  const problems: string[] = [];
  const home = path.posix.normalize(removed.home);
  if (home !== '/' && home.startsWith('/')) {
    const parent = await TreeDir.open(root, path.posix.dirname(home));
    if (parent) {
      try {
        const info = await parent.lstat(path.posix.basename(home));
        if (info?.isDirectory() && info.uid === removed.uid) {
          const removal = await removeTreeAt(parent, path.posix.basename(home), home, false);
          problems.push(...removal.keptMounts.map((m) => `${m} is a mount point`), ...removal.problems);
        } else if (info) problems.push(`${home} is not a directory owned by ${name}`);
      } finally {
        await parent.close();
      }
    }
  }
  const spool = await TreeDir.open(root, '/var/mail');
  if (spool) {
    try {
      await unlinkAt(spool, name, `/var/mail/${name}`);
    } finally {
      await spool.close();
    }
  }
  return problems.length > 0 ? { homeLeft: problems.join('; ') } : 'deleted';
}
