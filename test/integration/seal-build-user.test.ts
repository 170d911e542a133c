import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { lstat, mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { Writable } from 'node:stream';
import { promisify } from 'node:util';
import { sealCommand } from '../../agent/commands/seal.js';
import type { SealReport } from '../../agent/seal/report.js';
import { removeScratch, scratchImage } from '../support/tree.js';

// seal --remove-user (a build account made by the real useradd, removed by imprint itself) and --first-boot (the
// machine-id form that gives systemd's first-boot mode), on scratch trees.

const exec = promisify(execFile);

function sink(chunks: string[]): Writable {
  return new Writable({
    write(chunk: Buffer | string, _enc, done) {
      chunks.push(chunk.toString());
      done();
    },
  });
}

async function seal(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const out: string[] = [];
  const err: string[] = [];
  const code = await sealCommand(args, { out: sink(out), err: sink(err) });
  return { code, stdout: out.join(''), stderr: err.join('') };
}

const exists = (p: string): Promise<boolean> => lstat(p).then(() => true, () => false);
const accountNames = async (root: string, file: string): Promise<string[]> => (await readFile(path.join(root, file), 'utf8')).split('\n').filter(Boolean).map((l) => l.split(':')[0] as string);

describe('imprint seal --remove-user and --first-boot', function () {
  this.timeout(60_000);
  let root: string;

  beforeEach(async () => {
    root = await scratchImage();
    // As on Debian and Fedora: userdel removes the user's own group too.
    await writeFile(path.join(root, 'etc/login.defs'), 'USERGROUPS_ENAB yes\n', { flag: 'a' });
    await exec('useradd', ['--root', root, '--create-home', '--user-group', '--shell', '/bin/bash', 'packer']);
    await writeFile(path.join(root, 'home/packer/.bash_history'), 'packer build\n');
    await mkdir(path.join(root, 'etc/sudoers.d'), { recursive: true });
    await writeFile(path.join(root, 'etc/sudoers.d/90-packer'), '# added by the build\npacker ALL=(ALL) NOPASSWD:ALL\nDefaults:packer !requiretty\n', { mode: 0o440 });
    await writeFile(path.join(root, 'etc/sudoers.d/99-site'), 'packer ALL=(ALL) ALL\n%admins ALL=(ALL) ALL\n', { mode: 0o440 });
    await writeFile(path.join(root, 'etc/sudoers'), 'root ALL=(ALL:ALL) ALL\npacker ALL=(ALL:ALL) NOPASSWD: ALL\n@includedir /etc/sudoers.d\n', { mode: 0o440 });
  });
  afterEach(async () => {
    await removeScratch(root);
  });

  it('removes the build account, its home and the sudoers file that holds only its rules; names the rules it does not edit', async () => {
    const run = await seal(['--root', root, '--operations', 'machine-id', '--remove-user', 'packer', '--json']);
    assert.equal(run.code, 0, run.stderr);
    const report = JSON.parse(run.stdout) as SealReport;
    assert.ok(report.operations.includes('build-user'), 'naming a build account selects its operation');
    for (const file of ['etc/passwd', 'etc/shadow', 'etc/group']) assert.ok(!(await accountNames(root, file)).includes('packer'), file);
    assert.equal(await exists(path.join(root, 'home/packer')), false, 'home left behind');
    assert.equal(await exists(path.join(root, 'etc/sudoers.d/90-packer')), false);
    assert.equal(await readFile(path.join(root, 'etc/sudoers.d/99-site'), 'utf8'), 'packer ALL=(ALL) ALL\n%admins ALL=(ALL) ALL\n');
    assert.match(run.stderr, /seal: build-user: warning: has rules for packer and for others: not edited; remove packer's lines with visudo -f \/etc\/sudoers.d\/99-site/);
    assert.match(run.stderr, /seal: build-user: warning: \/etc\/sudoers has a rule for packer: not edited; remove it with visudo/);
    assert.match(run.stderr, /seal: build-user: deleted \(with its home\) the account packer: build account/);
    // Run again: nothing left for it to do.
    const again = await seal(['--root', root, '--operations', 'machine-id', '--remove-user', 'packer']);
    assert.equal(again.code, 0);
    assert.match(again.stdout, /seal: nothing to do/);
  });

  it('with --dry-run says what it would remove and changes nothing', async () => {
    const run = await seal(['--root', root, '--operations', 'build-user', '--remove-user', 'packer', '--dry-run']);
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stdout, /seal: build-user: would delete the account packer: build account \(UID \d+, home \/home\/packer\): userdel --remove/);
    assert.match(run.stdout, /seal: build-user: would remove \/etc\/sudoers.d\/90-packer \(\d+ B\): sudoers rules for packer only/);
    assert.ok((await accountNames(root, 'etc/passwd')).includes('packer'));
  });

  it('never removes root or a UID 0 account, and refuses a name that is not a user name', async () => {
    assert.equal((await seal(['--root', root, '--remove-user', 'root', '--dry-run'])).code, 2);
    assert.equal((await seal(['--root', root, '--remove-user', 'Packer;rm', '--dry-run'])).code, 2);
    await writeFile(path.join(root, 'etc/passwd'), `${await readFile(path.join(root, 'etc/passwd'), 'utf8')}toor:x:0:0::/root:/bin/sh\n`);
    const run = await seal(['--root', root, '--operations', 'build-user', '--remove-user', 'toor']);
    assert.equal(run.code, 1);
    assert.match(run.stdout, /seal: build-user: error: toor has UID 0: never removed/);
    assert.ok((await accountNames(root, 'etc/passwd')).includes('toor'));
  });

  it('empties /etc/machine-id by default (a new id without systemd\'s first-boot mode), and says so', async () => {
    await writeFile(path.join(root, 'etc/machine-id'), '0123456789abcdef0123456789abcdef\n');
    const run = await seal(['--root', root, '--operations', 'machine-id']);
    assert.equal(run.code, 0, run.stderr);
    assert.equal(await readFile(path.join(root, 'etc/machine-id'), 'utf8'), '');
    assert.match(run.stdout, /without first-boot mode \(unit presets are not re-applied\)/);
  });

  it('with --first-boot writes "uninitialized" (mode 0444), and a second run leaves it', async () => {
    await writeFile(path.join(root, 'etc/machine-id'), '0123456789abcdef0123456789abcdef\n');
    const run = await seal(['--root', root, '--operations', 'machine-id', '--first-boot']);
    assert.equal(run.code, 0, run.stderr);
    assert.equal(await readFile(path.join(root, 'etc/machine-id'), 'utf8'), 'uninitialized\n');
    assert.equal((await stat(path.join(root, 'etc/machine-id'))).mode & 0o777, 0o444);
    assert.match(run.stdout, /write "uninitialized" to \/etc\/machine-id|machine-id: .*now "uninitialized"/);
    const again = await seal(['--root', root, '--operations', 'machine-id', '--first-boot']);
    assert.match(again.stdout, /seal: nothing to do/);
    // From an empty machine-id too.
    await writeFile(path.join(root, 'etc/machine-id'), '');
    await seal(['--root', root, '--operations', 'machine-id', '--first-boot']);
    assert.equal(await readFile(path.join(root, 'etc/machine-id'), 'utf8'), 'uninitialized\n');
  });
});
