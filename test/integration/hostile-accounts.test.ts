import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { chown, mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { imprint } from '../support/cli.js';
import { shadowStates } from '../support/checks.js';
import { plantEvilNss, type EvilNss } from '../support/evil-nss.js';
import { FAST_KEYS_CONFIG, removeScratch, scratchImage, writeConfig } from '../support/tree.js';

// Nothing of the image runs with imprint's privileges when imprint edits accounts: a tree
// whose nsswitch.conf names an NSS module of its own (which escapes any chroot and writes a
// marker outside the tree) is booted, sealed and audited with --root; the module must never
// be loaded. The control proves the tree is hostile enough: shadow-utils' own --root (what
// imprint ran before) loads it.

describe('a hostile image\'s NSS module never runs (accounts)', function () {
  let root: string;
  let evil: EvilNss;

  beforeEach(async () => {
    root = await scratchImage();
    evil = await plantEvilNss(root);
  });
  afterEach(async () => {
    await evil.cleanup();
    await removeScratch(root);
  });

  it('(control) shadow-utils with --root loads it: usermod --root runs the image\'s code', async () => {
    // The module ends usermod at once (_exit 97) after writing its marker: nothing is changed.
    const run = await promisify(execFile)('usermod', ['--root', root, '--lock', 'root']).then(() => 0, (err: { code?: number }) => err.code ?? -1);
    assert.equal(run, 97);
    assert.equal(await evil.ran(), true, 'the control must load the module, or this test proves nothing');
  });

  it('boot --root creates the default user, locks every password and never loads it', async () => {
    await writeConfig(root, `${FAST_KEYS_CONFIG}default_user:\n  name: admin\n  groups: [sudo]\n`);
    const run = await imprint(['boot', '--root', root]);
    assert.equal(await evil.ran(), false, `the image's NSS module ran: ${await readFile(evil.marker, 'utf8').catch(() => '')}`);
    assert.equal(run.code, 0, run.stderr + run.stdout);
    const states = await shadowStates(root);
    assert.equal(states.get('root'), 'locked');
    assert.equal(states.get('admin'), 'locked');
    const home = await stat(path.join(root, 'home/admin'));
    assert.ok(home.isDirectory());
    assert.match(await readFile(path.join(root, 'etc/passwd'), 'utf8'), /^admin:x:(\d+):\1:[^:]*:\/home\/admin:\/bin\/bash$/m);
    assert.equal(home.uid, Number(/^admin:x:(\d+):/m.exec(await readFile(path.join(root, 'etc/passwd'), 'utf8'))?.[1]));
  });

  it('seal --root locks the passwords and never loads it; audit --root neither', async () => {
    const sealed = await imprint(['seal', '--root', root, '--operations', 'passwords']);
    assert.equal(await evil.ran(), false, 'seal loaded the image\'s NSS module');
    assert.equal(sealed.code, 0, sealed.stderr + sealed.stdout);
    for (const [name, state] of await shadowStates(root)) assert.notEqual(state, 'usable', `${name} still has a usable password`);
    const audited = await imprint(['audit', '--root', root]);
    assert.equal(await evil.ran(), false, 'audit loaded the image\'s NSS module');
    assert.ok(audited.code === 0 || audited.code === 1, audited.stderr);
  });

  it('seal --root --remove-user deletes a build account (its lines, its group, its home) and never loads it', async () => {
    // Written by hand: useradd --root would itself load the module (the control above).
    for (const [file, line] of [['etc/passwd', 'packer:x:1500:1500::/home/packer:/bin/sh'], ['etc/shadow', 'packer:!:19000:0:99999:7:::'], ['etc/group', 'packer:x:1500:']] as const) {
      await writeFile(path.join(root, file), line + '\n', { flag: 'a' });
    }
    await mkdir(path.join(root, 'home/packer'), { recursive: true });
    await chown(path.join(root, 'home/packer'), 1500, 1500);
    const sealed = await imprint(['seal', '--root', root, '--operations', 'build-user', '--remove-user', 'packer']);
    assert.equal(await evil.ran(), false, 'seal --remove-user loaded the image\'s NSS module');
    assert.equal(sealed.code, 0, sealed.stderr + sealed.stdout);
    for (const file of ['etc/passwd', 'etc/shadow', 'etc/group']) assert.doesNotMatch(await readFile(path.join(root, file), 'utf8'), /^packer:/m, file);
    await assert.rejects(stat(path.join(root, 'home/packer')), 'the home is removed');
  });
});
