import assert from 'node:assert/strict';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { chmod, mkdir, mkdtemp, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { startEmulator, type RunningEmulator } from '../../agent/metadata/emulator.js';
import { imprint } from '../support/cli.js';
import { DEBIAN_RELEASES, debianRootfsTarball, IMAGE_PASSWORD, IMAGE_USER, removeTree, unpackRootfs } from '../support/debian-rootfs.js';

// sshd is the judge (issues 8.1 and 9): imprint boot/audit --root on real Debian trees, checked
// afterwards with the tree's OWN sshd (sshd -T -C per user and Match context, run here in a
// bwrap sandbox independent of imprint's) and with real logins against a real sshd on loopback.
// On the release matrix: Debian 11, 12 and 13 (OpenSSH 8.4, 9.2, 10.0), each its own sshd.

const exec = promisify(execFile);

interface Suite { name: string; tarball: () => Promise<string | null> }
const SUITES: Suite[] = DEBIAN_RELEASES.map(({ suite, release }) => ({ name: `${release} (${suite})`, tarball: () => debianRootfsTarball(suite) }));

/** The tree's own sshd, sandboxed, for one connection spec: what sshd would apply. */
async function treeSshdT(tree: string, spec: string | null): Promise<Map<string, string>> {
  const args = ['--unshare-all', '--die-with-parent', '--cap-drop', 'ALL', '--ro-bind', tree, '/', '--proc', '/proc', '--dev', '/dev', '--tmpfs', '/run', '--dir', '/run/sshd', '--tmpfs', '/tmp',
    '--', '/usr/sbin/sshd', '-T', '-f', '/etc/ssh/sshd_config', ...(spec ? ['-C', spec] : [])];
  const { stdout } = await exec('bwrap', args);
  return new Map(stdout.split('\n').filter(Boolean).map((l) => [l.slice(0, l.indexOf(' ')), l.slice(l.indexOf(' ') + 1)]));
}

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

/**
 * This machine's sshd serving the tree's configuration on a loopback port: in a mount namespace
 * of its own where the tree's /etc/ssh, account files and homes stand over this machine's (so
 * the tree's Include and HostKey paths resolve into the tree); it shares the network to be reachable.
 */
async function serveTree(tree: string): Promise<{ port: number; child: ChildProcess; log: () => string; stop: () => Promise<void> }> {
  const port = await freePort();
  const binds = ['etc/ssh', 'etc/passwd', 'etc/shadow', 'etc/group', 'home', 'root'].flatMap((p) => ['--bind', path.join(tree, p), `/${p}`]);
  const child = spawn('bwrap', ['--dev-bind', '/', '/', ...binds, '--tmpfs', '/run/sshd', '--die-with-parent', '--',
    '/usr/sbin/sshd', '-D', '-e', '-f', '/etc/ssh/sshd_config', '-p', String(port), '-o', 'ListenAddress=127.0.0.1', '-o', 'PidFile=none'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let log = '';
  child.stderr?.on('data', (d: Buffer) => { log += d.toString(); });
  await new Promise<void>((resolve, reject) => {
    const onData = (): void => { if (/Server listening on 127\.0\.0\.1/.test(log)) resolve(); };
    child.stderr?.on('data', onData);
    child.on('exit', (code) => reject(new Error(`sshd exited (${code}): ${log}`)));
  });
  return {
    port, child, log: () => log,
    stop: () => new Promise((resolve) => {
      if (child.exitCode !== null) return resolve();
      child.once('exit', () => resolve());
      child.kill('SIGTERM');
    }),
  };
}

const SSH_OPTS = ['-o', 'StrictHostKeyChecking=no', '-o', 'UserKnownHostsFile=/dev/null', '-o', 'BatchMode=no', '-o', 'ConnectTimeout=10', '-o', 'NumberOfPasswordPrompts=1'];

/** A password login attempt: whether it got in, and ssh's messages (they list the methods sshd offers). */
async function passwordLogin(port: number, user: string, password: string): Promise<{ ok: boolean; stderr: string }> {
  return exec('sshpass', ['-p', password, 'ssh', ...SSH_OPTS, '-o', 'PubkeyAuthentication=no', '-o', 'PreferredAuthentications=password,keyboard-interactive', '-p', String(port), `${user}@127.0.0.1`, 'true'], { timeout: 30_000 })
    .then((r) => ({ ok: true, stderr: r.stderr }), (e: { stderr?: string }) => ({ ok: false, stderr: e.stderr ?? '' }));
}

async function keyLogin(port: number, user: string, key: string): Promise<boolean> {
  const r = await exec('ssh', [...SSH_OPTS, '-o', 'BatchMode=yes', '-o', 'IdentitiesOnly=yes', '-i', key, '-p', String(port), `${user}@127.0.0.1`, 'true'], { timeout: 30_000 }).then(() => 0, (e: { code?: number }) => e.code ?? -1);
  return r === 0;
}

for (const suite of SUITES) {
  describe(`sshd is the judge: imprint on a real Debian ${suite.name} tree`, function () {
    this.timeout(900_000);
    let tarball: string | null = null;
    let tree = '';
    let scratch = '';
    let emulator: RunningEmulator | null = null;

    before(async function () {
      tarball = await suite.tarball();
      if (tarball === null) {
        if (process.env.CI) throw new Error('CI must be able to build the Debian rootfs');
        this.skip();
      }
    });
    beforeEach(async () => {
      tree = await unpackRootfs(tarball as string);
      scratch = await mkdtemp(path.join(tmpdir(), 'imprint-judge-'));
    });
    afterEach(async () => {
      await emulator?.close();
      emulator = null;
      await removeTree(tree);
      await rm(scratch, { recursive: true, force: true });
    });

    async function launchKey(): Promise<{ priv: string; pub: string }> {
      const priv = path.join(scratch, 'launch');
      await exec('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'launch', '-f', priv]);
      return { priv, pub: (await readFile(`${priv}.pub`, 'utf8')).trim() };
    }

    it('runs the image\'s sshd with no way out of the sandbox: a hostile sshd writes nothing outside the tree, and boot and audit still report', async () => {
      // The hostile sshd tries every way out the old chroot/bwrap modes left open.
      const marks = [path.join(scratch, 'direct'), `/tmp/imprint-judge-escape-${process.pid}`];
      const script = [
        '#!/bin/sh',
        ...marks.flatMap((m) => [`echo pwned > ${m}`, `echo pwned > /proc/1/root${m}`, `echo pwned > /proc/$PPID/root${m}`]),
        `for p in /proc/[0-9]*; do echo pwned > $p/root${marks[0]} 2>/dev/null; done`,
        'echo pwned > /etc/ssh/pwned',
        'exit 1',
        '',
      ].join('\n');
      await writeFile(path.join(tree, 'usr/sbin/sshd'), script);
      await chmod(path.join(tree, 'usr/sbin/sshd'), 0o755);

      const boot = await imprint(['boot', '--root', tree, '--json']);
      assert.equal(boot.code, 1, boot.stderr);
      const report = JSON.parse(boot.stdout) as { tasks: { task: string; status: string; error?: string }[] };
      const sshdTask = report.tasks.find((t) => t.task === 'sshd-config');
      assert.equal(sshdTask?.status, 'failed', 'the fake sshd cannot prove anything: the task fails');
      assert.equal(report.tasks.find((t) => t.task === 'passwords')?.status, 'done', 'the other tasks still run');

      const audit = await imprint(['audit', '--root', tree, '--json']);
      assert.ok(audit.stdout.length > 0, audit.stderr);
      JSON.parse(audit.stdout);

      const escaped = await Promise.all(marks.map((m) => stat(m).then(() => m, () => null)));
      // A regression must not leave the proof of its escape on this machine.
      await Promise.all(marks.map((m) => rm(m, { force: true })));
      assert.deepEqual(escaped.filter(Boolean), [], 'written from inside the sandbox');
      await assert.rejects(stat(path.join(tree, 'etc/ssh/pwned')), 'the tree is read-only to the image\'s code');
    });

    it('reads launch key lines back with the image\'s own ssh-keygen, sandboxed: a key it cannot read is refused, and it writes nothing outside the tree', async () => {
      const { pub } = await launchKey();
      const mark = `/tmp/imprint-judge-keygen-${process.pid}`;
      // The image's ssh-keygen tries to escape, then reads no key. Host keys are still made by
      // this machine's ssh-keygen (a generator of our own, not a judge of the image's rules).
      await writeFile(path.join(tree, 'usr/bin/ssh-keygen'), ['#!/bin/sh', `echo pwned > ${mark}`, `echo pwned > /proc/1/root${mark}`, 'echo pwned > /etc/ssh/pwned', 'exit 1', ''].join('\n'));
      await chmod(path.join(tree, 'usr/bin/ssh-keygen'), 0o755);
      emulator = await startEmulator({ instanceId: 'i-0123456789abcdef2', keys: [pub] });
      await mkdir(path.join(tree, 'etc/imprint'), { recursive: true });
      await writeFile(path.join(tree, 'etc/imprint/imprint.yaml'), `host_keys:\n  types: [ed25519]\nauthorized_keys:\n  user: ${IMAGE_USER}\n`);
      const boot = await imprint(['boot', '--root', tree, '--metadata-url', emulator.url, '--json']);
      const escaped = await stat(mark).then(() => true, () => false);
      await rm(mark, { force: true });
      assert.equal(escaped, false, 'the image\'s ssh-keygen wrote outside the tree');
      await assert.rejects(stat(path.join(tree, 'etc/ssh/pwned')), 'the tree is read-only to the image\'s code');
      assert.match(boot.stderr, /skipped: ssh-keygen -l cannot read the key line/, boot.stderr);
      const keys = await readFile(path.join(tree, `home/${IMAGE_USER}/.ssh/authorized_keys`), 'utf8').catch(() => '');
      assert.ok(!keys.includes(pub.split(' ')[1] as string), 'a line the image\'s ssh-keygen cannot read is not installed');
    });

    it('makes every Match context keys-only (main file, drop-ins, CRLF, quoted, nested and wildcard Includes), proved by the tree\'s sshd -T -C and by real logins', async () => {
      const etc = path.join(tree, 'etc/ssh');
      // A drop-in that sorts before 00-imprint.conf, with sshd's quoting and a trailing comment.
      await writeFile(path.join(etc, 'sshd_config.d/0-early.conf'), '"PasswordAuthentication" "yes" # image builder\nKbdInteractiveAuthentication=yes\n');
      // CRLF drop-in with an indented Match block.
      await writeFile(path.join(etc, 'sshd_config.d/10-crlf.conf'), `Match User ${IMAGE_USER}\r\n    PasswordAuthentication yes\r\n    KbdInteractiveAuthentication yes\r\n`);
      // Wildcard in a directory component, and a nested Include holding a Match block.
      await mkdir(path.join(etc, 'extra.d/site'), { recursive: true });
      await writeFile(path.join(etc, 'extra.d/site/nested.conf'), 'Include /etc/ssh/deeper.conf\n');
      await writeFile(path.join(etc, 'deeper.conf'), 'Match Group sudo\nPasswordAuthentication yes\n');
      const main = await readFile(path.join(etc, 'sshd_config'), 'utf8');
      // OpenSSH before 8.7 refuses ChallengeResponseAuthentication inside Match (a config error,
      // not a backdoor); there the same door is KbdInteractiveAuthentication.
      const challengeResponse = suite.name.includes('bullseye') ? 'KbdInteractiveAuthentication' : 'ChallengeResponseAuthentication';
      await writeFile(path.join(etc, 'sshd_config'), `Include /etc/ssh/extra.d/*/nested.conf\n${main}
Match Address 10.0.0.0/8
\tPermitRootLogin yes
\tPasswordAuthentication yes
Match LocalPort 2222
  PasswordAuthentication "yes"
Match Host *.example.com
  ${challengeResponse} yes
Match LocalAddress 192.168.1.*,!192.168.1.1
  PermitEmptyPasswords yes
Match User !nobody
  KbdInteractiveAuthentication yes
Match all
PermitRootLogin yes
PasswordAuthentication yes
`);
      const crlfBefore = await readFile(path.join(etc, 'sshd_config.d/10-crlf.conf'), 'utf8');
      const contexts = ['root', IMAGE_USER].flatMap((user) => [
        `user=${user},host=h.test,addr=192.0.2.1,laddr=192.0.2.2,lport=22`,
        `user=${user},host=a.example.com,addr=10.1.2.3,laddr=192.168.1.5,lport=2222`,
      ]);
      assert.ok((await Promise.all(contexts.map((c) => treeSshdT(tree, c)))).some((s) => s.get('passwordauthentication') === 'yes'), 'the image takes passwords in some context');

      // Real logins before: the image takes the password (this shows the login test can tell).
      const { priv, pub } = await launchKey();
      const before = await serveTree(tree);
      try {
        const attempt = await passwordLogin(before.port, IMAGE_USER, IMAGE_PASSWORD);
        assert.equal(attempt.ok, true, `password login works on the stock image: ${attempt.stderr} ${before.log()}`);
      } finally {
        await before.stop();
      }

      emulator = await startEmulator({ instanceId: 'i-0123456789abcdef0', keys: [pub] });
      await writeFile(path.join(tree, 'etc/imprint/imprint.yaml'), 'host_keys:\n  types: [ed25519]\nauthorized_keys:\n  user: debian\n').catch(async () => {
        await mkdir(path.join(tree, 'etc/imprint'), { recursive: true });
        await writeFile(path.join(tree, 'etc/imprint/imprint.yaml'), 'host_keys:\n  types: [ed25519]\nauthorized_keys:\n  user: debian\n');
      });
      const run = await imprint(['boot', '--root', tree, '--metadata-url', emulator.url, '--json']);
      assert.equal(run.code, 0, run.stderr);
      const report = JSON.parse(run.stdout) as { tasks: { task: string; details: Record<string, unknown> }[] };
      const sshdTask = report.tasks.find((t) => t.task === 'sshd-config');
      assert.ok(Number(sshdTask?.details.contexts) >= 8, 'sshd was asked about every Match context');

      for (const spec of contexts) {
        const s = await treeSshdT(tree, spec);
        for (const key of ['passwordauthentication', 'kbdinteractiveauthentication', 'permitemptypasswords']) assert.equal(s.get(key), 'no', `${spec}: ${key}`);
        assert.notEqual(s.get('permitrootlogin'), 'yes', `${spec}: permitrootlogin`);
      }
      const crlfAfter = await readFile(path.join(etc, 'sshd_config.d/10-crlf.conf'), 'utf8');
      assert.notEqual(crlfAfter, crlfBefore);
      assert.ok(crlfAfter.split('\n').filter(Boolean).every((l) => l.endsWith('\r')), 'a CRLF file keeps CRLF');
      assert.match(await readFile(path.join(etc, 'deeper.conf'), 'utf8'), /^PasswordAuthentication no$/m, 'the edit inside a nested Include');

      const after = await serveTree(tree);
      try {
        // Refused by sshd itself (it offers publickey only), not just by the locked password.
        const attempt = await passwordLogin(after.port, IMAGE_USER, IMAGE_PASSWORD);
        assert.equal(attempt.ok, false, 'password login refused');
        assert.match(attempt.stderr, /Permission denied \(publickey\)/);
        assert.equal(await keyLogin(after.port, IMAGE_USER, priv), true, `key login with the launch key works: ${after.log()}`);
      } finally {
        await after.stop();
      }
    });

    it('puts the launch key where sshd reads keys for the user (AuthorizedKeysFile in a Match block, outside home), and the key login works', async () => {
      const etc = path.join(tree, 'etc/ssh');
      await writeFile(path.join(etc, 'sshd_config.d/20-keys.conf'), `Match User ${IMAGE_USER}\n  AuthorizedKeysFile /etc/ssh/authorized_keys/%u .ssh/authorized_keys\n`);
      const { priv, pub } = await launchKey();
      emulator = await startEmulator({ instanceId: 'i-0123456789abcdef1', keys: [pub] });
      await mkdir(path.join(tree, 'etc/imprint'), { recursive: true });
      await writeFile(path.join(tree, 'etc/imprint/imprint.yaml'), `host_keys:\n  types: [ed25519]\nauthorized_keys:\n  user: ${IMAGE_USER}\n`);
      const run = await imprint(['boot', '--root', tree, '--metadata-url', emulator.url, '--json']);
      assert.equal(run.code, 0, run.stderr);
      const report = JSON.parse(run.stdout) as { tasks: { task: string; details: Record<string, unknown>; actions: string[] }[] };
      const keys = report.tasks.find((t) => t.task === 'authorized-keys');
      assert.equal(keys?.details.file, `/etc/ssh/authorized_keys/${IMAGE_USER}`, 'the file sshd reads first for this user');
      assert.match(run.stderr, new RegExp(`into /etc/ssh/authorized_keys/${IMAGE_USER}`), 'the console names the file written');
      const written = await stat(path.join(etc, `authorized_keys/${IMAGE_USER}`));
      assert.equal(written.uid, 0);
      assert.equal(written.mode & 0o777, 0o644);
      await assert.rejects(stat(path.join(tree, `home/${IMAGE_USER}/.ssh/authorized_keys`)), 'not the default file');
      const server = await serveTree(tree);
      try {
        assert.equal(await keyLogin(server.port, IMAGE_USER, priv), true, `key login with the launch key works: ${server.log()}`);
      } finally {
        await server.stop();
      }
    });

    it('audit: a Match block sshd applies (quoted "yes") is found per user with -C; with imprint.service enabled it is judged as after first boot', async () => {
      await writeFile(path.join(tree, 'etc/ssh/sshd_config'), `${await readFile(path.join(tree, 'etc/ssh/sshd_config'), 'utf8')}Match Group sudo\n  PasswordAuthentication "yes" # for the admins\n`);
      // The stock image takes passwords globally too; only the Match block is left to find.
      await writeFile(path.join(tree, 'etc/ssh/sshd_config.d/0-global.conf'), 'PasswordAuthentication no\nKbdInteractiveAuthentication no\n');
      type Found = { check: string; severity: string; message: string; evidence: { path: string; line: number | null; value: string } };
      type Report = { checks: { id: string; findings: Omit<Found, 'check'>[] }[] };
      const audit = async (): Promise<Found[]> => {
        const r = JSON.parse((await imprint(['audit', '--root', tree, '--json'])).stdout) as Report;
        return r.checks.flatMap((c) => c.findings.map((f) => ({ ...f, check: c.id })));
      };
      const before = (await audit()).filter((f) => f.check === 'sshd.password-authentication');
      assert.equal(before.length, 1, JSON.stringify(before));
      assert.equal(before[0]?.severity, 'high');
      assert.match(before[0]?.evidence.value ?? '', /sshd -T -C: user=debian/);

      const wants = path.join(tree, 'etc/systemd/system/multi-user.target.wants');
      await mkdir(wants, { recursive: true });
      await writeFile(path.join(tree, 'etc/systemd/system/imprint.service'), '[Unit]\nDescription=imprint\n[Service]\nExecStart=/usr/sbin/imprint boot\n[Install]\nWantedBy=multi-user.target\n');
      await exec('ln', ['-s', '/etc/systemd/system/imprint.service', path.join(wants, 'imprint.service')]);
      const after = await audit();
      assert.deepEqual(after.filter((f) => f.check === 'sshd.password-authentication'), [], 'first boot neutralises the Match block');
      const auth = after.find((f) => f.check === 'sshd.authentication');
      assert.match(auth?.message ?? '', /public keys only after imprint's first boot \(imprint\.service is enabled/);
    });
  });
}
