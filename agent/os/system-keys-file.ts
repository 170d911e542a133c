import path from 'node:path';
import { ImprintError } from './errors.js';
import { ensureTreeDir, readTreeFile, statTree, writeTreeFileAtomic } from './files.js';
import type { RootTree } from './root.js';

// An authorized keys file outside the user's home (AuthorizedKeysFile /etc/ssh/authorized_keys/%u).
// sshd (auth_secure_path) reads it only when it and every directory above it are owned by root
// (or the user) and writable by no one else; imprint writes it root-owned, 0644 (sshd reads it
// as the user), and refuses a path whose existing directories break that rule.

/** Why sshd would refuse this path, or null when it would read it (missing directories are made root-owned). */
export async function systemKeysFileProblem(root: RootTree, inTree: string, uid: number): Promise<string | null> {
  let dir = path.posix.dirname(inTree);
  for (;;) {
    const info = await statTree(root, dir);
    if (info !== null) {
      if (!info.isDirectory()) return `${dir} is not a directory`;
      if (info.uid !== 0 && info.uid !== uid) return `${dir} is owned by uid ${info.uid}, not root`;
      if ((info.mode & 0o022) !== 0) return `${dir} is writable by group or others (mode 0${(info.mode & 0o777).toString(8)})`;
    }
    if (dir === '/') return null;
    dir = path.posix.dirname(dir);
  }
}

export async function readSystemKeysFile(root: RootTree, inTree: string): Promise<Buffer | null> {
  return readTreeFile(root, inTree);
}

export async function writeSystemKeysFile(root: RootTree, inTree: string, data: Buffer, uid: number): Promise<void> {
  const problem = await systemKeysFileProblem(root, inTree, uid);
  if (problem !== null) throw new ImprintError(`refusing ${inTree}: sshd would not read it (${problem})`, 'unsafe-path');
  await ensureTreeDir(root, path.posix.dirname(inTree), 0o755);
  await writeTreeFileAtomic(root, inTree, data, { mode: 0o644, uid: 0, gid: 0 });
}
