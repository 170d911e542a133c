import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { appendFile, copyFile, mkdir, readdir } from 'node:fs/promises';
import path from 'node:path';
import { CLI, type CliRun } from '../support/cli.js';
import { effectiveSshd, hostKeyPairs, setting, shadowStates } from '../support/checks.js';
import { removeScratch, scratchImage } from '../support/tree.js';

// A failure fails safe: when ssh-keygen cannot write (a full filesystem, an immutable
// directory) or the image's key cannot be removed (immutable), host-keys is a reported task
// failure, the other tasks still run (sshd keys-only above all), no temp key is left, the
// image's keys are unchanged and imprint exits 1 with its report. The host key directory
// /etc/ssh/hk is a tiny tmpfs mounted in a private mount namespace the test creates (unshare
// -m), so nothing outlives the run; what is left in it is listed before the namespace ends.

type Fault = 'full' | 'immutable-dir' | 'immutable-old-key';

// $0 = the directory, $1 = the fault, then the command. A test harness script, not product code.
const HARNESS = `
dir="$0"; fault="$1"; shift
mount -t tmpfs -o size=64k,mode=0755 tmpfs "$dir" || exit 90
case "$fault" in
  full) head -c 65536 /dev/zero > "$dir/fill" 2>/dev/null ;;
  immutable-dir) chattr +i "$dir" || exit 91 ;;
  immutable-old-key) cp -p "$dir.seed/"* "$dir/" && chattr +i "$dir/ssh_host_ed25519_key" || exit 91 ;;
esac
"$@"; rc=$?
echo "LEFT: $(ls -A "$dir" | grep -v '^fill$' | tr '\\n' ' ')" >&2
exit $rc
`;

function bootWithFault(root: string, fault: Fault): Promise<CliRun & { left: string[] }> {
  const dir = path.join(root, 'etc/ssh/hk');
  const args = ['-m', '--propagation', 'private', '--', '/bin/sh', '-c', HARNESS, dir, fault, process.execPath, CLI, 'boot', '--root', root, '--json'];
  return new Promise((resolve) => {
    execFile('unshare', args, { env: { PATH: process.env.PATH, IMPRINT_FORBID_METADATA_ADDRESS: '1' }, maxBuffer: 16 * 1024 * 1024 }, (err, stdout, stderr) => {
      const e = err as (NodeJS.ErrnoException & { code?: number | string; signal?: NodeJS.Signals }) | null;
      const left = (/^LEFT: (.*)$/m.exec(stderr)?.[1] ?? '').split(' ').filter(Boolean);
      resolve({ code: typeof e?.code === 'number' ? e.code : e ? -1 : 0, stdout, stderr, signal: e?.signal ?? null, left });
    });
  });
}

interface Report {
  exitCode: number;
  tasks: { task: string; status: string; error?: string }[];
}

describe('a failed key generation fails safe', function () {
  let root: string;

  beforeEach(async () => {
    root = await scratchImage();
    // sshd loads ecdsa from /etc/ssh and ed25519 from the faulty directory.
    await mkdir(path.join(root, 'etc/ssh/hk'));
    await appendFile(path.join(root, 'etc/ssh/sshd_config'), 'HostKey /etc/ssh/ssh_host_ecdsa_key\nHostKey /etc/ssh/hk/ssh_host_ed25519_key\n');
  });
  afterEach(async () => {
    await removeScratch(root);
  });

  for (const fault of ['full', 'immutable-dir', 'immutable-old-key'] as const) {
    it(`${fault}: host-keys fails and says so, sshd is still made keys-only, passwords locked, no temp key left`, async () => {
      if (fault === 'immutable-old-key') {
        // The image's ed25519 key lives in the faulty directory, and cannot be removed.
        await mkdir(path.join(root, 'etc/ssh/hk.seed'));
        for (const f of ['ssh_host_ed25519_key', 'ssh_host_ed25519_key.pub']) await copyFile(path.join(root, 'etc/ssh', f), path.join(root, 'etc/ssh/hk.seed', f));
      }
      const before = await hostKeyPairs(root);
      const run = await bootWithFault(root, fault);
      assert.ok(run.code !== 90 && run.code !== 91, `the test could not set up the fault: ${run.stderr}`);
      assert.equal(run.code, 1, `exit status: ${run.stderr}`);
      const report = JSON.parse(run.stdout) as Report;
      const status = Object.fromEntries(report.tasks.map((t) => [t.task, t.status]));
      assert.equal(status['host-keys'], 'failed');
      assert.match(report.tasks.find((t) => t.task === 'host-keys')?.error ?? '', fault === 'immutable-old-key' ? /./ : /key generation failed, the image's keys are unchanged/);
      assert.equal(status['sshd-config'], 'done', 'sshd hardening ran despite the host-keys failure');
      assert.equal(status.passwords, 'done');
      assert.doesNotMatch(run.stderr, /internal error|UnhandledPromiseRejection|unhandled/i);
      assert.deepEqual(run.left.filter((n) => n.startsWith('.imprint')), [], 'temp key files left in the faulty directory');
      assert.deepEqual((await readdir(path.join(root, 'etc/ssh'))).filter((n) => n.startsWith('.imprint')), [], 'temp files left in /etc/ssh');
      // The image's keys in /etc/ssh: the ones not yet replaced are still there, as pairs.
      if (fault !== 'immutable-old-key') {
        assert.deepEqual((await hostKeyPairs(root)).map((k) => k.fingerprint).sort(), before.map((k) => k.fingerprint).sort(), 'the image\'s keys are unchanged');
      }
      assert.equal(setting(await effectiveSshd(root), 'passwordauthentication'), 'no');
      assert.equal((await shadowStates(root)).get('root'), 'locked');
    });
  }
});
