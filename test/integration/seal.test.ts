import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { link, lstat, mkdir, mkdtemp, readdir, readFile, readlink, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { sealCommand } from '../../agent/commands/seal.js';
import { parseAccountFile, passwordState } from '../../agent/parsers/accounts.js';
import { isPkcs12, sniffSecret } from '../../agent/seal/detect.js';
import type { SealResult } from '../../agent/seal/execute.js';
import { DEFAULT_OPERATIONS, OperationsError, parseOperations } from '../../agent/seal/operations.js';
import type { SealReport } from '../../agent/seal/report.js';
import { imprint } from '../support/cli.js';
import { hostKeyPairs, shadowStates } from '../support/checks.js';
import { plantImage, type Planted } from '../support/planted-image.js';
import { FAST_KEYS_CONFIG, removeScratch, scratchImage, snapshotTree, treeDigest, writeConfig } from '../support/tree.js';

// `imprint seal` on scratch trees seeded by plantImage: one planted leftover per operation and
// benign look-alikes. Seal is called in-process (sealCommand) and, for the crash tests, in a
// child that kills itself at its Nth durable step.

const exec = promisify(execFile);
const SEAL_MODULE = fileURLToPath(new URL('../../agent/commands/seal.ts', import.meta.url));

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

function sink(chunks: string[]): Writable {
  return new Writable({
    write(chunk: Buffer | string, _enc, done) {
      chunks.push(chunk.toString());
      done();
    },
  });
}

async function seal(args: string[], env: Record<string, string> = {}): Promise<Run> {
  const out: string[] = [];
  const err: string[] = [];
  const saved = Object.fromEntries(Object.keys(env).map((k) => [k, process.env[k]]));
  Object.assign(process.env, env);
  try {
    const code = await sealCommand(args, { out: sink(out), err: sink(err) });
    return { code, stdout: out.join(''), stderr: err.join('') };
  } finally {
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  }
}

async function sealJson(args: string[], env: Record<string, string> = {}): Promise<{ run: Run; report: SealReport }> {
  const run = await seal([...args, '--json'], env);
  return { run, report: JSON.parse(run.stdout) as SealReport };
}

const exists = (p: string): Promise<boolean> => lstat(p).then(() => true, () => false);
const isDefault = (op: string): boolean => (DEFAULT_OPERATIONS as readonly string[]).includes(op);
/** What identifies an item across a dry run and a real run. */
const itemId = (i: SealResult): string => `${i.operation} ${i.action} ${i.path}${i.account ? `#${i.account}` : ''}`;

async function shadowField(root: string, account: string): Promise<string | undefined> {
  const parsed = parseAccountFile(await readFile(path.join(root, 'etc/shadow'), 'utf8'), 'shadow', 'etc/shadow');
  return parsed.lines.find((l) => l.fields[0] === account)?.fields[1];
}

describe('imprint seal', function () {
  this.timeout(120_000);
  let template: string;
  let planted: Planted;
  const trees: string[] = [];

  before(async () => {
    template = await scratchImage();
    planted = await plantImage(template);
  });
  after(async () => {
    for (const t of trees) await removeScratch(t);
    await removeScratch(template);
  });

  /** A fresh copy of the planted tree (cp -a keeps modes, owners, links and hard links). */
  async function plantedTree(): Promise<string> {
    const dir = await mkdtemp(path.join(tmpdir(), 'imprint-test-'));
    trees.push(dir);
    await exec('cp', ['-a', `${template}/.`, dir]);
    return dir;
  }

  describe('on a planted tree', () => {
    it('removes every planted item of the default operations, empties logs and machine-id in place, and locks passwords', async () => {
      const root = await plantedTree();
      const emptied = new Map<string, { mode: number; uid: number; gid: number; ino: number }>();
      for (const item of planted.items.filter((i) => i.expect === 'emptied')) {
        const s = await stat(path.join(root, item.path));
        assert.ok(s.size > 0, `${item.path} is planted non-empty`);
        emptied.set(item.path, { mode: s.mode, uid: s.uid, gid: s.gid, ino: s.ino });
      }
      const { run, report } = await sealJson(['--root', root]);
      assert.equal(run.code, 0, run.stderr);
      assert.equal(report.status, 'sealed');
      assert.equal(report.exitCode, 0);
      assert.ok(report.items.every((i) => i.status === 'done'), JSON.stringify(report.items.filter((i) => i.status !== 'done')));

      for (const item of planted.items) {
        const host = path.join(root, item.path);
        if (!isDefault(item.operation)) {
          assert.ok(await exists(host), `${item.path} (${item.operation}, off by default) is kept`);
          continue;
        }
        if (item.expect === 'removed') assert.equal(await exists(host), false, `${item.path} (${item.what}) is gone`);
        if (item.expect === 'emptied') {
          const s = await stat(host);
          assert.equal(s.size, 0, `${item.path} is empty`);
          assert.deepEqual({ mode: s.mode, uid: s.uid, gid: s.gid, ino: s.ino }, emptied.get(item.path), `${item.path} is the same file, mode and owner kept`);
        }
        if (item.expect === 'locked') {
          const field = await shadowField(root, item.account as string);
          assert.equal(field, '!', `${item.account}: locked, and the hash is gone`);
          assert.equal(passwordState(field as string), 'disabled');
        }
      }
      assert.equal(await exists(path.join(root, 'etc/shadow-')), false, 'no backup of the old hashes is left');
      // The items named in the report are the planted ones (nothing planted went unnoticed).
      const reported = new Set(report.items.map((i) => (i.account ? `${i.path}#${i.account}` : i.path)));
      for (const item of planted.items.filter((i) => isDefault(i.operation))) {
        assert.ok(reported.has(item.account ? `${item.path}#${item.account}` : item.path), `${item.path} is named in the report`);
      }
      // One line per item on stderr (--json), and the summary table.
      assert.match(run.stderr, /^imprint: seal: credentials: shredded \/var\/tmp\/store\.p12 \(1\.\d KiB\): PKCS#12 key store \(DER\)$/m);
      assert.match(run.stderr, /^imprint: seal: logs: emptied \/var\/log\/wtmp \(384 B\): login records/m);
      assert.match(run.stderr, /^ {2}operation +items +bytes$/m);
      assert.match(run.stderr, /^ {2}total +\d+ +\d+ \(/m);
      assert.match(run.stderr, /copy-on-write filesystems/);
      const total = report.summary.find((r) => r.operation === 'total');
      assert.equal(total?.items, report.items.filter((i) => i.action !== 'skip').length);
    });

    it('leaves every look-alike byte for byte, and the tree outside the operations unchanged', async () => {
      const root = await plantedTree();
      const before = await snapshotTree(root);
      const { run, report } = await sealJson(['--root', root]);
      assert.equal(run.code, 0, run.stderr);
      const after = await snapshotTree(root);
      for (const p of [...planted.lookalikes, ...planted.kept]) {
        assert.ok(before.has(p), `${p} was planted`);
        assert.equal(after.get(p), before.get(p), `${p} is intact (content, mode, owner)`);
      }
      // What the operations own: each item's path and what is under it; the locks also rewrite
      // /etc/shadow (usermod writes its backups /etc/passwd- and /etc/shadow-, and seal removes the latter).
      const owned = [...report.items.map((i) => i.path), '/etc/shadow', '/etc/shadow-', '/etc/passwd-'];
      const isOwned = (p: string): boolean => owned.some((o) => p === o || p.startsWith(`${o}/`));
      const outside = (m: Map<string, string>): Map<string, string> => new Map([...m].filter(([p]) => !isOwned(p)));
      assert.deepEqual(outside(after), outside(before));
      assert.ok(before.size - outside(before).size > 60, 'the operations did own a good part of the tree');
    });

    it('--dry-run changes nothing and lists exactly the items a real run then removes', async () => {
      const root = await plantedTree();
      const digest = await treeDigest(root);
      const dry = await sealJson(['--root', root, '--dry-run']);
      assert.equal(dry.run.code, 0, dry.run.stderr);
      assert.equal(await treeDigest(root), digest, 'a dry run changes nothing');
      assert.equal(dry.report.status, 'would-seal');
      assert.ok(dry.report.items.every((i) => i.status === 'planned' || i.status === 'skipped'));
      assert.match(dry.run.stderr, /^imprint: seal: ssh-host-keys: would shred \/etc\/ssh\/ssh_host_ed25519_key \(\d+ B\): SSH host private key/m);
      const real = await sealJson(['--root', root]);
      assert.equal(real.run.code, 0, real.run.stderr);
      assert.deepEqual(real.report.items.map(itemId), dry.report.items.map(itemId));
      assert.deepEqual(real.report.items.map((i) => i.why), dry.report.items.map((i) => i.why));
      assert.deepEqual(real.report.summary, dry.report.summary, 'same counts and bytes');
    });

    it('a second seal has nothing to do', async () => {
      const root = await plantedTree();
      assert.equal((await seal(['--root', root])).code, 0);
      const digest = await treeDigest(root);
      const again = await sealJson(['--root', root]);
      assert.equal(again.run.code, 0, again.run.stderr);
      assert.equal(again.report.status, 'nothing-to-do');
      assert.deepEqual(again.report.items, []);
      assert.match(again.run.stderr, /^imprint: seal: nothing to do$/m);
      assert.equal(await treeDigest(root), digest);
      const text = await seal(['--root', root]);
      assert.equal(text.stdout, 'imprint: seal: nothing to do\n');
    });

    it('--operations changes what is removed: -logs keeps the logs, +cron-spool,+mail-spool removes crontabs and mailboxes', async () => {
      const root = await plantedTree();
      const syslog = await readFile(path.join(root, 'var/log/syslog'));
      const { run, report } = await sealJson(['--root', root, '--operations', '-logs,+cron-spool,+mail-spool']);
      assert.equal(run.code, 0, run.stderr);
      assert.deepEqual(report.operations, ['ssh-host-keys', 'ssh-user-keys', 'shell-history', 'credentials', 'passwords', 'machine-id', 'state', 'cron-spool', 'mail-spool']);
      assert.deepEqual(await readFile(path.join(root, 'var/log/syslog')), syslog);
      assert.ok(await exists(path.join(root, 'var/log/syslog.1')));
      assert.equal(await exists(path.join(root, 'var/spool/cron/crontabs/debian')), false);
      assert.equal(await exists(path.join(root, 'var/mail/debian')), false);
      assert.equal(await readlink(path.join(root, 'var/spool/mail')), '../mail', "Debian's /var/spool/mail link is layout, not a leftover");
      assert.equal(((await stat(path.join(root, 'var/spool/cron/crontabs'))).mode & 0o7777), 0o1730);

      const only = await sealJson(['--root', await plantedTree(), '--operations', 'machine-id', '--dry-run']);
      assert.deepEqual(only.report.items.map(itemId), ['machine-id truncate /etc/machine-id', 'machine-id unlink /var/lib/dbus/machine-id']);
    });

    it('never follows a link, never overwrites a hard-linked file, and never blocks on a FIFO', async () => {
      const root = await plantedTree();
      const outside = await mkdtemp(path.join(tmpdir(), 'imprint-outside-'));
      try {
        // root's authorized_keys is a link to a file outside the tree; debian's ~/.ssh is a link
        // to a directory outside it; builder's ~/.aws is a link to the tree's /etc.
        await writeFile(path.join(outside, 'authorized_keys'), 'ssh-ed25519 AAAA outside\n');
        await mkdir(path.join(outside, 'ssh'));
        await writeFile(path.join(outside, 'ssh/id_rsa'), '-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAE\n-----END OPENSSH PRIVATE KEY-----\n');
        await rm(path.join(root, 'root/.ssh/authorized_keys'));
        await symlink(path.join(outside, 'authorized_keys'), path.join(root, 'root/.ssh/authorized_keys'));
        await rm(path.join(root, 'home/debian/.ssh'), { recursive: true });
        await symlink(path.join(outside, 'ssh'), path.join(root, 'home/debian/.ssh'));
        await symlink('/etc', path.join(root, 'home/builder/.aws'));
        // A history hard-linked to /etc/hostname: the name goes, the content stays.
        await rm(path.join(root, 'root/.bash_history'));
        await link(path.join(root, 'etc/hostname'), path.join(root, 'root/.bash_history'));
        const hostname = await readFile(path.join(root, 'etc/hostname'));
        // A log hard-linked to /etc/login.defs: not truncated.
        await link(path.join(root, 'etc/login.defs'), path.join(root, 'var/log/defs.log'));
        const defs = await readFile(path.join(root, 'etc/login.defs'));
        // FIFOs: one in /tmp (removed with /tmp's contents), one in a project (not a regular file: not read).
        await exec('mkfifo', [path.join(root, 'tmp/fifo'), path.join(root, 'home/debian/project/pipe')]);
        const outsideBefore = await treeDigest(outside);

        const { run, report } = await sealJson(['--root', root]);
        assert.equal(run.code, 0, run.stderr);
        assert.equal(await treeDigest(outside), outsideBefore, 'nothing outside the tree changed');
        assert.equal(await readlink(path.join(root, 'root/.ssh/authorized_keys')), path.join(outside, 'authorized_keys'));
        assert.equal(await readlink(path.join(root, 'home/debian/.ssh')), path.join(outside, 'ssh'));
        assert.equal(await readlink(path.join(root, 'home/builder/.aws')), '/etc');
        const skipped = report.items.filter((i) => i.action === 'skip').map((i) => `${i.operation} ${i.path}`).sort();
        assert.deepEqual(skipped, ['credentials /home/builder/.aws', 'logs /var/log/defs.log', 'ssh-user-keys /home/debian/.ssh', 'ssh-user-keys /root/.ssh/authorized_keys']);
        assert.match(run.stderr, new RegExp(`^imprint: seal: ssh-user-keys: skipped /root/.ssh/authorized_keys: a symlink \\(to ${outside}/authorized_keys\\): never followed, left in place$`, 'm'));
        assert.deepEqual(await readFile(path.join(root, 'etc/hostname')), hostname);
        assert.equal(await exists(path.join(root, 'root/.bash_history')), false);
        assert.deepEqual(await readFile(path.join(root, 'etc/login.defs')), defs);
        assert.equal(await exists(path.join(root, 'tmp/fifo')), false);
        assert.ok(await exists(path.join(root, 'home/debian/project/pipe')));

        const again = await sealJson(['--root', root]);
        assert.equal(again.report.status, 'nothing-to-do', 'links left in place are not work left to do');
        assert.match(again.run.stderr, /nothing to do \(4 items left in place, named above\)/);
      } finally {
        await rm(outside, { recursive: true, force: true });
      }
    });

    it('passwords: a locked password still holding its hash loses the hash too, and copies of the hashes go', async () => {
      const root = await plantedTree();
      const hash = (await shadowField(root, 'root')) as string;
      await writeFile(path.join(root, 'etc/passwd'), `${await readFile(path.join(root, 'etc/passwd'), 'utf8')}olduser:x:1002:1002::/home/olduser:/bin/bash\n`);
      await writeFile(path.join(root, 'etc/shadow'), `${await readFile(path.join(root, 'etc/shadow'), 'utf8')}olduser:!${hash}:19700:0:99999:7:::\n`);
      await mkdir(path.join(root, 'var/backups'), { recursive: true });
      await writeFile(path.join(root, 'var/backups/shadow.bak'), await readFile(path.join(root, 'etc/shadow')));
      const { run, report } = await sealJson(['--root', root, '--operations', 'passwords']);
      assert.equal(run.code, 0, run.stderr);
      assert.deepEqual(report.items.map(itemId), [
        'passwords lock /etc/shadow#root', 'passwords lock /etc/shadow#debian', 'passwords lock /etc/shadow#builder', 'passwords lock /etc/shadow#olduser',
        'passwords shred /etc/shadow-', 'passwords shred /var/backups/shadow.bak',
      ]);
      assert.match(report.items[3]?.why ?? '', /olduser's password is locked but still holds its sha512 hash/);
      const shadow = await readFile(path.join(root, 'etc/shadow'), 'utf8');
      assert.ok(!shadow.includes('$'), 'no hash is left in /etc/shadow');
      assert.ok(!run.stderr.includes(hash.slice(3, 12)), 'no hash is printed');
      assert.equal(await exists(path.join(root, 'var/backups/shadow.bak')), false);
      assert.equal((await sealJson(['--root', root, '--operations', 'passwords'])).report.status, 'nothing-to-do');
    });

    it('names an item it could not remove, does the rest, and exits 1', async function () {
      const root = await plantedTree();
      const netrc = path.join(root, 'root/.netrc');
      // An immutable file: unlink and overwrite fail with EPERM, even for root.
      const immutable = await exec('chattr', ['+i', netrc]).then(() => true, () => false);
      if (!immutable) this.skip();
      try {
        const { run, report } = await sealJson(['--root', root]);
        assert.equal(run.code, 1);
        assert.equal(report.status, 'failed');
        assert.deepEqual(report.items.filter((i) => i.status === 'failed').map((i) => i.path), ['/root/.netrc']);
        assert.match(run.stderr, /^imprint: seal: credentials: error: could not shred \/root\/\.netrc: .*(EPERM|not permitted)/m);
        assert.match(run.stderr, /^imprint: seal: error: 1 item could not be removed: \/root\/\.netrc$/m);
        assert.equal(await exists(path.join(root, 'root/.aws')), false, 'the other items were done');
        assert.equal(report.summary.find((r) => r.operation === 'credentials')?.failed, 1);
      } finally {
        await exec('chattr', ['-i', netrc]);
      }
      assert.equal((await sealJson(['--root', root])).report.items.map(itemId).join(), 'credentials shred /root/.netrc', 'the next run has only that left');
    });

    it('removes names with control characters or invalid UTF-8, and prints them quoted', async () => {
      const root = await plantedTree();
      await writeFile(path.join(root, 'tmp', 'evil\x1b[31m\nname'), 'x');
      await writeFile(Buffer.concat([Buffer.from(path.join(root, 'tmp/')), Buffer.from([0x62, 0xff, 0x2e, 0x6b, 0x65, 0x79])]), '-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA1234567890abcdef\n-----END RSA PRIVATE KEY-----\n');
      const run = await seal(['--root', root]);
      assert.equal(run.code, 0, run.stderr);
      assert.deepEqual(await readdir(path.join(root, 'tmp')), []);
      assert.ok(!run.stdout.includes('\x1b'), 'no terminal escape reaches the output');
      assert.match(run.stdout, /state: unlinked "\/tmp\/evil\\u001b\[31m\\nname"/);
      assert.match(run.stdout, /credentials: shredded "\/tmp\/b\uFFFD\.key" \(\d+ B\): PEM private key \(-----BEGIN RSA PRIVATE KEY-----\)/);
    });

    it('zero-free-space writes zeros up to IMPRINT_SEAL_ZERO_LIMIT and removes its file; without a limit, a tree on this machine\'s disk is skipped', async () => {
      const root = await plantedTree();
      const digest = await treeDigest(root);
      const capped = await sealJson(['--root', root, '--operations', 'zero-free-space'], { IMPRINT_SEAL_ZERO_LIMIT: '3M' });
      assert.equal(capped.run.code, 0, capped.run.stderr);
      assert.deepEqual(capped.report.items.map((i) => [i.path, i.action, i.status, i.bytes]), [['/', 'zero-fill', 'done', 3 * 1024 * 1024]]);
      assert.equal(await treeDigest(root), digest, 'the fill file is gone');
      const uncapped = await sealJson(['--root', root, '--operations', 'zero-free-space']);
      assert.equal(uncapped.run.code, 0);
      assert.equal(uncapped.report.items[0]?.action, 'skip');
      assert.match(uncapped.report.items[0]?.why ?? '', /would fill this machine's disk/);
      assert.equal((await seal(['--root', root, '--operations', 'zero-free-space'], { IMPRINT_SEAL_ZERO_LIMIT: 'lots' })).code, 2);
      // A fill file left by a killed run is removed by state.
      await writeFile(path.join(root, '.imprint-zero-fill'), Buffer.alloc(4096));
      const state = await sealJson(['--root', root, '--operations', 'state']);
      assert.ok(state.report.items.some((i) => i.path === '/.imprint-zero-fill' && i.status === 'done'));
      assert.equal(await exists(path.join(root, '.imprint-zero-fill')), false);
    });

    it('seal then imprint boot: no machine identity, so the local work is done as on a first boot; with the new machine-id systemd writes, "first boot"', async () => {
      const root = await plantedTree();
      assert.equal((await seal(['--root', root])).code, 0);
      assert.equal((await stat(path.join(root, 'etc/machine-id'))).size, 0);
      await writeConfig(root, FAST_KEYS_CONFIG);
      const boot = await imprint(['boot', '--root', root]);
      assert.equal(boot.code, 0, boot.stderr);
      // An empty machine-id gives imprint no identity to key state on: it says so and does the work.
      assert.match(boot.stdout, /^imprint: instance: warning: no local identity \(empty \/etc\/machine-id\): doing the local work again$/m);
      assert.deepEqual((await hostKeyPairs(root)).map((k) => k.name), ['ssh_host_ecdsa_key', 'ssh_host_ed25519_key']);
      assert.equal((await shadowStates(root)).get('root'), 'locked');
      assert.equal(await exists(path.join(root, 'var/lib/imprint/state.json')), false, 'no identity, so no state is kept');
      // On a real first boot systemd writes a new machine-id before imprint starts.
      await writeFile(path.join(root, 'etc/machine-id'), '0123456789abcdef0123456789abcdef\n');
      const first = await imprint(['boot', '--root', root]);
      assert.equal(first.code, 0, first.stderr);
      assert.match(first.stdout, /^imprint: instance: 0123456789abcdef0123456789abcdef \(machine-id\): first boot$/m);
      assert.ok(await exists(path.join(root, 'var/lib/imprint/state.json')));
    });

    it('killed at any durable step, a second seal finishes the job', async function () {
      this.timeout(300_000);
      const reference = await plantedTree();
      assert.equal((await seal(['--root', reference])).code, 0);
      const expected = await snapshotTree(reference);
      const volatile = (m: Map<string, string>): Map<string, string> => new Map([...m].filter(([p]) => p !== '/etc/shadow' && p !== '/etc/passwd-'));
      let killed = 0;
      for (const n of [1, 2, 5, 9, 20, 45, 80, 120, 170]) {
        const root = await plantedTree();
        const script = `const { sealCommand } = await import(${JSON.stringify(SEAL_MODULE)}); process.exitCode = await sealCommand(process.argv.slice(1));`;
        const child = await exec(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script, '--', '--root', root], {
          env: { PATH: process.env.PATH, IMPRINT_TEST_CRASH_AT: String(n) },
        }).then(() => null, (err: { signal?: string }) => err.signal ?? 'error');
        if (child === 'SIGKILL') killed += 1;
        else assert.equal(child, null, `run ${n} ended without a crash, and cleanly`);
        const rerun = await seal(['--root', root]);
        assert.equal(rerun.code, 0, `after a kill at step ${n}: ${rerun.stdout}${rerun.stderr}`);
        assert.deepEqual(volatile(await snapshotTree(root)), volatile(expected), `after a kill at step ${n}, the same sealed tree`);
        for (const account of ['root', 'debian', 'builder']) assert.equal(await shadowField(root, account), '!');
        assert.equal((await seal(['--root', root])).stdout, 'imprint: seal: nothing to do\n');
      }
      assert.ok(killed >= 7, `most runs were killed mid-way (${killed})`);
    });
  });

  describe('the command line', () => {
    it('parses --operations: signed entries change the defaults, a bare list is exactly those', () => {
      assert.deepEqual([...parseOperations('-logs,+zero-free-space')], [...DEFAULT_OPERATIONS.filter((o) => o !== 'logs'), 'zero-free-space']);
      assert.deepEqual([...parseOperations('logs,ssh-host-keys')], ['logs', 'ssh-host-keys']);
      assert.deepEqual([...parseOperations('ssh-host-keys,+logs,-ssh-host-keys')], ['logs']);
      assert.equal(parseOperations('all,-mail-spool').size, 11);
      assert.deepEqual([...parseOperations('defaults')], [...DEFAULT_OPERATIONS]);
      assert.throws(() => parseOperations('lgos'), (e: Error) => e instanceof OperationsError && /unknown operation "lgos" \(did you mean "logs"\?\)/.test(e.message));
      assert.throws(() => parseOperations('-zero-fre-space'), /did you mean "zero-free-space"/);
      assert.throws(() => parseOperations('logs,,state'), /empty entry/);
      assert.throws(() => parseOperations('-all'), /selects no operation/);
    });

    it('usage errors exit 2 with a hint; --help is complete', async () => {
      const unknown = await seal(['--root', '/nonexistent-imprint-tree', '--operations', 'ssh-hostkeys']);
      assert.equal(unknown.code, 2);
      assert.match(unknown.stderr, /^imprint: seal: --operations: unknown operation "ssh-hostkeys" \(did you mean "ssh-host-keys"\?\)/m);
      assert.match(unknown.stderr, /see "imprint seal --help"/);
      const flag = await seal(['--dryrun']);
      assert.equal(flag.code, 2);
      assert.match(flag.stderr, /did you mean "--dry-run"\?/);
      assert.equal((await seal(['extra'])).code, 2);
      const missing = await seal(['--root', '/nonexistent-imprint-tree']);
      assert.equal(missing.code, 2);
      assert.match(missing.stderr, /--root \/nonexistent-imprint-tree: not a directory/);
      const help = await seal(['--help']);
      assert.equal(help.code, 0);
      for (const op of ['ssh-host-keys', 'ssh-user-keys', 'shell-history', 'credentials', 'passwords', 'logs', 'machine-id', 'state', 'zero-free-space', 'cron-spool', 'mail-spool']) {
        assert.match(help.stdout, new RegExp(`^[* ] ${op} `, 'm'), op);
      }
      assert.match(help.stdout, /^\* logs /m);
      assert.match(help.stdout, /^ {2}zero-free-space /m);
      assert.match(help.stdout, /copy-on-write/);
      assert.match(help.stdout, /SSDs/);
      assert.match(help.stdout, /--yes/);
    });

    it('refuses to seal the running system without --yes, and changes nothing', async () => {
      // Never with --yes: these only prove the refusal comes before anything is looked at.
      const watched = ['/etc/machine-id', '/etc/shadow', '/etc/ssh', '/var/log', '/root'];
      const look = async (): Promise<string> => JSON.stringify(await Promise.all(watched.map(async (p) => {
        const s = await lstat(p).catch(() => null);
        return s && [p, s.ino, s.size, s.mtimeMs, s.mode];
      })));
      const before = await look();
      const link = await mkdtemp(path.join(tmpdir(), 'imprint-rootlink-'));
      try {
        await symlink('/', path.join(link, 'slash'));
        for (const args of [[], ['--root', '/'], ['--root', path.join(link, 'slash')], ['--root', '/tmp/..'], ['--operations', 'machine-id']]) {
          const run = await seal(args);
          assert.equal(run.code, 2, `imprint seal ${args.join(' ')}`);
          assert.match(run.stderr, /refusing to seal the running system \(\/\) without --yes: nothing was changed/);
          assert.equal(run.stdout, '', 'nothing was planned or listed');
        }
      } finally {
        await rm(link, { recursive: true, force: true });
      }
      assert.equal(await look(), before);
    });
  });

  describe('content rules', () => {
    it('find private keys and PKCS#12 stores by content, and leave certificates, public keys and documents alone', async () => {
      const body = 'MIIEowIBAAKCAQEAx1234567890abcdefghijklmnopqrstuvwxyz\n';
      const yes: [string, string][] = [
        [`-----BEGIN RSA PRIVATE KEY-----\n${body}-----END RSA PRIVATE KEY-----\n`, 'RSA PRIVATE KEY'],
        [`-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQ==\n-----END OPENSSH PRIVATE KEY-----\n`, 'OPENSSH PRIVATE KEY'],
        [`\n\n-----BEGIN PRIVATE KEY-----\r\n${body}`, 'PRIVATE KEY'],
        [`-----BEGIN EC PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\nDEK-Info: AES-128-CBC,00\n\n${body}`, 'EC PRIVATE KEY'],
        [`-----BEGIN CERTIFICATE-----\n${body}-----END CERTIFICATE-----\n-----BEGIN ENCRYPTED PRIVATE KEY-----\n${body}`, 'ENCRYPTED PRIVATE KEY'],
        [`Bag Attributes\n    localKeyID: 01 02\nKey Attributes: <No Attributes>\n-----BEGIN PRIVATE KEY-----\n${body}`, 'PRIVATE KEY'],
        ['PuTTY-User-Key-File-3: ssh-ed25519\nEncryption: none\n', 'PuTTY'],
        [`-----BEGIN PGP PRIVATE KEY BLOCK-----\nVersion: GnuPG\n\nlQOYBF0000000000000000000000\n`, 'PGP PRIVATE KEY BLOCK'],
      ];
      for (const [text, label] of yes) assert.ok(sniffSecret(Buffer.from(text))?.includes(label), label);
      const no = [
        `-----BEGIN CERTIFICATE-----\n${body}-----END CERTIFICATE-----\n`,
        'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl me\n',
        '# Keys\n\n-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEAx1234567890abcdef\n',
        'Never commit a -----BEGIN RSA PRIVATE KEY----- block.\n',
        '-----BEGIN RSA PRIVATE KEY-----\n(paste your key here)\n-----END RSA PRIVATE KEY-----\n',
        '',
      ];
      for (const text of no) assert.equal(sniffSecret(Buffer.from(text)), null, JSON.stringify(text.slice(0, 40)));
      const p12 = await readFile(path.join(template, 'var/tmp/store.p12'));
      assert.ok(isPkcs12(p12));
      assert.equal(sniffSecret(p12), 'PKCS#12 key store (DER)');
      assert.equal(isPkcs12(Buffer.from([0x30, 0x82, 0x01, 0x00, 0x02, 0x01, 0x01])), false);
      assert.equal(isPkcs12(Buffer.alloc(0)), false);
    });
  });
});
