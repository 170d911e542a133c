import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { appendFile, chmod, chown, lchown, mkdir, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';

// A careless image: plantImage seeds a tree (a scratchImage, the demo image) with what an image
// builder leaves behind, at least one item per `imprint seal` operation, and with benign
// look-alikes that must survive sealing byte for byte. Seal's tests and audit's tests share it:
// every planted item is a problem audit should report; no look-alike is.

const exec = promisify(execFile);

/** What sealing does to a planted item: gone, emptied in place (logs, machine-id), or a locked password. */
export type PlantedExpectation = 'removed' | 'emptied' | 'locked';

export interface PlantedItem {
  /** The seal operation that removes it. */
  operation: string;
  /** In-tree path; for `locked`, /etc/shadow. */
  path: string;
  expect: PlantedExpectation;
  /** What it is, in words. */
  what: string;
  /** For `locked`: the account. */
  account?: string;
}

export interface Planted {
  items: PlantedItem[];
  /** In-tree paths of regular files that must survive sealing byte for byte (mode and owner too). */
  lookalikes: string[];
  /** In-tree paths (directories, links) that must still exist afterwards, unchanged. */
  kept: string[];
  /** Accounts planted with a usable or empty password (root and debian come from the demo image). */
  accounts: { name: string; uid: number; home: string; password: 'usable' | 'empty' }[];
}

const DEBIAN = { uid: 1000, gid: 1000 };
const BUILDER = { uid: 1001, gid: 1001 };
const POSTGRES = { uid: 110, gid: 116 };
const ROOT = { uid: 0, gid: 0 };
const ADM = 4;
const UTMP = 43;
export const PLANTED_MACHINE_JOURNAL = '7d1c0a9e5b2f4e61a3c8d9b0e4f1a2c3';

const b64Lines = (bytes: number): string => (randomBytes(bytes).toString('base64').match(/.{1,64}/g) ?? []).join('\n');
const pem = (label: string, bytes = 180, headers = ''): string => `-----BEGIN ${label}-----\n${headers}${b64Lines(bytes)}\n-----END ${label}-----\n`;

let openssl: Promise<{ cert: string; p12: Buffer }> | null = null;

/** A real certificate and PKCS#12 store from openssl (made once per process). */
function opensslMaterial(): Promise<{ cert: string; p12: Buffer }> {
  openssl ??= (async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'imprint-plant-'));
    try {
      const key = path.join(dir, 'k.pem');
      const cert = path.join(dir, 'c.pem');
      const p12 = path.join(dir, 's.p12');
      await exec('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', key, '-out', cert, '-subj', '/CN=image-builder', '-days', '30']);
      await exec('openssl', ['pkcs12', '-export', '-inkey', key, '-in', cert, '-passout', 'pass:builder', '-out', p12]);
      return { cert: await readFile(cert, 'utf8'), p12: await readFile(p12) };
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  })();
  return openssl;
}

async function put(root: string, file: string, content: string | Buffer, mode: number, own: { uid: number; gid: number } = ROOT): Promise<void> {
  const host = path.join(root, file);
  await mkdir(path.dirname(host), { recursive: true });
  await writeFile(host, content);
  await chmod(host, mode);
  await chown(host, own.uid, own.gid);
}

async function dir(root: string, d: string, mode: number, own: { uid: number; gid: number } = ROOT): Promise<void> {
  const host = path.join(root, d);
  await mkdir(host, { recursive: true });
  await chmod(host, mode);
  await chown(host, own.uid, own.gid);
}

async function link(root: string, at: string, target: string, own: { uid: number; gid: number } = ROOT): Promise<void> {
  const host = path.join(root, at);
  await mkdir(path.dirname(host), { recursive: true });
  await symlink(target, host);
  await lchown(host, own.uid, own.gid);
}

/**
 * Plants a careless build's leftovers into `root` (a scratchImage: the demo image with root and
 * debian, baked host keys and machine-id). Returns what was planted.
 */
export async function plantImage(root: string): Promise<Planted> {
  const { cert, p12 } = await opensslMaterial();
  const items: PlantedItem[] = [];
  const lookalikes: string[] = [];
  const kept: string[] = [];
  const item = (operation: string, p: string, what: string, expect: PlantedExpectation = 'removed', account?: string): void => {
    items.push({ operation, path: p, expect, what, ...(account ? { account } : {}) });
  };
  const plant = async (operation: string, p: string, what: string, content: string | Buffer, mode: number, own = ROOT, expect: PlantedExpectation = 'removed'): Promise<void> => {
    await put(root, p, content, mode, own);
    item(operation, p, what, expect);
  };
  const lookalike = async (p: string, content: string | Buffer, mode = 0o644, own = ROOT): Promise<void> => {
    await put(root, p, content, mode, own);
    lookalikes.push(p);
  };

  // Accounts: builder (a second person, with an empty password) and postgres (a system account
  // whose home is not under /home).
  await appendFile(path.join(root, 'etc/passwd'), 'builder:x:1001:1001:Image Builder:/home/builder:/bin/bash\npostgres:x:110:116:PostgreSQL administrator:/var/lib/postgresql:/usr/sbin/nologin\n');
  await appendFile(path.join(root, 'etc/shadow'), 'builder::19700:0:99999:7:::\npostgres:*:19700:0:99999:7:::\n');
  await appendFile(path.join(root, 'etc/group'), 'builder:x:1001:\npostgres:x:116:\nutmp:x:43:\ncrontab:x:107:\nmail:x:8:\n');
  await appendFile(path.join(root, 'etc/gshadow'), 'builder:!::\npostgres:!::\nutmp:*::\ncrontab:*::\nmail:*::\n');
  await dir(root, 'home/builder', 0o755, BUILDER);
  await dir(root, 'var/lib/postgresql', 0o755, POSTGRES);
  await dir(root, 'home/debian/.ssh', 0o700, DEBIAN);
  await dir(root, 'root/.ssh', 0o700);
  await dir(root, 'home/builder/.ssh', 0o700, BUILDER);

  // ssh-host-keys: the demo image's baked keys.
  for (const t of ['ed25519', 'ecdsa', 'rsa']) {
    item('ssh-host-keys', `/etc/ssh/ssh_host_${t}_key`, `baked ${t} host private key`);
    item('ssh-host-keys', `/etc/ssh/ssh_host_${t}_key.pub`, `baked ${t} host public key`);
  }
  await lookalike('/etc/ssh/ssh_known_hosts', `github.com ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl\n`);

  // ssh-user-keys
  const pub = (c: string): string => `ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI${randomBytes(32).toString('base64').slice(0, 43)} ${c}\n`;
  await plant('ssh-user-keys', '/root/.ssh/authorized_keys', "the builder's key in root's authorized_keys", pub('builder@laptop'), 0o600);
  await plant('ssh-user-keys', '/home/debian/.ssh/authorized_keys', "the builder's key in debian's authorized_keys", pub('builder@laptop'), 0o600, DEBIAN);
  await plant('ssh-user-keys', '/home/debian/.ssh/id_ed25519', "debian's private key", pem('OPENSSH PRIVATE KEY', 300), 0o600, DEBIAN);
  await plant('ssh-user-keys', '/home/debian/.ssh/id_ed25519.pub', "debian's public key", pub('debian@build'), 0o644, DEBIAN);
  await plant('ssh-user-keys', '/home/builder/.ssh/authorized_keys2', "a key in builder's authorized_keys2", pub('ci@runner'), 0o600, BUILDER);
  await lookalike('/home/debian/.ssh/known_hosts', 'gitlab.com ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAfuCHKVTjquxvt6CM6tdG4SLp1Btn/nOeHHE5UOzRdf\n', 0o644, DEBIAN);
  await lookalike('/home/debian/.ssh/config', 'Host *\n  ServerAliveInterval 30\n', 0o600, DEBIAN);

  // shell-history
  const history = 'export AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY\nsudo apt-get install -y nginx\n';
  await plant('shell-history', '/root/.bash_history', "root's bash history (with a secret key)", history, 0o600);
  await plant('shell-history', '/root/.lesshst', "root's less history", '.less-history-file:\n.search\n"password\n', 0o600);
  await plant('shell-history', '/root/.viminfo', "root's vim history", '# This viminfo file was generated by Vim 9.0.\n:wq\n', 0o600);
  await plant('shell-history', '/root/.python_history', "root's python history", 'import boto3\n', 0o600);
  await plant('shell-history', '/home/debian/.bash_history', "debian's bash history", history, 0o600, DEBIAN);
  await plant('shell-history', '/home/debian/.zsh_history', "debian's zsh history", ': 1700000000:0;ls\n', 0o600, DEBIAN);
  await plant('shell-history', '/home/debian/.zhistory', "debian's zsh history (.zhistory)", ': 1700000000:0;pwd\n', 0o600, DEBIAN);
  await plant('shell-history', '/home/debian/.local/share/fish/fish_history', "debian's fish history", '- cmd: ls\n  when: 1700000000\n', 0o600, DEBIAN);
  await plant('shell-history', '/home/debian/.node_repl_history', "debian's node history", 'process.env\n', 0o600, DEBIAN);
  await plant('shell-history', '/home/debian/.mysql_history', "debian's mysql history", "CREATE USER 'app' IDENTIFIED BY 'hunter2';\n", 0o600, DEBIAN);
  await plant('shell-history', '/home/debian/.sqlite_history', "debian's sqlite history", 'select * from users;\n', 0o600, DEBIAN);
  await plant('shell-history', '/home/debian/.rediscli_history', "debian's redis-cli history", 'AUTH hunter2\n', 0o600, DEBIAN);
  await plant('shell-history', '/var/lib/postgresql/.psql_history', "postgres's psql history (a system account's home)", "ALTER ROLE app PASSWORD 'hunter2';\n", 0o600, POSTGRES);
  await link(root, '/home/builder/.bash_history', '/dev/null', BUILDER);
  kept.push('/home/builder/.bash_history');
  await lookalike('/home/debian/.bashrc', '# ~/.bashrc\nHISTSIZE=1000\n', 0o644, DEBIAN);
  await lookalike('/home/debian/.profile', '# ~/.profile\n', 0o644, DEBIAN);
  await lookalike('/home/debian/.local/share/fish/fish_variables', 'SETUVAR fish_greeting:\n', 0o644, DEBIAN);

  // credentials, by name
  await put(root, '/root/.aws/credentials', '[default]\naws_access_key_id = AKIAIOSFODNN7EXAMPLE\naws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY\n', 0o600);
  await put(root, '/root/.aws/config', '[default]\nregion = eu-west-1\n', 0o600);
  item('credentials', '/root/.aws', 'AWS CLI credentials');
  await put(root, '/home/debian/.osc/config.json', '{"default":{"access_key":"ABCDEF","secret_key":"0123456789"}}\n', 0o600, DEBIAN);
  item('credentials', '/home/debian/.osc', 'Outscale CLI credentials');
  await put(root, '/home/debian/.oapi-cli/config.json', '{"default":{"access_key":"ABCDEF"}}\n', 0o600, DEBIAN);
  item('credentials', '/home/debian/.oapi-cli', 'Outscale oapi-cli credentials');
  await put(root, '/home/debian/.config/gcloud/credentials.db', randomBytes(512), 0o600, DEBIAN);
  await put(root, '/home/debian/.config/gcloud/configurations/config_default', '[core]\naccount = builder@example.com\n', 0o600, DEBIAN);
  item('credentials', '/home/debian/.config/gcloud', 'Google Cloud SDK credentials');
  await put(root, '/root/.azure/msal_token_cache.json', '{"AccessToken":{}}\n', 0o600);
  item('credentials', '/root/.azure', 'Azure CLI token cache');
  await put(root, '/home/debian/.oci/config', '[DEFAULT]\nuser=ocid1.user.oc1..aaaa\nkey_file=~/.oci/oci_api_key.pem\n', 0o600, DEBIAN);
  item('credentials', '/home/debian/.oci', 'Oracle Cloud CLI config');
  await put(root, '/root/.euca/pk-EUCA1234.pem', pem('RSA PRIVATE KEY'), 0o600);
  await put(root, '/root/.euca/cert-EUCA1234.pem', cert, 0o600);
  item('credentials', '/root/.euca', 'Eucalyptus credentials directory');
  await plant('credentials', '/root/eucarc', 'Eucalyptus eucarc', 'export EC2_ACCESS_KEY=ABCDEF\nexport EC2_SECRET_KEY=0123456789\n', 0o600);
  await plant('credentials', '/home/debian/.docker/config.json', 'Docker registry auth', '{"auths":{"registry.example.com":{"auth":"ZGViaWFuOmh1bnRlcjI="}}}\n', 0o600, DEBIAN);
  await plant('credentials', '/home/debian/.kube/config', 'kubeconfig with a token', 'apiVersion: v1\nusers:\n- name: admin\n  user:\n    token: abcdef\n', 0o600, DEBIAN);
  await plant('credentials', '/root/.netrc', 'netrc', 'machine example.com login builder password hunter2\n', 0o600);
  await plant('credentials', '/home/debian/.git-credentials', 'git credential store', 'https://builder:ghp_0123456789@github.com\n', 0o600, DEBIAN);
  await plant('credentials', '/home/debian/.pgpass', 'pgpass', 'db.example.com:5432:*:app:hunter2\n', 0o600, DEBIAN);
  await plant('credentials', '/root/.my.cnf', 'MySQL client password', '[client]\nuser=root\npassword=hunter2\n', 0o600);
  // credentials, by content and by bundling names
  await plant('credentials', '/home/debian/project/deploy.key', 'an OpenSSH private key in a project, named nothing telling', pem('OPENSSH PRIVATE KEY', 300), 0o600, DEBIAN);
  await plant('credentials', '/root/backup.pem', 'a certificate followed by an encrypted EC private key', `${cert}${pem('EC PRIVATE KEY', 120, 'Proc-Type: 4,ENCRYPTED\nDEK-Info: AES-128-CBC,0123456789ABCDEF0123456789ABCDEF\n\n')}`, 0o600);
  await plant('credentials', '/home/builder/Downloads/key', 'a PKCS#8 encrypted private key without an extension', pem('ENCRYPTED PRIVATE KEY', 200), 0o600, BUILDER);
  await plant('credentials', '/tmp/build/server.key', 'an RSA private key in /tmp', pem('RSA PRIVATE KEY', 600), 0o600);
  await plant('credentials', '/var/tmp/store.p12', 'a PKCS#12 store in /var/tmp', p12, 0o600);
  await plant('credentials', '/mnt/bundle/pk-ABCDEF1234.pem', 'X.509 bundling private key (pk-*.pem)', pem('PRIVATE KEY', 300), 0o600);
  await plant('credentials', '/mnt/bundle/cert-ABCDEF1234.pem', 'X.509 bundling certificate (cert-*.pem)', cert, 0o644);
  await lookalike('/home/debian/credentials.md', '# Credentials\n\nNever commit ~/.aws/credentials or a -----BEGIN RSA PRIVATE KEY----- block.\nAsk ops for the vault token.\n', 0o644, DEBIAN);
  await lookalike('/home/debian/project/README.md', '# project\n\nRun `make`.\n', 0o644, DEBIAN);
  await lookalike('/home/debian/project/src/main.py', 'print("hello")\n', 0o644, DEBIAN);
  await lookalike('/home/debian/project/certs/ca.pem', cert, 0o644, DEBIAN);
  await lookalike('/home/debian/project/keys/deploy.pub', pub('deploy@project'), 0o644, DEBIAN);
  await lookalike('/home/debian/.kube/cache/discovery/servergroups.json', '{"kind":"APIGroupList"}\n', 0o644, DEBIAN);
  await lookalike('/usr/share/doc/example/id_ed25519.pub', pub('example@docs'));
  await lookalike('/usr/share/doc/example/credentials.md', 'Put your credentials in ~/.aws/credentials.\n');
  await lookalike('/mnt/bundle/manifest.xml', '<manifest/>\n');

  // passwords: root and debian have usable ones (the demo image); builder an empty one.
  item('passwords', '/etc/shadow', 'root: usable password', 'locked', 'root');
  item('passwords', '/etc/shadow', 'debian: usable password', 'locked', 'debian');
  item('passwords', '/etc/shadow', 'builder: empty password', 'locked', 'builder');

  // logs
  await dir(root, 'var/log', 0o755);
  await plant('logs', '/var/log/syslog', 'syslog', 'Jan  1 00:00:00 build sshd[1]: Accepted password for root\n', 0o640, { uid: 0, gid: ADM }, 'emptied');
  await plant('logs', '/var/log/auth.log', 'auth.log', 'Jan  1 00:00:00 build sudo: builder : COMMAND=/bin/bash\n', 0o640, { uid: 0, gid: ADM }, 'emptied');
  await plant('logs', '/var/log/apt/history.log', 'apt history', 'Start-Date: 2024-01-01\n', 0o644, ROOT, 'emptied');
  await plant('logs', '/var/log/cloud-init.log', 'cloud-init log', 'util.py: Writing to /var/lib/cloud/instance/user-data.txt\n', 0o640, { uid: 0, gid: ADM }, 'emptied');
  await plant('logs', '/var/log/wtmp', 'wtmp', randomBytes(384), 0o664, { uid: 0, gid: UTMP }, 'emptied');
  await plant('logs', '/var/log/btmp', 'btmp', randomBytes(384), 0o660, { uid: 0, gid: UTMP }, 'emptied');
  await plant('logs', '/var/log/lastlog', 'lastlog', randomBytes(292), 0o664, { uid: 0, gid: UTMP }, 'emptied');
  await plant('logs', '/var/log/syslog.1', 'rotated syslog', 'Dec 31 23:59:59 build kernel: old\n', 0o640, { uid: 0, gid: ADM });
  await plant('logs', '/var/log/syslog.2.gz', 'rotated, compressed syslog', randomBytes(64), 0o640, { uid: 0, gid: ADM });
  await dir(root, `var/log/journal/${PLANTED_MACHINE_JOURNAL}`, 0o2755);
  await put(root, `/var/log/journal/${PLANTED_MACHINE_JOURNAL}/system.journal`, randomBytes(4096), 0o640, { uid: 0, gid: ADM });
  await put(root, `/var/log/journal/${PLANTED_MACHINE_JOURNAL}/user-1000@0123-4567.journal~`, randomBytes(1024), 0o640, { uid: 0, gid: ADM });
  await chmod(path.join(root, 'var/log/journal'), 0o2755);
  item('logs', `/var/log/journal/${PLANTED_MACHINE_JOURNAL}`, "the build's journal directory");
  kept.push('/var/log/journal', '/var/log/apt');
  await put(root, '/var/log/faillog', '', 0o644);
  lookalikes.push('/var/log/faillog');
  await link(root, '/var/log/README', '../../usr/share/doc/systemd/README.logs');
  kept.push('/var/log/README');

  // machine-id: the demo's /etc/machine-id, and D-Bus's link to it.
  item('machine-id', '/etc/machine-id', 'the build instance\'s machine id', 'emptied');
  await link(root, '/var/lib/dbus/machine-id', '/etc/machine-id');
  item('machine-id', '/var/lib/dbus/machine-id', "D-Bus's link to /etc/machine-id");

  // state
  await put(root, '/var/lib/imprint/state.json', '{"format":1,"hint":{"id":"7d1c0a9e5b2f4e61a3c8d9b0e4f1a2c3","source":"machine-id"},"instanceId":"i-0build","completed":{}}\n', 0o600);
  item('state', '/var/lib/imprint', "imprint's state from the build instance");
  await put(root, '/var/lib/cloud/instances/i-0build/user-data.txt', '#cloud-config\npassword: hunter2\n', 0o600);
  item('state', '/var/lib/cloud/instances', "cloud-init's per-instance data (user-data with a password)");
  await link(root, '/var/lib/cloud/instance', '/var/lib/cloud/instances/i-0build');
  item('state', '/var/lib/cloud/instance', "cloud-init's link to the current instance");
  await put(root, '/var/lib/cloud/data/instance-id', 'i-0build\n', 0o644);
  item('state', '/var/lib/cloud/data', "cloud-init's data directory");
  await put(root, '/var/lib/cloud/sem/config_scripts_per_once.once', '', 0o644);
  item('state', '/var/lib/cloud/sem', "cloud-init's semaphores");
  await put(root, '/var/lib/cloud/scripts/vendor/vendor.sh', '#!/bin/sh\n', 0o700);
  item('state', '/var/lib/cloud/scripts/vendor', "the build instance's vendor-data scripts");
  await lookalike('/var/lib/cloud/scripts/per-boot/10-motd.sh', '#!/bin/sh\necho welcome > /run/motd\n', 0o755);
  await lookalike('/var/lib/cloud/seed/README.imprint-test', 'the image\'s own datasource configuration lives here\n');
  await plant('state', '/var/lib/dhcp/dhclient.eth0.leases', 'a DHCP lease', 'lease {\n  fixed-address 10.0.0.12;\n}\n', 0o644);
  await plant('state', '/var/lib/NetworkManager/internal-0b1c-eth0.lease', 'a NetworkManager lease', 'ADDRESS=10.0.0.12\n', 0o644);
  await plant('state', '/var/lib/NetworkManager/secret_key', "NetworkManager's machine secret", randomBytes(32), 0o600);
  await lookalike('/var/lib/NetworkManager/NetworkManager.state', '[main]\nNetworkingEnabled=true\n');
  await plant('state', '/var/lib/systemd/random-seed', 'the systemd random seed', randomBytes(512), 0o600);
  await plant('state', '/etc/udev/rules.d/70-persistent-net.rules', 'udev persistent-net rules', 'SUBSYSTEM=="net", ATTR{address}=="52:54:00:12:34:56", NAME="eth0"\n', 0o644);
  await lookalike('/etc/udev/rules.d/99-local.rules', '# local rules\n');
  await dir(root, 'tmp', 0o1777);
  await dir(root, 'var/tmp', 0o1777);
  kept.push('/tmp', '/var/tmp');
  await put(root, '/tmp/build/build.log', 'building...\n', 0o644);
  item('state', '/tmp/build', 'a build directory in /tmp');
  await plant('state', '/tmp/packer-shell-0123.sh', "Packer's uploaded script", '#!/bin/sh\nexit 0\n', 0o755);
  await plant('state', '/var/tmp/cache.tmp', 'a file in /var/tmp', 'cache\n', 0o644);
  await plant('state', '/var/cache/apt/archives/curl_7.88.1-10_amd64.deb', 'a downloaded package', randomBytes(2048), 0o644);
  await plant('state', '/var/cache/apt/pkgcache.bin', "apt's package cache", randomBytes(1024), 0o644);
  await lookalike('/var/cache/apt/archives/lock', '', 0o640);
  await dir(root, 'var/cache/apt/archives/partial', 0o700);
  kept.push('/var/cache/apt/archives/partial');
  await plant('state', '/var/crash/_usr_bin_app.0.crash', 'a crash report', 'ProblemType: Crash\nCoreDump: base64\n', 0o640);

  // cron-spool (off by default)
  await plant('cron-spool', '/var/spool/cron/crontabs/debian', "debian's crontab", '*/5 * * * * curl -s https://build.example.com/ping\n', 0o600, { uid: 1000, gid: 107 });
  await chmod(path.join(root, 'var/spool/cron/crontabs'), 0o1730);
  kept.push('/var/spool/cron/crontabs');

  // mail-spool (off by default)
  await dir(root, 'var/mail', 0o2775, { uid: 0, gid: 8 });
  await plant('mail-spool', '/var/mail/debian', "debian's mailbox", 'From cron@build Mon Jan  1 00:00:00 2024\nSubject: Cron <debian@build>\n\nok\n', 0o660, { uid: 1000, gid: 8 });
  await link(root, '/var/spool/mail', '../mail');
  kept.push('/var/mail', '/var/spool/mail');

  return {
    items,
    lookalikes,
    kept,
    accounts: [
      { name: 'root', uid: 0, home: '/root', password: 'usable' },
      { name: 'debian', uid: 1000, home: '/home/debian', password: 'usable' },
      { name: 'builder', uid: 1001, home: '/home/builder', password: 'empty' },
    ],
  };
}
