import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { ensureTreeDir, writeTreeFileAtomic } from '../../agent/os/files.js';
import { lookupUser, writeHomeFile } from '../../agent/os/home-files.js';
import { RootTree } from '../../agent/os/root.js';
import { forgetSelinuxMode, parseSelinuxConfig, selinuxMode } from '../../agent/os/selinux.js';

// SELinux labels on what imprint writes, on scratch trees, with this machine's real setfiles
// (policycoreutils; `apt-get install policycoreutils` if missing). This machine has no SELinux
// kernel: setfiles -r still writes the security.selinux attributes on a tree, which is what
// --root needs, and the tests read them back. What cannot run here: restorecon on a live
// system with SELinux enabled (the live branch is one restorecon call; only its decision,
// selinuxenabled absent or failing => nothing runs, is exercised on this machine).

const run = promisify(execFile);

const FILE_CONTEXTS = [
  '/etc/ssh(/.*)?                 system_u:object_r:etc_t:s0',
  '/etc/ssh/sshd_config           --  system_u:object_r:sshd_config_t:s0',
  '/etc/ssh/sshd_config\\.d(/.*)? system_u:object_r:sshd_config_t:s0',
  '/etc/sudoers\\.d(/.*)?         system_u:object_r:etc_t:s0',
  '/var/lib/imprint(/.*)?         system_u:object_r:var_lib_t:s0',
  '',
].join('\n');
const HOMEDIRS = [
  '/root/\\.ssh(/.*)?             system_u:object_r:ssh_home_t:s0',
  '/home/[^/]+/\\.ssh(/.*)?       unconfined_u:object_r:ssh_home_t:s0',
  '',
].join('\n');

/** The security.selinux attribute of a file, or null (read with Python's os.getxattr: node has no xattr API). */
async function label(file: string): Promise<string | null> {
  const { stdout } = await run('python3', ['-c', `
import os, sys
try:
    print(os.getxattr(sys.argv[1], 'security.selinux', follow_symlinks=False).decode().rstrip('\\0'))
except OSError:
    print('')
`, file]);
  return stdout.trim() === '' ? null : stdout.trim();
}

describe('SELinux contexts of what imprint writes', function () {
  // setfiles runs after every write; on a loaded machine a case takes a minute or more.
  this.timeout(300_000);
  let tree = '';
  let root: RootTree;

  async function makeTree(selinux: string | null, withContexts = true): Promise<void> {
    tree = await mkdtemp(path.join(tmpdir(), 'imprint-selinux-'));
    root = new RootTree(tree);
    await mkdir(path.join(tree, 'etc/ssh'), { recursive: true });
    await mkdir(path.join(tree, 'root'), { mode: 0o700 });
    await mkdir(path.join(tree, 'home/debian'), { recursive: true, mode: 0o755 });
    await run('chown', ['1000:1000', path.join(tree, 'home/debian')]);
    await writeFile(path.join(tree, 'etc/passwd'), 'root:x:0:0:root:/root:/bin/bash\ndebian:x:1000:1000::/home/debian:/bin/bash\n');
    if (selinux !== null) {
      await mkdir(path.join(tree, 'etc/selinux/targeted/contexts/files'), { recursive: true });
      await writeFile(path.join(tree, 'etc/selinux/config'), selinux);
      if (withContexts) {
        const fc = path.join(tree, 'etc/selinux/targeted/contexts/files/file_contexts');
        await writeFile(fc, FILE_CONTEXTS);
        await writeFile(`${fc}.homedirs`, HOMEDIRS);
        // A precompiled file the image might carry: never loaded (setfiles gets a private copy of the text).
        await writeFile(`${fc}.bin`, 'not a compiled file_contexts');
      }
    }
    forgetSelinuxMode();
  }

  afterEach(async () => {
    if (tree !== '') await rm(tree, { recursive: true, force: true });
    tree = '';
  });

  describe('the decision', () => {
    it('reads SELINUX= and SELINUXTYPE= as the shell file writes them', () => {
      assert.deepEqual(parseSelinuxConfig('# c\nSELINUX=enforcing\nSELINUXTYPE=targeted\n'), { mode: 'enforcing', type: 'targeted' });
      assert.deepEqual(parseSelinuxConfig('SELINUX="Permissive" # x\n SELINUXTYPE = mls\n'), { mode: 'permissive', type: 'mls' });
      assert.deepEqual(parseSelinuxConfig('SELINUX=disabled\n'), { mode: 'disabled', type: 'targeted' });
      assert.deepEqual(parseSelinuxConfig(''), { mode: null, type: 'targeted' });
    });

    it('a tree: on only when enforcing or permissive and the policy has file_contexts', async () => {
      await makeTree(null);
      assert.equal((await selinuxMode(root)).kind, 'off');
      await rm(tree, { recursive: true, force: true });
      await makeTree('SELINUX=disabled\nSELINUXTYPE=targeted\n');
      assert.match(JSON.stringify(await selinuxMode(root)), /SELINUX=disabled/);
      await rm(tree, { recursive: true, force: true });
      await makeTree('SELINUX=enforcing\nSELINUXTYPE=targeted\n', false);
      assert.match(JSON.stringify(await selinuxMode(root)), /file_contexts is missing/);
      await rm(tree, { recursive: true, force: true });
      await makeTree('SELINUX=permissive\nSELINUXTYPE=../../x\n');
      assert.equal((await selinuxMode(root)).kind, 'off');
      await rm(tree, { recursive: true, force: true });
      await makeTree('SELINUX=enforcing\nSELINUXTYPE=targeted\n');
      assert.equal((await selinuxMode(root)).kind, 'tree');
    });

    it('this machine (live): off, because SELinux is not enabled here', async () => {
      const mode = await selinuxMode(new RootTree('/'));
      assert.equal(mode.kind, 'off');
    });
  });

  describe('labels on an enforcing tree (real setfiles -r)', () => {
    beforeEach(() => makeTree('SELINUX=enforcing\nSELINUXTYPE=targeted\n'));

    it('~/.ssh and authorized_keys created for a user get ssh_home_t (the policy in file_contexts.homedirs)', async () => {
      const user = await lookupUser(root, 'debian');
      const result = await writeHomeFile(root, user, '.ssh/authorized_keys', 'ssh-ed25519 AAAA k\n');
      assert.deepEqual(result.createdDirs, ['/home/debian/.ssh']);
      assert.equal(await label(path.join(tree, 'home/debian/.ssh')), 'unconfined_u:object_r:ssh_home_t:s0');
      assert.equal(await label(path.join(tree, 'home/debian/.ssh/authorized_keys')), 'unconfined_u:object_r:ssh_home_t:s0');
      // Replacing it again relabels the new inode too.
      await writeHomeFile(root, user, '.ssh/authorized_keys', 'ssh-ed25519 BBBB k\n');
      assert.equal(await label(path.join(tree, 'home/debian/.ssh/authorized_keys')), 'unconfined_u:object_r:ssh_home_t:s0');
      const rootUser = await lookupUser(root, 'root');
      await writeHomeFile(root, rootUser, '.ssh/authorized_keys', 'ssh-ed25519 AAAA k\n');
      assert.equal(await label(path.join(tree, 'root/.ssh/authorized_keys')), 'system_u:object_r:ssh_home_t:s0');
    });

    it('files replaced under /etc/ssh and /etc/sudoers.d, and directories created, get the policy label', async () => {
      await writeTreeFileAtomic(root, '/etc/ssh/sshd_config', 'PasswordAuthentication no\n', { mode: 0o644, uid: 0, gid: 0 });
      assert.equal(await label(path.join(tree, 'etc/ssh/sshd_config')), 'system_u:object_r:sshd_config_t:s0');
      await ensureTreeDir(root, '/etc/ssh/sshd_config.d');
      assert.equal(await label(path.join(tree, 'etc/ssh/sshd_config.d')), 'system_u:object_r:sshd_config_t:s0');
      await writeTreeFileAtomic(root, '/etc/ssh/sshd_config.d/00-imprint.conf', 'x\n', { mode: 0o600, uid: 0, gid: 0 });
      assert.equal(await label(path.join(tree, 'etc/ssh/sshd_config.d/00-imprint.conf')), 'system_u:object_r:sshd_config_t:s0');
      await ensureTreeDir(root, '/etc/sudoers.d', 0o750);
      await writeTreeFileAtomic(root, '/etc/sudoers.d/90-imprint', 'debian ALL=(ALL) NOPASSWD:ALL\n', { mode: 0o440, uid: 0, gid: 0 });
      assert.equal(await label(path.join(tree, 'etc/sudoers.d/90-imprint')), 'system_u:object_r:etc_t:s0');
      await ensureTreeDir(root, '/var/lib/imprint', 0o700);
      for (const d of ['var', 'var/lib', 'var/lib/imprint']) assert.ok(await label(path.join(tree, d)) !== null || d !== 'var/lib/imprint', d);
      assert.equal(await label(path.join(tree, 'var/lib/imprint')), 'system_u:object_r:var_lib_t:s0');
    });

    it('a relabel that fails is an error naming the path (a wrong label can lock sshd out of the file)', async () => {
      await writeFile(path.join(tree, 'etc/selinux/targeted/contexts/files/file_contexts'), '/etc/ssh(/.*)?  not-a-context-at-all ( [\n');
      forgetSelinuxMode();
      await assert.rejects(
        writeTreeFileAtomic(root, '/etc/ssh/sshd_config', 'x\n', { mode: 0o644, uid: 0, gid: 0 }),
        /SELinux contexts of \/etc\/ssh\/sshd_config could not be restored \(setfiles with the targeted policy\)/,
      );
    });

    it('a tree without SELinux gets no attributes and runs nothing', async () => {
      await rm(path.join(tree, 'etc/selinux'), { recursive: true });
      forgetSelinuxMode();
      await writeTreeFileAtomic(root, '/etc/ssh/sshd_config', 'x\n', { mode: 0o644, uid: 0, gid: 0 });
      assert.equal(await label(path.join(tree, 'etc/ssh/sshd_config')), null);
    });
  });
});
