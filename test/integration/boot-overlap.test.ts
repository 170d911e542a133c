import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { startEmulator, type RunningEmulator } from '../../agent/metadata/emulator.js';
import { imprint } from '../support/cli.js';
import { debianRootfsTarball, IMAGE_USER, removeTree, unpackRootfs } from '../support/debian-rootfs.js';

// Issue 12: the network phase starts at process start, beside the local phase, so the HTTP stack
// loads and the key is fetched while ssh-keygen and sshd work. Seen on a real Debian 12 tree
// whose sshd -T (the sshd-config task's check, on the local phase's path) is held at a gate
// that opens only when the metadata service has been asked: a boot that asks only after the
// local phase would find its sshd check never answering (the sandbox's 60 s deadline fails it).

const exec = promisify(execFile);

describe('imprint boot: the metadata is asked for while the local phase works', function () {
  this.timeout(300_000);
  let tree = '';
  let emulator: RunningEmulator | null = null;

  before(async function () {
    const tarball = await debianRootfsTarball('bookworm');
    if (tarball === null) {
      if (process.env.CI) throw new Error('CI must be able to build the Debian rootfs');
      this.skip();
    }
    tree = await unpackRootfs(tarball);
  });
  after(async () => {
    await emulator?.close();
    if (tree) await removeTree(tree);
  });

  it('asks the metadata service before the local phase is done, and still writes the key after sshd-config and default-user', async () => {
    const priv = path.join(tree, 'root/launch');
    await exec('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'launch', '-f', priv]);
    const pub = (await readFile(`${priv}.pub`, 'utf8')).trim();
    await rm(priv);
    await rm(`${priv}.pub`);
    const gate = path.join(tree, 'etc/ssh/imprint-test-gate');
    // The image's sshd answers -T only once the gate exists (the test makes it when the first
    // request arrives); -V and everything else go straight through.
    await rename(path.join(tree, 'usr/sbin/sshd'), path.join(tree, 'usr/sbin/sshd.real'));
    await writeFile(path.join(tree, 'usr/sbin/sshd'), [
      '#!/bin/sh',
      'case " $* " in *" -T "*) while [ ! -e /etc/ssh/imprint-test-gate ]; do sleep 0.05; done ;; esac',
      'exec /usr/sbin/sshd.real "$@"',
      '',
    ].join('\n'), { mode: 0o755 });
    let askedAt = 0;
    emulator = await startEmulator({
      instanceId: 'i-0123456789abcdef1', keys: [pub],
      log: () => {
        if (askedAt === 0) {
          askedAt = Date.now();
          void writeFile(gate, '');
        }
      },
    });
    await mkdir(path.join(tree, 'etc/imprint'), { recursive: true });
    await writeFile(path.join(tree, 'etc/imprint/imprint.yaml'), `host_keys:\n  types: [ed25519]\nauthorized_keys:\n  user: ${IMAGE_USER}\n`);
    const boot = await imprint(['boot', '--root', tree, '--metadata-url', emulator.url, '--json']);
    const report = JSON.parse(boot.stdout) as { tasks: { task: string; status: string; error?: string }[] };
    const status = (name: string): string | undefined => report.tasks.find((t) => t.task === name)?.status;
    assert.ok(askedAt > 0, 'the metadata service was asked');
    assert.equal(status('sshd-config'), 'done', `sshd -T answered once the service was asked: ${JSON.stringify(report.tasks.find((t) => t.task === 'sshd-config'))}`);
    assert.equal(boot.code, 0, boot.stderr);
    assert.equal(status('authorized-keys'), 'done');
    const keys = await readFile(path.join(tree, `home/${IMAGE_USER}/.ssh/authorized_keys`), 'utf8');
    assert.ok(keys.includes(pub.split(' ')[1] as string), 'the launch key is in place');
  });
});
