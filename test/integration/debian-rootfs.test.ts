import assert from 'node:assert/strict';
import { readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { imprint } from '../support/cli.js';
import { effectiveSshd, hostKeyPairs, setting, shadowStates } from '../support/checks.js';
import { debianRootfsTarball, IMAGE_USER, removeTree, unpackRootfs } from '../support/debian-rootfs.js';

// imprint boot --root on a copy of a real Debian 12 rootfs (mmdebstrap): the image's own sshd
// checks the configuration, inside the image, and shadow-utils work on the image's files.

describe('imprint boot --root on a real Debian 12 rootfs', function () {
  this.timeout(600_000);
  let root: string | null = null;

  before(async function () {
    const tarball = await debianRootfsTarball();
    if (tarball === null) {
      if (process.env.CI) throw new Error('CI must be able to build the Debian rootfs (mmdebstrap, root)');
      this.skip();
    }
    root = await unpackRootfs(tarball as string);
  });
  after(async () => {
    if (root) await removeTree(root);
  });

  it('leaves new host keys, locked passwords and a keys-only sshd that the image\'s sshd accepts', async () => {
    const tree = root as string;
    const baked = await hostKeyPairs(tree);
    assert.equal(setting(await effectiveSshd(tree), 'passwordauthentication'), 'yes', 'the stock image allows passwords');
    assert.equal((await shadowStates(tree)).get('root'), 'usable');

    const run = await imprint(['boot', '--root', tree, '--json']);
    assert.equal(run.code, 0, run.stderr);
    const report = JSON.parse(run.stdout) as { tasks: { task: string; details: Record<string, unknown> }[] };
    assert.equal(report.tasks.find((t) => t.task === 'sshd-config')?.details.checkedWith, 'image-sshd', 'checked with the image\'s own sshd');

    const fresh = await hostKeyPairs(tree);
    assert.deepEqual(fresh.map((k) => k.name), baked.map((k) => k.name));
    for (const key of fresh) assert.ok(!baked.some((b) => b.fingerprint === key.fingerprint), `${key.name} not regenerated`);
    const states = await shadowStates(tree);
    assert.equal(states.get('root'), 'locked');
    assert.equal(states.get(IMAGE_USER), 'locked');
    const effective = await effectiveSshd(tree);
    assert.equal(setting(effective, 'passwordauthentication'), 'no');
    assert.equal(setting(effective, 'kbdinteractiveauthentication'), 'no');
    assert.equal(setting(effective, 'permitrootlogin'), 'without-password');
    assert.match(await readFile(path.join(tree, 'etc/ssh/sshd_config.d/00-imprint.conf'), 'utf8'), /^PasswordAuthentication no$/m);
    // The privilege-separation directory made for the check is gone again.
    await assert.rejects(stat(path.join(tree, 'run/sshd')));

    const again = await imprint(['boot', '--root', tree]);
    assert.equal(again.code, 0);
    assert.match(again.stdout, /already provisioned/);
    assert.deepEqual((await hostKeyPairs(tree)).map((k) => k.fingerprint), fresh.map((k) => k.fingerprint));
  });
});
