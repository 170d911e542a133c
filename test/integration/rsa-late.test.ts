import assert from 'node:assert/strict';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import path from 'node:path';
import { promisify } from 'node:util';
import { imprint } from '../support/cli.js';
import { debianRootfsTarball, removeTree, unpackRootfs, type DebianSuite } from '../support/debian-rootfs.js';

// Issue 10 item 6: RSA host keys off sshd's path on every OpenSSH. On Debian 12 (9.2) sshd loads
// host keys per connection; on Debian 13 (10.0) the listener loads them once, at start, and
// imprint does not reload it (SIGHUP closes the listening socket): the boot says what that
// means. The claim itself is checked against the tree's own sshd 10 on loopback: a key added
// after start is not offered (an RSA-only client is refused), the fast keys are.

const exec = promisify(execFile);

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
    server.on('error', reject);
  });
}

/** The tree's own sshd as a listener on loopback, the tree at / (bwrap), sharing this network. */
async function serveTree(tree: string): Promise<{ port: number; stop: () => Promise<void> }> {
  const port = await freePort();
  const child: ChildProcess = spawn('bwrap', ['--bind', tree, '/', '--proc', '/proc', '--dev', '/dev', '--tmpfs', '/run', '--dir', '/run/sshd', '--tmpfs', '/tmp', '--die-with-parent', '--',
    '/usr/sbin/sshd', '-D', '-e', '-p', String(port), '-o', 'ListenAddress=127.0.0.1', '-o', 'PidFile=none'], { stdio: ['ignore', 'ignore', 'pipe'] });
  let log = '';
  await new Promise<void>((resolve, reject) => {
    child.stderr?.on('data', (d: Buffer) => {
      log += d.toString();
      if (/Server listening on 127\.0\.0\.1/.test(log)) resolve();
    });
    child.on('exit', (code) => reject(new Error(`sshd exited (${code}): ${log}`)));
  });
  return {
    port,
    stop: () => new Promise((resolve) => {
      if (child.exitCode !== null) return resolve();
      child.once('exit', () => resolve());
      child.kill('SIGTERM');
    }),
  };
}

/** The host key sshd offers for these algorithms ("type base64"), or ssh's refusal. */
async function offered(port: number, algorithms: string): Promise<{ key: string | null; stderr: string }> {
  const r = await exec('ssh-keyscan', ['-T', '10', '-p', String(port), '-t', algorithms, '127.0.0.1']).catch((e: { stdout?: string; stderr?: string }) => ({ stdout: e.stdout ?? '', stderr: e.stderr ?? '' }));
  const line = r.stdout.split('\n').find((l) => l.startsWith('[127.0.0.1]'));
  return { key: line ? line.split(' ').slice(1, 3).join(' ') : null, stderr: r.stderr };
}

const SUITES: { suite: DebianSuite; openssh: string; once: boolean }[] = [
  { suite: 'bookworm', openssh: '9.2', once: false },
  { suite: 'trixie', openssh: '10.0', once: true },
];

for (const { suite, openssh, once } of SUITES) {
  describe(`RSA host key off sshd's path: Debian ${suite} (OpenSSH ${openssh})`, function () {
    this.timeout(600_000);
    let tree = '';

    before(async function () {
      const tarball = await debianRootfsTarball(suite);
      if (tarball === null) {
        if (process.env.CI) throw new Error('CI must be able to build the Debian rootfs');
        this.skip();
      }
      tree = await unpackRootfs(tarball);
    });
    after(async () => {
      if (tree) await removeTree(tree);
    });

    it(`installs RSA after the fast keys and says when sshd offers it (${once ? 'from its next restart' : 'at the next connection'})`, async () => {
      await mkdir(path.join(tree, 'etc/imprint'), { recursive: true });
      await writeFile(path.join(tree, 'etc/imprint/imprint.yaml'), 'passwords:\n  enabled: false\n');
      const boot = await imprint(['boot', '--root', tree, '--json']);
      assert.equal(boot.code, 0, boot.stderr);
      const report = JSON.parse(boot.stdout) as { tasks: { task: string; status: string; actions: string[]; details: { servedFrom?: string } }[] };
      const task = (name: string) => report.tasks.find((t) => t.task === name);
      assert.match(task('host-keys')?.actions.join('\n') ?? '', /rsa still generating: sshd starts on ed25519, ecdsa/, 'sshd is not held back for RSA');
      assert.equal(task('host-keys-late')?.status, 'done');
      assert.equal(task('host-keys-late')?.details.servedFrom, once ? 'next sshd restart' : 'next connection');
      if (once) assert.match(task('host-keys-late')?.actions.join('\n') ?? '', new RegExp(`OpenSSH ${openssh.replace('.', '\\.')}\\) loads its host keys once, when it starts: .* a client that accepts only rsa host keys is refused`));
    });

    if (once) {
      it('(the claim) its sshd, started before RSA is in place, does not offer it: an RSA-only client is refused, the fast keys are served', async () => {
        const ssh = path.join(tree, 'etc/ssh');
        await rename(path.join(ssh, 'ssh_host_rsa_key'), path.join(ssh, 'rsa-later'));
        const sshd = await serveTree(tree);
        try {
          await rename(path.join(ssh, 'rsa-later'), path.join(ssh, 'ssh_host_rsa_key'));
          const rsa = await offered(sshd.port, 'rsa');
          assert.equal(rsa.key, null, 'no RSA host key offered by the running listener');
          const ed = await offered(sshd.port, 'ed25519');
          assert.equal(ed.key, (await readFile(path.join(ssh, 'ssh_host_ed25519_key.pub'), 'utf8')).split(' ').slice(0, 2).join(' '));
        } finally {
          await sshd.stop();
        }
      });
    }
  });
}
