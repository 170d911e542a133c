// The release matrix, booted: the installed imprint on Debian 12 (systemd 252, OpenSSH 9.2) and
// Debian 13 (systemd 257, OpenSSH 10.0) in systemd-nspawn. What differs between them: systemd
// 256+'s systemd-ssh-generator sockets (AF_UNIX, sshd@.service per connection), Debian 13's
// sshd-keygen.service, and systemd-notify 257, which refuses a PID that has exited.

import assert from 'node:assert/strict';
import { mkdir, readFile, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fingerprintsOf, type Container, type Testbed } from './harness.js';
import { hostKeyFingerprints } from './image.js';
import { waitFor } from './proc.js';
import { IMAGE_PASSWORD, Lab, USER, acquireSuite, parseShow, releaseSuite, type Golden, type Suite } from './suite.js';
import type { DebianSuite } from '../support/debian-rootfs.js';

const LOGIN_DEADLINE_MS = 120_000;
const UNIX_SOCKET = '/run/ssh-unix-local/socket';

function log(line: string): void {
  process.stderr.write(`      ${line}\n`);
}

/** imprint.service once it has settled (no longer activating), as systemctl shows it. */
async function settledUnit(c: Container): Promise<Record<string, string>> {
  return waitFor('imprint.service settled', async () => {
    const r = await c.exec(['systemctl', 'show', '-p', 'ActiveState,SubState,Result,StatusText', 'imprint.service'], 15_000);
    const show = parseShow(r.stdout);
    return show.ActiveState && !['activating', 'inactive'].includes(show.ActiveState) && show.SubState !== 'start' ? show : null;
  }, 120_000, 100);
}

/**
 * The first connection on systemd-ssh-generator's AF_UNIX socket, made as soon as the socket
 * exists (inside the container, with its own ssh and systemd-ssh-proxy): the ed25519 host key
 * that connection was served.
 */
async function earliestUnixSocketHostKey(c: Container): Promise<string> {
  await waitFor(`${UNIX_SOCKET} exists`, async () => ((await c.exec(['test', '-S', UNIX_SOCKET], 5_000)).code === 0 ? true : null), 60_000, 20);
  const r = await c.exec(['ssh', '-F', '/dev/null', '-o', 'StrictHostKeyChecking=no', '-o', 'UserKnownHostsFile=/tmp/early-known-hosts',
    '-o', 'HostKeyAlgorithms=ssh-ed25519', '-o', 'BatchMode=yes', '-o', 'IdentityAgent=none', '-o', 'PubkeyAuthentication=no',
    '-o', 'ProxyCommand=/usr/lib/systemd/systemd-ssh-proxy unix' + UNIX_SOCKET + ' %p', '-o', 'ProxyUseFdpass=yes',
    'probe@early', 'true'], 120_000);
  const known = await c.exec(['cat', '/tmp/early-known-hosts'], 10_000);
  const line = known.stdout.split('\n').find((l) => l.includes('ssh-ed25519'));
  assert.ok(line, `no host key from the AF_UNIX socket: ${r.stderr.trim()}`);
  const fp = (await fingerprintsOf(`${line.slice(line.indexOf('ssh-ed25519'))}\n`)).get('ed25519');
  assert.ok(fp);
  return fp;
}

async function assertNoPasswordLogin(bed: Testbed): Promise<void> {
  for (const user of ['root', USER]) {
    const r = await bed.passwordLogin(user, IMAGE_PASSWORD);
    assert.notEqual(r.code, 0, `a password login as ${user} worked`);
    assert.ok(!r.methods.includes('password') && !r.methods.includes('keyboard-interactive'), `sshd still offers ${r.methods.join(',')} to ${user}`);
  }
}

/** Offline, in the tree: cloud-init "installed and enabled" as imprint detects it (a stand-in unit that does nothing). */
async function fakeCloudInit(tree: string): Promise<void> {
  await writeFile(join(tree, 'usr/bin/cloud-init'), '#!/bin/sh\nexit 0\n', { mode: 0o755 });
  await writeFile(join(tree, 'etc/systemd/system/cloud-init.service'), '[Unit]\nDescription=cloud-init stand-in (e2e)\n[Service]\nType=oneshot\nExecStart=/bin/true\n[Install]\nWantedBy=multi-user.target\n');
  await symlink('/etc/systemd/system/cloud-init.service', join(tree, 'etc/systemd/system/multi-user.target.wants/cloud-init.service'));
}

/** Offline: sshd started by ssh.socket instead of ssh.service. */
async function socketActivated(tree: string): Promise<void> {
  const { rm } = await import('node:fs/promises');
  await rm(join(tree, 'etc/systemd/system/multi-user.target.wants/ssh.service'), { force: true });
  await mkdir(join(tree, 'etc/systemd/system/sockets.target.wants'), { recursive: true });
  const unitDir = (await readFile(join(tree, 'etc/systemd/system/sshd.service'), 'utf8').catch(() => null)) === null ? '/lib/systemd/system' : '/usr/lib/systemd/system';
  await symlink(`${unitDir}/ssh.socket`, join(tree, 'etc/systemd/system/sockets.target.wants/ssh.socket'));
}

const RELEASES: { debian: DebianSuite; release: number }[] = [
  { debian: 'trixie', release: 13 },
  { debian: 'bookworm', release: 12 },
];
const only = process.env.IMPRINT_E2E_RELEASES?.split(',');

for (const { debian, release } of RELEASES.filter((r) => !only || only.includes(r.debian))) {
  describe(`e2e release matrix: Debian ${release} (${debian}) booted`, function () {
    this.timeout(900_000);
    let suite: Suite;
    let golden: Golden;
    const lab = new Lab(() => suite, `rel${release}`);
    before(async function () {
      this.timeout(1_200_000);
      suite = await acquireSuite(debian);
      golden = await suite.golden('imprint');
      for (const n of golden.notes) log(`image: ${n}`);
    });
    after(async () => { await lab.teardown(); await releaseSuite(); });
    afterEach(async function () {
      if (this.currentTest?.state === 'failed') process.stderr.write(`${await lab.diagnostics()}\n`);
      // One instance at a time: they share the lab's network namespace (and port 22 in it).
      for (const c of lab.containers) if (c.running) await c.stop();
    });

    it('provisioning: no socket (AF_UNIX on 256+, TCP) serves a baked host key; key login; passwords refused; unit active, no "protocol"', async () => {
      const key = await suite.newKey(`rel${release}`);
      const tree = await lab.tree(golden.dir, 'prov');
      await lab.startEmulator({ instanceId: `i-0e2e00000000${release}c01`, keys: [key.public] });
      const bed = lab.bed as Testbed;
      const c = await lab.boot(tree, 'prov');
      const baked = [...golden.baked.values()];
      if (release >= 13) {
        const early = await earliestUnixSocketHostKey(c);
        log(`first AF_UNIX connection was served ed25519 ${early}`);
        assert.ok(!baked.includes(early), 'the AF_UNIX socket served the image\'s baked host key');
        assert.equal(early, (await hostKeyFingerprints(tree)).get('ed25519'), 'the key imprint wrote');
      }
      const login = await c.waitForLogin(key.private, USER, LOGIN_DEADLINE_MS);
      log(`first key login ${Math.round(login.ms)} ms after container start`);
      const offered = await bed.scanHostKeys();
      for (const [type, fp] of offered) assert.ok(!baked.includes(fp), `TCP: the ${type} host key is the baked one`);
      await assertNoPasswordLogin(bed);
      const show = await settledUnit(c);
      log(`imprint.service: ${JSON.stringify(show)}`);
      assert.equal(show.ActiveState, 'active', JSON.stringify(show));
      assert.equal(show.Result, 'success', JSON.stringify(show));
      assert.equal(show.StatusText, 'done');
      // imprint-generator's drop-in: the hardening systemd >= 249 knows (both releases here).
      const hardening = parseShow((await c.exec(['systemctl', 'show', '-p', 'PrivateIPC,DropInPaths', 'imprint.service'])).stdout);
      assert.equal(hardening.PrivateIPC, 'yes', JSON.stringify(hardening));
      assert.match(hardening.DropInPaths ?? '', /50-imprint-hardening\.conf/);
      const journal = (await c.exec(['journalctl', '-b', '--no-pager', '-u', 'imprint.service'])).stdout;
      assert.doesNotMatch(journal, /protocol|Unknown key/);
    });

    it('stand-aside (cloud-init enabled): READY and the reason arrive; unit active, not failed with "protocol"', async () => {
      const tree = await lab.tree(golden.dir, 'aside');
      await fakeCloudInit(tree);
      await lab.stopEmulator();
      const c = await lab.boot(tree, 'aside');
      const show = await settledUnit(c);
      log(`imprint.service: ${JSON.stringify(show)}`);
      assert.equal(show.ActiveState, 'active', JSON.stringify(show));
      assert.equal(show.Result, 'success', JSON.stringify(show));
      assert.match(show.StatusText ?? '', /stands aside/);
    });

    it('ssh.socket activation: sshd started by its socket serves imprint\'s keys and logs in with the launch key', async () => {
      const key = await suite.newKey(`sock${release}`);
      const tree = await lab.tree(golden.dir, 'socket');
      await socketActivated(tree);
      await lab.startEmulator({ instanceId: `i-0e2e00000000${release}d01`, keys: [key.public] });
      const bed = lab.bed as Testbed;
      const c = await lab.boot(tree, 'socket');
      const socket = await waitFor('ssh.socket settled', async () => {
        const show = parseShow((await c.exec(['systemctl', 'show', '-p', 'ActiveState,Result', 'ssh.socket'], 15_000)).stdout);
        return show.ActiveState && !['activating', 'inactive'].includes(show.ActiveState) ? show : null;
      }, 120_000, 100);
      if (socket.ActiveState !== 'active') {
        const why = await c.exec(['journalctl', '-b', '--no-pager', '-u', 'ssh.socket', '-u', 'ssh.service', '-u', 'sshd-keygen.service'], 15_000);
        assert.fail(`ssh.socket ${JSON.stringify(socket)}:\n${why.stdout}${why.stderr}`);
      }
      await c.waitForLogin(key.private, USER, LOGIN_DEADLINE_MS);
      const active = await bed.sshOk(key.private, USER, 'systemctl is-active ssh.socket; systemctl is-enabled ssh.service || true');
      assert.match(active, /^active$/m);
      const offered = await bed.scanHostKeys();
      for (const [type, fp] of offered) assert.ok(![...golden.baked.values()].includes(fp), `the ${type} host key is the baked one`);
      assert.deepEqual([...offered.entries()].sort(), [...(await hostKeyFingerprints(tree)).entries()].filter(([t]) => offered.has(t)).sort());
    });
  });
}
