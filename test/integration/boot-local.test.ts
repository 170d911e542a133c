import assert from 'node:assert/strict';
import { appendFile, mkdir, readdir, readFile, rm, stat, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { imprint } from '../support/cli.js';
import { effectiveSshd, hostKeyPairs, setting, shadowLines, shadowStates } from '../support/checks.js';
import { DEMO_USER, FAST_KEYS_CONFIG, removeScratch, scratchImage, treeDigest, writeConfig } from '../support/tree.js';

// The local phase of `imprint boot --root` on a scratch image, with the real ssh-keygen,
// sshd -T and shadow-utils.

describe('imprint boot --root: local phase', function () {
  let root: string;

  beforeEach(async () => {
    root = await scratchImage();
  });
  afterEach(async () => {
    await removeScratch(root);
  });

  it('replaces every baked host key with a new one, with sshd\'s modes, and prints the fingerprint block', async () => {
    const baked = await hostKeyPairs(root);
    const run = await imprint(['boot', '--root', root]);
    assert.equal(run.code, 0, run.stderr);
    const fresh = await hostKeyPairs(root);
    assert.deepEqual(fresh.map((k) => k.name), ['ssh_host_ecdsa_key', 'ssh_host_ed25519_key', 'ssh_host_rsa_key']);
    for (const key of fresh) {
      assert.equal(key.mode, 0o600, `${key.name} mode`);
      assert.equal(key.pubMode, 0o644, `${key.name}.pub mode`);
      assert.equal(key.uid, 0);
      assert.equal(key.gid, 0);
      assert.ok(!baked.some((b) => b.fingerprint === key.fingerprint), `${key.name} is still the baked key`);
    }
    const blocks = [...run.stdout.matchAll(/-----BEGIN SSH HOST KEY FINGERPRINTS-----\n([\s\S]*?)\n-----END SSH HOST KEY FINGERPRINTS-----/g)];
    // One block per boot, complete, though RSA comes in after sshd may start.
    assert.equal(blocks.length, 1, 'one fingerprint block on the console');
    const block = blocks[0];
    assert.ok(block, 'fingerprint block on the console');
    const printed = (block[1] as string).split('\n').map((l) => l.split(' ')[1]).sort();
    assert.deepEqual(printed, fresh.map((k) => k.fingerprint).sort());
    assert.match(block[1] as string, /^3072 SHA256:\S+ root@demo-image \(RSA\)$/m);
    // And cloud-init's block of the public keys themselves, once, right after it.
    const keyBlocks = [...run.stdout.matchAll(/-----END SSH HOST KEY FINGERPRINTS-----\n-----BEGIN SSH HOST KEY KEYS-----\n([\s\S]*?)\n-----END SSH HOST KEY KEYS-----/g)];
    assert.equal(keyBlocks.length, 1, 'one keys block');
    const pubs = await Promise.all(fresh.map(async (k) => (await readFile(path.join(root, `etc/ssh/${k.name}.pub`), 'utf8')).split(' ').slice(0, 2).join(' ')));
    assert.deepEqual((keyBlocks[0]?.[1] as string).split('\n').sort(), pubs.sort());
  });

  it('installs RSA after the fast keys (sshd is checked without it), and makes a missing RSA key on the next run', async () => {
    const run = await imprint(['boot', '--root', root, '--json']);
    assert.equal(run.code, 0, run.stderr);
    const report = JSON.parse(run.stdout) as { tasks: { task: string; status: string; actions: string[] }[] };
    assert.match(report.tasks.find((t) => t.task === 'host-keys')?.actions.join('\n') ?? '', /rsa still generating: sshd starts on ed25519, ecdsa/);
    assert.equal(report.tasks.find((t) => t.task === 'host-keys-late')?.status, 'done');
    const first = await hostKeyPairs(root);
    assert.equal(first.length, 3);
    // As if killed after the fast keys: RSA missing and not recorded as done.
    await rm(path.join(root, 'etc/ssh/ssh_host_rsa_key'));
    await rm(path.join(root, 'etc/ssh/ssh_host_rsa_key.pub'));
    const stateFile = path.join(root, 'var/lib/imprint/state.json');
    const state = JSON.parse(await readFile(stateFile, 'utf8')) as { completed: Record<string, string> };
    delete state.completed['host-keys-late'];
    await writeFile(stateFile, JSON.stringify(state));
    const again = await imprint(['boot', '--root', root]);
    assert.equal(again.code, 0, again.stderr);
    const second = await hostKeyPairs(root);
    assert.deepEqual(second.filter((k) => k.name !== 'ssh_host_rsa_key'), first.filter((k) => k.name !== 'ssh_host_rsa_key'), 'the fast keys stay');
    assert.equal(second.length, 3);
  });

  it('gives private keys 0640 root:ssh_keys where the image has that group', async () => {
    await appendFile(path.join(root, 'etc/group'), 'ssh_keys:x:998:\n');
    // The group exists on Fedora/RHEL, whose patched sshd accepts 0640 keys; Debian's sshd (the
    // one here) refuses them, so this checks the key task alone.
    await writeConfig(root, `${FAST_KEYS_CONFIG}sshd:\n  enabled: false\n`);
    assert.equal((await imprint(['boot', '--root', root])).code, 0);
    for (const key of await hostKeyPairs(root)) {
      assert.equal(key.mode, 0o640);
      assert.equal(key.gid, 998);
    }
  });

  it('follows the HostKey lines of sshd_config when the config does not name types', async () => {
    await appendFile(path.join(root, 'etc/ssh/sshd_config'), 'HostKey /etc/ssh/ssh_host_ed25519_key\n');
    const run = await imprint(['boot', '--root', root]);
    assert.equal(run.code, 0, run.stderr);
    assert.deepEqual((await hostKeyPairs(root)).map((k) => k.name), ['ssh_host_ed25519_key']);
  });

  it('randomizes and locks root and every account with a usable or empty password; other lines stay byte for byte', async () => {
    await appendFile(path.join(root, 'etc/passwd'), 'carol:x:1001:1001::/home/carol:/bin/sh\nemptypw:x:1002:1002::/:/bin/sh\nkept:x:1003:1003::/:/bin/sh\n');
    const before = await shadowLines(root);
    const carolHash = (before.get('root') as string).split(':')[1] as string;
    await appendFile(path.join(root, 'etc/shadow'), `carol:${carolHash}:19700:0:99999:7:::\nemptypw::19700:0:99999:7:::\nkept:${carolHash}:19700:0:99999:7:::\n`);
    await writeConfig(root, `${FAST_KEYS_CONFIG}passwords:\n  exclude: [kept]\n`);
    const untouched = await shadowLines(root);
    const oldRoot = untouched.get('root') as string;
    const run = await imprint(['boot', '--root', root, '--json']);
    assert.equal(run.code, 0, run.stderr);
    const states = await shadowStates(root);
    for (const user of ['root', DEMO_USER, 'carol', 'emptypw']) assert.equal(states.get(user), 'locked', user);
    const after = await shadowLines(root);
    // Locked with a new random hash, not just the old one behind "!".
    assert.notEqual((after.get('root') as string).split(':')[1]?.replace(/^!/, ''), oldRoot.split(':')[1]);
    for (const user of ['daemon', 'bin', 'sys', 'sshd', 'kept']) assert.equal(after.get(user), untouched.get(user), `${user} changed`);
    const report = JSON.parse(run.stdout) as { tasks: { task: string; details: { accounts?: { account: string }[] } }[] };
    const locked = report.tasks.find((t) => t.task === 'passwords')?.details.accounts?.map((a) => a.account).sort();
    assert.deepEqual(locked, ['carol', DEMO_USER, 'emptypw', 'root'].sort());
    assert.doesNotMatch(run.stdout + run.stderr, /\$6\$|\$y\$/, 'no hash or password in the output');
  });

  it('makes sshd keys-only through a drop-in read before the image\'s own, proved by sshd -T', async () => {
    assert.equal(setting(await effectiveSshd(root), 'passwordauthentication'), 'yes', 'the image allows passwords');
    const mainBefore = await readFile(path.join(root, 'etc/ssh/sshd_config'), 'utf8');
    const cloudInit = await readFile(path.join(root, 'etc/ssh/sshd_config.d/50-cloud-init.conf'), 'utf8');
    await writeConfig(root, FAST_KEYS_CONFIG);
    const run = await imprint(['boot', '--root', root, '--json']);
    assert.equal(run.code, 0, run.stderr);
    const effective = await effectiveSshd(root);
    assert.equal(setting(effective, 'passwordauthentication'), 'no');
    assert.equal(setting(effective, 'kbdinteractiveauthentication'), 'no');
    assert.equal(setting(effective, 'permitemptypasswords'), 'no');
    assert.equal(setting(effective, 'pubkeyauthentication'), 'yes');
    assert.equal(setting(effective, 'permitrootlogin'), 'without-password');
    assert.equal(setting(effective, 'usedns'), 'no');
    assert.equal(await readFile(path.join(root, 'etc/ssh/sshd_config'), 'utf8'), mainBefore);
    assert.equal(await readFile(path.join(root, 'etc/ssh/sshd_config.d/50-cloud-init.conf'), 'utf8'), cloudInit);
    const report = JSON.parse(run.stdout) as { tasks: { task: string; details: { effective?: Record<string, string>; mode?: string } }[] };
    const sshd = report.tasks.find((t) => t.task === 'sshd-config');
    assert.equal(sshd?.details.mode, 'drop-in');
    assert.equal(sshd?.details.effective?.passwordauthentication, 'no');
  });

  it('edits sshd_config in place when it has no Include, keeping comments and other lines, and neutralising the Match block\'s password line', async () => {
    const main = [
      '# my image', 'Port 22', 'PasswordAuthentication yes', '#PermitRootLogin yes', 'X11Forwarding no', '',
      'Match User backup', '  PasswordAuthentication yes', '  ForceCommand /bin/false', '',
    ].join('\n');
    await writeFile(path.join(root, 'etc/ssh/sshd_config'), main);
    await writeConfig(root, FAST_KEYS_CONFIG);
    const run = await imprint(['boot', '--root', root]);
    assert.equal(run.code, 0, run.stderr);
    const text = await readFile(path.join(root, 'etc/ssh/sshd_config'), 'utf8');
    const lines = text.split('\n');
    assert.ok(lines.includes('PasswordAuthentication no'));
    assert.ok(lines.includes('# imprint: was "PasswordAuthentication yes"'));
    for (const kept of ['# my image', 'Port 22', '#PermitRootLogin yes', 'X11Forwarding no', 'Match User backup', '  ForceCommand /bin/false']) assert.ok(lines.includes(kept), kept);
    // Added settings go before the Match block, where they apply to every connection.
    assert.ok(lines.indexOf('PermitRootLogin prohibit-password') < lines.indexOf('Match User backup'));
    // The Match block's own password line is neutralised in place (it would apply to backup's logins).
    assert.ok(lines.indexOf('  PasswordAuthentication no') > lines.indexOf('Match User backup'));
    assert.ok(lines.includes('  # imprint: was "PasswordAuthentication yes"'));
    assert.equal(setting(await effectiveSshd(root), 'passwordauthentication'), 'no');
  });

  it('edits a conflicting line that sshd reads before the Include', async () => {
    const file = path.join(root, 'etc/ssh/sshd_config');
    await writeFile(file, `PasswordAuthentication yes\n${await readFile(file, 'utf8')}`);
    await writeConfig(root, FAST_KEYS_CONFIG);
    assert.equal((await imprint(['boot', '--root', root])).code, 0);
    assert.match(await readFile(file, 'utf8'), /^# imprint: was "PasswordAuthentication yes"\nPasswordAuthentication no\n/);
    assert.equal(setting(await effectiveSshd(root), 'passwordauthentication'), 'no');
  });

  it('applies the keys-only core without an extra setting sshd rejects, names it at imprint.yaml:line:col, exits 1; --dry-run catches it too', async () => {
    const sshdDir = path.join(root, 'etc/ssh');
    const cloudInit = await readFile(path.join(sshdDir, 'sshd_config.d/50-cloud-init.conf'), 'utf8');
    await writeConfig(root, `${FAST_KEYS_CONFIG}sshd:\n  settings:\n    X11Forwarding: no\n    NoSuchOption: yes\n`);
    const dry = await imprint(['boot', '--root', root, '--dry-run']);
    assert.equal(dry.code, 1, dry.stdout);
    assert.match(dry.stderr + dry.stdout, /imprint\.yaml:6:5: sshd rejects NoSuchOption yes: Bad configuration option: NoSuchOption/);
    await assert.rejects(stat(path.join(sshdDir, 'sshd_config.d/00-imprint.conf')), 'a dry run writes nothing');

    const run = await imprint(['boot', '--root', root]);
    assert.equal(run.code, 1);
    const out = run.stderr + run.stdout;
    assert.match(out, /sshd-config: error: [^\n]*imprint\.yaml:6:5: sshd rejects NoSuchOption yes: Bad configuration option: NoSuchOption/);
    assert.doesNotMatch(out, /imprint-check|\.tmp\b/, 'no temp file name in the message');
    const dropIn = await readFile(path.join(sshdDir, 'sshd_config.d/00-imprint.conf'), 'utf8');
    assert.match(dropIn, /^PasswordAuthentication no$/m);
    assert.match(dropIn, /^X11Forwarding no$/m, 'the extra setting sshd accepts is applied');
    assert.doesNotMatch(dropIn, /NoSuchOption/);
    assert.equal(await readFile(path.join(sshdDir, 'sshd_config.d/50-cloud-init.conf'), 'utf8'), cloudInit);
    assert.equal(setting(await effectiveSshd(root), 'passwordauthentication'), 'no', 'password logins are off although an extra setting was bad');
    assert.equal((await shadowStates(root)).get('root'), 'locked', 'passwords are still locked');
    // The failed task is retried at the next boot; the done ones are not.
    const again = await imprint(['boot', '--root', root]);
    assert.match(again.stdout, /host-keys: already done/);
    assert.match(again.stderr + again.stdout, /sshd-config: error: [^\n]*sshd rejects NoSuchOption/);
  });

  it('checks and proves keys-only in one sshd start: sshd -T once per login context, the written files compared with the checked bytes', async () => {
    await writeConfig(root, FAST_KEYS_CONFIG);
    const run = await imprint(['boot', '--root', root, '--json']);
    assert.equal(run.code, 0, run.stderr);
    const report = JSON.parse(run.stdout) as { tasks: { task: string; details: { sshdStarts?: number; sshdRuns?: number; contexts?: number } }[] };
    const sshd = report.tasks.find((t) => t.task === 'sshd-config')?.details;
    assert.equal(sshd?.sshdStarts, 1, 'one sandbox start on the boot\'s path (the check used to be repeated on the written files)');
    assert.equal(sshd?.sshdRuns, 1 + (sshd?.contexts ?? NaN), 'sshd -T without -C, then one per login context');
    assert.equal(setting(await effectiveSshd(root), 'passwordauthentication'), 'no', 'the tree\'s sshd agrees on the written files');
  });

  it('a candidate sshd refuses is never written: the sshd files stay byte for byte, and the task says so', async () => {
    await writeConfig(root, FAST_KEYS_CONFIG);
    const sshdDir = path.join(root, 'etc/ssh');
    // The image's own drop-in breaks the configuration: every candidate read with it is refused.
    await appendFile(path.join(sshdDir, 'sshd_config.d/50-cloud-init.conf'), 'NoSuchKeyword yes\n');
    const files = async (): Promise<string[]> => [
      await readFile(path.join(sshdDir, 'sshd_config'), 'utf8'),
      ...(await Promise.all((await readdir(path.join(sshdDir, 'sshd_config.d'))).sort().map(async (f) => `${f}\n${await readFile(path.join(sshdDir, 'sshd_config.d', f), 'utf8')}`))),
    ];
    const before = await files();
    const run = await imprint(['boot', '--root', root]);
    assert.equal(run.code, 1, run.stdout);
    assert.match(run.stderr + run.stdout, /sshd-config: error: [^\n]*sshd rejected the new configuration; the old one is kept: [^\n]*NoSuchKeyword/);
    assert.deepEqual(await files(), before);
  });

  it('changes nothing on a second run for the same instance', async () => {
    await writeConfig(root, FAST_KEYS_CONFIG);
    assert.equal((await imprint(['boot', '--root', root])).code, 0);
    const digest = await treeDigest(root, { besidesReports: true });
    const second = await imprint(['boot', '--root', root]);
    assert.equal(second.code, 0);
    assert.match(second.stdout, /already provisioned/);
    assert.equal(await treeDigest(root, { besidesReports: true }), digest);
  });

  it('does all the work again when the state is removed, corrupt, or from another instance', async () => {
    await writeConfig(root, FAST_KEYS_CONFIG);
    assert.equal((await imprint(['boot', '--root', root])).code, 0);
    const stateFile = path.join(root, 'var/lib/imprint/state.json');
    const cases: [string, () => Promise<void>][] = [
      ['removed', () => rm(stateFile)],
      ['corrupt', () => writeFile(stateFile, '{"format": 1, "instance": {')],
      ['another instance (a clone with a new machine-id)', () => writeFile(path.join(root, 'etc/machine-id'), '0123456789abcdef0123456789abcdef\n')],
    ];
    for (const [why, change] of cases) {
      const keys = (await hostKeyPairs(root)).map((k) => k.fingerprint);
      await change();
      const run = await imprint(['boot', '--root', root]);
      assert.equal(run.code, 0, `${why}: ${run.stderr}`);
      const now = (await hostKeyPairs(root)).map((k) => k.fingerprint);
      assert.ok(now.every((fp) => !keys.includes(fp)), `${why}: host keys were not regenerated`);
      assert.doesNotMatch(run.stdout, /already done/, why);
    }
  });

  it('stands aside when cloud-init is installed and enabled, unless told to take over or cloud-init is disabled', async () => {
    await mkdir(path.join(root, 'usr/bin'), { recursive: true });
    await writeFile(path.join(root, 'usr/bin/cloud-init'), '#!/bin/sh\n', { mode: 0o755 });
    await mkdir(path.join(root, 'etc/systemd/system/cloud-init.target.wants'), { recursive: true });
    await symlink('/lib/systemd/system/cloud-init.service', path.join(root, 'etc/systemd/system/cloud-init.target.wants/cloud-init.service'));
    const digest = await treeDigest(root, { besidesReports: true });
    const aside = await imprint(['boot', '--root', root]);
    assert.equal(aside.code, 0);
    assert.match(aside.stdout, /cloud-init is installed and enabled .*imprint stands aside \(coexist: take-over/);
    assert.equal(await treeDigest(root, { besidesReports: true }), digest, 'nothing changed');
    await mkdir(path.join(root, 'etc/cloud'), { recursive: true });
    await writeFile(path.join(root, 'etc/cloud/cloud-init.disabled'), '');
    const disabled = await imprint(['boot', '--root', root]);
    assert.equal(disabled.code, 0);
    assert.match(disabled.stdout, /host-keys: generated/);
    await rm(path.join(root, 'etc/cloud/cloud-init.disabled'));
    await rm(path.join(root, 'var/lib/imprint/state.json'));
    await writeConfig(root, `${FAST_KEYS_CONFIG}coexist: take-over\n`);
    const takeOver = await imprint(['boot', '--root', root]);
    assert.equal(takeOver.code, 0);
    assert.match(takeOver.stdout, /coexist: take-over, so imprint provisions anyway/);
    assert.match(takeOver.stdout, /host-keys: generated/);
  });

  it('--dry-run prints the plan and changes nothing', async () => {
    const digest = await treeDigest(root);
    const run = await imprint(['boot', '--root', root, '--dry-run']);
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stdout, /would generate rsa 3072 \/etc\/ssh\/ssh_host_rsa_key/);
    assert.match(run.stdout, /would write \/etc\/ssh\/sshd_config\.d\/00-imprint\.conf/);
    assert.match(run.stdout, /would set a random password on root and lock it/);
    assert.equal(await treeDigest(root), digest);
  });

  it('creates the default login user locked, with a sudo rule visudo accepts, and turns root logins off', async () => {
    await writeConfig(root, `${FAST_KEYS_CONFIG}default_user:\n  name: admin\n  groups: [sudo, nosuchgroup]\n`);
    const run = await imprint(['boot', '--root', root]);
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stdout, /groups not in this image, left out: nosuchgroup/);
    assert.match(await readFile(path.join(root, 'etc/passwd'), 'utf8'), /^admin:x:\d+:\d+:[^:]*:\/home\/admin:\/bin\/bash$/m);
    assert.match(await readFile(path.join(root, 'etc/group'), 'utf8'), /^sudo:x:27:.*admin/m);
    assert.equal((await shadowStates(root)).get('admin'), 'locked');
    const sudoers = path.join(root, 'etc/sudoers.d/90-imprint-default-user');
    assert.equal((await stat(sudoers)).mode & 0o7777, 0o440);
    assert.match(await readFile(sudoers, 'utf8'), /^admin ALL=\(ALL\) NOPASSWD:ALL$/m);
    assert.equal(setting(await effectiveSshd(root), 'permitrootlogin'), 'no');
  });

  it('refuses a sudo rule that visudo rejects and writes no sudoers file', async () => {
    await writeConfig(root, `${FAST_KEYS_CONFIG}default_user:\n  name: admin\n  sudo: "ALL=(ALL) NOPASSWD:ALL ((("\n`);
    const run = await imprint(['boot', '--root', root]);
    assert.equal(run.code, 1);
    assert.match(run.stderr + run.stdout, /visudo rejected the sudo rule/);
    await assert.rejects(stat(path.join(root, 'etc/sudoers.d/90-imprint-default-user')));
  });

  it('a config error names file:line:col, exits 2, and leaves the tree exactly as it was', async () => {
    const configs = [
      'host_keys:\n  types: [ed25519, dsa]\n',
      'passwords:\n  acounts: [root]\n',
      'sshd:\n  settings:\n    PasswordAuthentication: yes\n',
      'default_user:\n  name: Bad User\n',
      'host_keys: [unclosed\n',
    ];
    for (const yaml of configs) {
      const file = await writeConfig(root, yaml);
      const digest = await treeDigest(root);
      const run = await imprint(['boot', '--root', root]);
      assert.equal(run.code, 2, yaml);
      assert.match(run.stderr, new RegExp(`^imprint: ${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:\\d+:\\d+: `, 'm'), yaml);
      assert.equal(await treeDigest(root), digest, `tree changed for ${yaml}`);
    }
  });

  it('reports with --json one parseable report on stdout', async () => {
    await writeConfig(root, FAST_KEYS_CONFIG);
    const run = await imprint(['boot', '--root', root, '--json']);
    assert.equal(run.code, 0);
    const report = JSON.parse(run.stdout) as { status: string; exitCode: number; tasks: { task: string; status: string }[]; instance: { source: string } };
    assert.equal(report.status, 'ok');
    assert.deepEqual(report.tasks.map((t) => [t.task, t.status]), [['host-keys', 'done'], ['sshd-config', 'done'], ['default-user', 'skipped'], ['passwords', 'done'], ['host-keys-late', 'skipped'], ['platform-users', 'skipped'], ['authorized-keys', 'skipped'], ['product-codes', 'skipped'], ['hostname', 'skipped'], ['report-ready', 'skipped'],
      ['grow-root', 'skipped'], ['clear-swap', 'skipped'], ['ephemeral-disk', 'skipped'], ['package-upgrade', 'skipped']]);
    assert.equal(report.instance.source, 'machine-id');
    assert.match(run.stderr, /^imprint: host-keys: generated ed25519/m);
  });
});
