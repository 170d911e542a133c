import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readdir, readFile, lstat } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { addUserToTree } from '../../agent/os/tree-user.js';
import { RootTree } from '../../agent/os/root.js';
import { debianRootfsTarball, removeTree, unpackRootfs } from '../support/debian-rootfs.js';

// imprint makes the default user on a tree itself (shadow-utils' --root would load the tree's
// NSS modules). On Debian 12's own rootfs, what it makes is what useradd makes: the same lines
// in passwd, shadow, group, gshadow, subuid and subgid, the same home from /etc/skel. (useradd
// runs here on Debian's own tree, which names no NSS module but files and systemd.)

async function listing(root: string, dir: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (rel: string): Promise<void> => {
    for (const name of (await readdir(path.join(root, rel))).sort()) {
      const p = path.join(rel, name);
      const s = await lstat(path.join(root, p));
      out.push(`${p} ${(s.mode & 0o7777).toString(8)} ${s.uid}:${s.gid} ${s.isFile() ? s.size : ''}`);
      if (s.isDirectory()) await walk(p);
    }
  };
  await walk(dir);
  return out;
}

describe('the default user on a tree, made by imprint, is what useradd makes', function () {
  this.timeout(300_000);
  let tarball: string | null;
  const trees: string[] = [];

  before(async function () {
    tarball = await debianRootfsTarball();
    if (!tarball) this.skip();
  });
  after(async () => {
    for (const t of trees) await removeTree(t);
  });

  it('on Debian 12: same account lines, subordinate ids and home', async () => {
    const [byUseradd, byImprint] = [await unpackRootfs(tarball as string), await unpackRootfs(tarball as string)];
    trees.push(byUseradd, byImprint);
    await promisify(execFile)('useradd', ['--root', byUseradd, '--create-home', '--user-group', '--shell', '/bin/bash', '--comment', 'Default user (imprint)', '--groups', 'adm,sudo', 'admin']);
    const added = await addUserToTree(new RootTree(byImprint), { name: 'admin', shell: '/bin/bash', groups: ['adm', 'sudo'], gecos: 'Default user (imprint)' });
    assert.equal(added.homeCreated, true);
    for (const file of ['passwd', 'shadow', 'group', 'gshadow', 'subuid', 'subgid']) {
      assert.equal(await readFile(path.join(byImprint, 'etc', file), 'utf8'), await readFile(path.join(byUseradd, 'etc', file), 'utf8'), `/etc/${file}`);
    }
    assert.deepEqual(await listing(byImprint, 'home'), await listing(byUseradd, 'home'));
  });
});
