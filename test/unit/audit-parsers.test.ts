import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import fc from 'fast-check';
import { candidatesFor, DEFAULT_PASSWORDS, hasLoginShell } from '../../agent/audit/checks/accounts.js';
import { authorizedKeysFiles } from '../../agent/audit/checks/authorized-keys.js';
import { parseAnacrontab, parseCrontab } from '../../agent/audit/parsers/crontab.js';
import { iptablesSaveFilters, nftablesCoverage } from '../../agent/audit/parsers/firewall.js';
import { parseUnitFile } from '../../agent/audit/parsers/unit-file.js';
import { redact, redactText } from '../../agent/audit/redact.js';
import { templateOf } from '../../agent/audit/units.js';
import { cryptMatch } from '../../agent/os/crypt.js';
import { RootTree } from '../../agent/os/root.js';
import { readResolvedText, resolveInTree } from '../../agent/os/tree-read.js';

const exec = promisify(execFile);

describe('audit: crontab parsing', () => {
  it('reads system crontab lines with their user, @ schedules, and skips environment and comments', () => {
    const text = 'SHELL=/bin/sh\nPATH=/usr/local/sbin:/usr/bin\n# m h dom mon dow user command\n17 *\t* * *\troot    cd / && run-parts --report /etc/cron.hourly\n@reboot root /usr/local/bin/start.sh --now\n*/5 * * * * www-data php /var/www/cron.php\nnot a job line\n';
    assert.deepEqual(parseCrontab(text, true), [
      { line: 4, schedule: '17 * * * *', user: 'root', command: 'cd / && run-parts --report /etc/cron.hourly' },
      { line: 5, schedule: '@reboot', user: 'root', command: '/usr/local/bin/start.sh --now' },
      { line: 6, schedule: '*/5 * * * *', user: 'www-data', command: 'php /var/www/cron.php' },
    ]);
  });

  it('reads user crontabs (no user field) as the file\'s user', () => {
    assert.deepEqual(parseCrontab('MAILTO=""\n0 3 * * 1-5 /home/debian/backup.sh > /dev/null 2>&1\n@hourly curl -s https://x.example/ping\n', false, 'debian'), [
      { line: 2, schedule: '0 3 * * 1-5', user: 'debian', command: '/home/debian/backup.sh > /dev/null 2>&1' },
      { line: 3, schedule: '@hourly', user: 'debian', command: 'curl -s https://x.example/ping' },
    ]);
  });

  it('reads anacrontab lines', () => {
    const text = 'SHELL=/bin/sh\nHOME=/root\n1\t5\tcron.daily\trun-parts --report /etc/cron.daily\n@monthly\t15\tcron.monthly\trun-parts --report /etc/cron.monthly\n';
    assert.deepEqual(parseAnacrontab(text).map((j) => [j.line, j.schedule, j.command]), [[3, '1', 'run-parts --report /etc/cron.daily'], [4, '@monthly', 'run-parts --report /etc/cron.monthly']]);
  });

  it('never throws, and every job it returns has a command and a line inside the text (fast-check)', () => {
    fc.assert(fc.property(fc.string({ maxLength: 300 }), fc.boolean(), (text, system) => {
      for (const job of parseCrontab(text, system, 'u')) {
        assert.ok(job.command.length > 0);
        assert.ok(job.line >= 1 && job.line <= text.split('\n').length);
      }
    }));
  });
});

describe('audit: firewall rulesets', () => {
  const DEBIAN_NFT = '#!/usr/sbin/nft -f\n\nflush ruleset\n\ntable inet filter {\n\tchain input {\n\t\ttype filter hook input priority filter;\n\t}\n\tchain forward {\n\t\ttype filter hook forward priority filter;\n\t}\n\tchain output {\n\t\ttype filter hook output priority filter;\n\t}\n}\n';

  it('does not count Debian\'s stock nftables.conf (empty chains) as a ruleset', () => {
    const c = nftablesCoverage(DEBIAN_NFT);
    assert.deepEqual([c.ipv4, c.ipv6], [false, false]);
  });

  it('counts an inet table for both families, ip for IPv4 and ip6 for IPv6, with the line', () => {
    const inet = nftablesCoverage('table inet filter {\n  chain input {\n    type filter hook input priority 0; policy drop;\n    ct state established,related accept\n    tcp dport { 22 } accept\n  }\n}\n');
    assert.deepEqual([inet.ipv4, inet.ipv6, inet.ipv4Line], [true, true, 3]);
    const ip = nftablesCoverage('table ip f {\n chain input {\n  type filter hook input priority 0;\n  iif lo accept\n }\n}\n');
    assert.deepEqual([ip.ipv4, ip.ipv6, ip.ipv4Line], [true, false, 4]);
    const ip6 = nftablesCoverage('table ip6 f { chain input { type filter hook input priority 0; policy drop; } }\n');
    assert.deepEqual([ip6.ipv4, ip6.ipv6], [false, true]);
    const flat = nftablesCoverage('add table ip6 f\nadd chain ip6 f input { type filter hook input priority 0; policy drop; }\n');
    assert.deepEqual([flat.ipv4, flat.ipv6], [false, true]);
    const rules = nftablesCoverage('add rule ip filter input tcp dport 22 accept\n');
    assert.deepEqual([rules.ipv4, rules.ipv6], [true, false]);
    assert.deepEqual(nftablesCoverage('include "/etc/nftables.d/*.nft"\n').includes, ['/etc/nftables.d/*.nft']);
  });

  it('does not count sets declared at table level or accept policies', () => {
    const c = nftablesCoverage('table inet f {\n  set blocked { type ipv4_addr; }\n  chain input { type filter hook input priority 0; policy accept; }\n}\n');
    assert.deepEqual([c.ipv4, c.ipv6], [false, false]);
  });

  it('reads iptables-save files: a rule or a non-ACCEPT policy in the filter table counts', () => {
    assert.deepEqual(iptablesSaveFilters('*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\nCOMMIT\n'), { filters: false, line: null });
    assert.deepEqual(iptablesSaveFilters('# Generated\n*filter\n:INPUT DROP [0:0]\nCOMMIT\n'), { filters: true, line: 3 });
    assert.deepEqual(iptablesSaveFilters('*nat\n-A POSTROUTING -j MASQUERADE\nCOMMIT\n*filter\n:INPUT ACCEPT [0:0]\n-A INPUT -p tcp --dport 22 -j ACCEPT\nCOMMIT\n'), { filters: true, line: 6 });
  });

  it('never throws on any text (fast-check)', () => {
    fc.assert(fc.property(fc.string({ maxLength: 300 }), (text) => {
      nftablesCoverage(text);
      iptablesSaveFilters(text);
    }));
  });
});

describe('audit: unit files, accounts, key files', () => {
  it('reads unit assignments with sections, lines and continuations', () => {
    const a = parseUnitFile('[Unit]\nDescription=x\n# ExecStart=/not/this\n[Service]\nExecStart=/bin/sh -c \\\n  "echo hi"\nUser=nobody\n');
    assert.deepEqual(a.map((x) => [x.section, x.key, x.value, x.line]), [['Unit', 'Description', 'x', 2], ['Service', 'ExecStart', '/bin/sh -c  "echo hi"', 5], ['Service', 'User', 'nobody', 7]]);
    assert.equal(templateOf('getty@tty1.service'), 'getty@.service');
    assert.equal(templateOf('ssh.service'), 'ssh.service');
  });

  it('knows login shells from the ones that refuse a login', () => {
    for (const s of ['/bin/bash', '/bin/sh', '/usr/bin/zsh', '']) assert.ok(hasLoginShell(s), s);
    for (const s of ['/usr/sbin/nologin', '/sbin/nologin', '/bin/false', '/usr/bin/false', '/bin/sync']) assert.ok(!hasLoginShell(s), s);
  });

  it('expands AuthorizedKeysFile tokens per account', () => {
    const a = { name: 'debian', password: 'x', uid: 1000, gid: 1000, gecos: '', home: '/home/debian', shell: '/bin/bash', line: 6 };
    assert.deepEqual(authorizedKeysFiles('.ssh/authorized_keys .ssh/authorized_keys2', a), ['/home/debian/.ssh/authorized_keys', '/home/debian/.ssh/authorized_keys2']);
    assert.deepEqual(authorizedKeysFiles('/etc/ssh/keys/%u %h/.k/%U %%x none', a), ['/etc/ssh/keys/debian', '/home/debian/.k/1000', '/home/debian/%x']);
  });

  it('keeps the default password list short, and tries the account name too', () => {
    assert.ok(DEFAULT_PASSWORDS.length <= 20);
    assert.deepEqual(candidatesFor('pi').map((c) => c.password), ['raspberry', 'pi']);
    assert.deepEqual(candidatesFor('root').map((c) => c.password), ['root', 'toor', 'password', 'changeme']);
    assert.deepEqual(candidatesFor('alice').map((c) => c.password), ['alice']);
  });
});

describe('audit: the system\'s crypt', () => {
  it('matches sha512, sha256, md5 and yescrypt hashes made by other tools, and reports no match otherwise', async () => {
    const sha512 = (await exec('openssl', ['passwd', '-6', '-salt', 'saltsalt', 'raspberry'])).stdout.trim();
    const sha256 = (await exec('openssl', ['passwd', '-5', '-salt', 'saltsalt', 'raspberry'])).stdout.trim();
    const md5 = (await exec('openssl', ['passwd', '-1', '-salt', 'saltsalt', 'raspberry'])).stdout.trim();
    const yescrypt = '$y$j9T$abcdefghijklmnop$QzY3lMEiU4Tqswuvs54VCA9.r9a3315dMJMfRmiCxUD'; // crypt("root", ...) from libxcrypt
    for (const hash of [sha512, sha256, md5]) {
      assert.equal((await cryptMatch(hash, ['pi', 'raspberry'])).match, 1, hash.slice(0, 3));
      assert.equal((await cryptMatch(hash, ['pi', 'Raspberry'])).match, null);
    }
    assert.equal((await cryptMatch(yescrypt, ['toor', 'root'])).match, 1);
    assert.equal((await cryptMatch(yescrypt, ['toor'])).match, null);
    assert.equal((await cryptMatch(sha512, [])).match, null);
  });

  it('refuses a candidate or hash with a line break (it would shift the answers)', async () => {
    await assert.rejects(cryptMatch('$6$a$b', ['x\ny']));
    await assert.rejects(cryptMatch('$6$a$b\nx', ['x']));
  });
});

describe('audit: redaction', () => {
  it('hides hashes, private keys and secret assignments, and keeps ordinary settings', () => {
    assert.equal(redactText('root:$6$saltsalt$bAY90rAsHhyx.bxmKP9FE5UF4jP1iWgjV0ltM6ZJxfYkiIaCExjBZIbf:19700'), 'root:[password hash hidden]:19700');
    assert.equal(redactText('x -----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n-----END OPENSSH PRIVATE KEY----- y'), 'x [private key hidden] y');
    assert.equal(redactText('-----BEGIN EC PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\nDEK-Info: AES-128-CBC,00\n\nMHcCAQEEIIrYSSNQFaA2Hwf1duRSxKtLYX5CB04fSeQ6tF1aY\n'), '[private key hidden]');
    assert.equal(redactText('PEM private key (-----BEGIN RSA PRIVATE KEY-----)'), 'PEM private key (-----BEGIN RSA PRIVATE KEY-----)', 'a label is not a key');
    assert.equal(redact('mysql -u root -phunter2 db'), 'mysql -u root -p*** db');
    assert.equal(redact('export DB_PASSWORD="hunter2" && run'), 'export DB_PASSWORD="***" && run');
    assert.equal(redact('curl https://user:hunter2@example.com/x'), 'curl https://user:***@example.com/x');
    assert.equal(redact('curl -H "Authorization: Bearer abc.def" https://x'), 'curl -H "Authorization: Bearer ***" https://x');
    assert.equal(redact('{"password": "hunter2"}'), '{"password": "***"}');
    assert.equal(redact('PasswordAuthentication yes'), 'PasswordAuthentication yes');
    assert.equal(redact('permitrootlogin without-password'), 'permitrootlogin without-password');
    assert.equal(redact('passwordauthentication=no'), 'passwordauthentication=no');
    assert.equal(redact('a\u001b[2Jb\r\nc'), 'a\\x1b[2Jb\\x0d\\nc');
    assert.ok(redact('x'.repeat(1000)).length <= 301);
  });

  it('never lets a generated secret assignment or hash through (fast-check)', () => {
    const secret = fc.string({ unit: fc.constantFrom(...'abcdefXYZ0123456789/+._'.split('')), minLength: 8, maxLength: 30 });
    fc.assert(fc.property(fc.constantFrom('password', 'DB_PASSWORD', 'api_key', 'secret', 'AWS_SECRET_ACCESS_KEY', 'token'), secret, fc.constantFrom('=', ' = ', '="'), (name, value, sep) => {
      const out = redact(`run ${name}${sep}${value}${sep.endsWith('"') ? '"' : ''} now`);
      assert.ok(!out.includes(value), out);
    }));
    fc.assert(fc.property(fc.constantFrom('1', '5', '6', 'y'), secret, secret, (id, salt, hash) => {
      assert.ok(!redactText(`x $${id}$${salt}$${hash} y`).includes(hash));
    }));
  });
});

describe('audit: reading a tree the way a chroot would', () => {
  let host: string;
  let tree: string;
  beforeEach(async () => {
    host = await mkdtemp(path.join(tmpdir(), 'imprint-audit-read-'));
    tree = path.join(host, 'tree');
    await mkdir(path.join(tree, 'etc/profile.d'), { recursive: true });
    await mkdir(path.join(tree, 'usr/share'), { recursive: true });
    await writeFile(path.join(tree, 'etc/hostname'), 'in-tree\n');
    await writeFile(path.join(tree, 'usr/hostname'), 'under usr\n');
    await writeFile(path.join(host, 'outside'), 'host secret\n');
  });
  afterEach(async () => {
    await rm(host, { recursive: true, force: true });
  });

  it('resolves absolute and relative links inside the tree, never above its root', async () => {
    const root = new RootTree(tree);
    await symlink('/etc/hostname', path.join(tree, 'etc/profile.d/abs.sh'));
    await symlink('../../../../../../outside', path.join(tree, 'etc/profile.d/up.sh'));
    await symlink('../hostname', path.join(tree, 'etc/profile.d/rel.sh'));
    await symlink(path.join(host, 'outside'), path.join(tree, 'etc/profile.d/host.sh'));
    await symlink('/usr/share', path.join(tree, 'etc/share'));
    await symlink('loop', path.join(tree, 'etc/loop'));
    assert.equal((await readResolvedText(root, '/etc/profile.d/abs.sh'))?.text, 'in-tree\n');
    assert.equal((await readResolvedText(root, '/etc/profile.d/rel.sh'))?.resolved, '/etc/hostname');
    assert.equal(await resolveInTree(root, '/etc/profile.d/up.sh'), null, '.. stops at the tree root; /outside is not in the tree');
    assert.equal(await readResolvedText(root, '/etc/profile.d/host.sh'), null, 'an absolute link to a host path is looked up inside the tree');
    assert.equal(await resolveInTree(root, '/etc/share/../hostname'), '/usr/hostname');
    await assert.rejects(resolveInTree(root, '/etc/loop'), /too many levels/);
  });
});
