import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { chmod, chown, link, lstat, mkdir, mkdtemp, readFile, rename, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { TaskRecorder } from '../../agent/boot/report.js';
import type { TaskContext } from '../../agent/boot/task.js';
import { parseConfig } from '../../agent/config.js';
import type { InstanceMetadata, LaunchKey } from '../../agent/metadata/types.js';
import { Console } from '../../agent/os/console.js';
import { ImprintError } from '../../agent/os/errors.js';
import { setProcFdMode } from '../../agent/os/home-files.js';
import { RootTree } from '../../agent/os/root.js';
import { parsePublicKey } from '../../agent/parsers/ssh-public-key.js';
import { authorizedKeysTask } from '../../agent/tasks/authorized-keys.js';
import { DEMO_USER, diffSnapshots, removeScratch, scratchImage, snapshotTree, treeDigest } from '../support/tree.js';

const exec = promisify(execFile);

/** A Console that keeps its lines instead of printing them among mocha's. */
class QuietConsole extends Console {
  readonly lines: string[] = [];
  constructor() {
    super({ json: false, verbose: true });
  }
  override info(scope: string, message: string): void {
    this.lines.push(`${scope}: ${message}`);
  }
  override warn(scope: string, message: string): void {
    this.lines.push(`${scope}: warning: ${message}`);
  }
  override error(scope: string, message: string): void {
    this.lines.push(`${scope}: error: ${message}`);
  }
  override detail(scope: string, message: string): void {
    this.lines.push(`${scope}: ${message}`);
  }
  override block(lines: string[]): void {
    this.lines.push(...lines);
  }
}

const BEGIN = (id: string): string => `# imprint: launch keys for instance ${id} (managed; edits here are replaced)`;
const END = '# imprint: end';

describe('authorized-keys task on a scratch tree', function () {
  this.timeout(30_000);
  let template = '';
  let keyDir = '';
  const pubs: string[] = [];
  let root = '';
  let outside = '';

  before(async () => {
    template = await scratchImage();
    keyDir = await mkdtemp(path.join(tmpdir(), 'imprint-ak-keys-'));
    await Promise.all([0, 1, 2, 3].map((i) => exec('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', `key${i}@laptop`, '-f', path.join(keyDir, `k${i}`)])));
    for (const i of [0, 1, 2, 3]) pubs.push((await readFile(path.join(keyDir, `k${i}.pub`), 'utf8')).trim());
  });
  after(async () => {
    if (template) await removeScratch(template);
    if (keyDir) await rm(keyDir, { recursive: true, force: true });
  });
  beforeEach(async () => {
    root = await mkdtemp(path.join(tmpdir(), 'imprint-test-'));
    await exec('cp', ['-a', `${template}/.`, root]);
    outside = await mkdtemp(path.join(tmpdir(), 'imprint-outside-'));
    await writeFile(path.join(outside, 'precious'), 'outside the tree\n');
  });
  afterEach(async () => {
    await removeScratch(root);
    await rm(outside, { recursive: true, force: true });
  });

  const fp = (pub: string): string => parsePublicKey(pub).fingerprint;
  const host = (inTree: string): string => path.join(root, inTree);

  function metadata(instanceId: string, keys: (string | LaunchKey)[]): InstanceMetadata {
    return {
      source: 'ec2',
      instanceId,
      keys: keys.map((k, i) => (typeof k === 'string' ? { origin: `public-keys/${i}`, name: `key${i}`, text: `${k}\n` } : k)),
      productCodes: null,
      identityDocument: null,
      rejected: [],
    };
  }

  async function runTask(md: InstanceMetadata | undefined, yaml = ''): Promise<{ rec: TaskRecorder; out: QuietConsole }> {
    const out = new QuietConsole();
    const rec = new TaskRecorder('authorized-keys', 'network', out);
    const ctx: TaskContext = {
      root: new RootTree(root),
      config: parseConfig(yaml, 'test.yaml'),
      instance: { id: 'local-hint', source: 'override' },
      facts: md ? { metadata: md } : {},
    };
    await authorizedKeysTask.run(ctx, rec);
    return { rec, out };
  }

  async function ownerAndMode(inTree: string): Promise<[number, number, number]> {
    const s = await lstat(host(inTree));
    return [s.uid, s.gid, s.mode & 0o7777];
  }

  describe('where the keys land', () => {
    it("root by default: /root/.ssh 0700 and authorized_keys 0600, root's; only those two paths change", async () => {
      const before = await snapshotTree(root);
      const { rec } = await runTask(metadata('i-0aaa', [pubs[0] as string]));
      assert.equal(await readFile(host('/root/.ssh/authorized_keys'), 'utf8'), `${BEGIN('i-0aaa')}\n${pubs[0]}\n${END}\n`);
      assert.deepEqual(await ownerAndMode('/root/.ssh'), [0, 0, 0o700]);
      assert.deepEqual(await ownerAndMode('/root/.ssh/authorized_keys'), [0, 0, 0o600]);
      assert.deepEqual(diffSnapshots(before, await snapshotTree(root)), { added: ['/root/.ssh', '/root/.ssh/authorized_keys'], changed: [], removed: [] });
      assert.deepEqual(rec.report.details.keys, [{ origin: 'public-keys/0', fingerprint: fp(pubs[0] as string), type: 'ssh-ed25519', label: 'ED25519' }]);
      assert.ok(rec.report.actions.some((a) => a.includes(fp(pubs[0] as string))));
      assert.ok(!rec.report.actions.join('\n').includes((pubs[0] as string).split(' ')[1] as string), 'the report carries fingerprints, not keys');
    });

    it(`the default user (${DEMO_USER}, uid 1000): created .ssh and the file are ${DEMO_USER}'s`, async () => {
      await runTask(metadata('i-0aaa', [pubs[0] as string, pubs[1] as string]), `default_user:\n  name: ${DEMO_USER}\n`);
      const file = `/home/${DEMO_USER}/.ssh/authorized_keys`;
      assert.equal(await readFile(host(file), 'utf8'), `${BEGIN('i-0aaa')}\n${pubs[0]}\n${pubs[1]}\n${END}\n`);
      assert.deepEqual(await ownerAndMode(`/home/${DEMO_USER}/.ssh`), [1000, 1000, 0o700]);
      assert.deepEqual(await ownerAndMode(file), [1000, 1000, 0o600]);
      assert.equal(await lstat(host('/root/.ssh')).catch(() => null), null, "root's home untouched");
    });

    it('authorized_keys.user names the account explicitly; a user not in /etc/passwd is an error', async () => {
      await runTask(metadata('i-0aaa', [pubs[0] as string]), `authorized_keys:\n  user: ${DEMO_USER}\n`);
      assert.deepEqual(await ownerAndMode(`/home/${DEMO_USER}/.ssh/authorized_keys`), [1000, 1000, 0o600]);
      await assert.rejects(runTask(metadata('i-0aaa', [pubs[0] as string]), 'authorized_keys:\n  user: nobody2\n'), /nobody2 is not in \/etc\/passwd/);
    });

    it('is off with authorized_keys.enabled: false, and needs metadata', async () => {
      assert.equal(authorizedKeysTask.disabledBecause(parseConfig('authorized_keys:\n  enabled: false\n', 't')), 'authorized_keys.enabled is false');
      assert.equal(authorizedKeysTask.disabledBecause(parseConfig('', 't')), null);
      assert.equal(authorizedKeysTask.phase, 'network');
      await assert.rejects(runTask(undefined), /no metadata/);
    });

    it('--dry-run plan says what would happen and writes nothing', async () => {
      const before = await treeDigest(root);
      const ctx: TaskContext = { root: new RootTree(root), config: parseConfig('', 't'), instance: { id: 'x', source: 'override' }, facts: { metadata: metadata('i-0aaa', [pubs[0] as string, 'ssh-rsa AAAA']) } };
      const plan = await authorizedKeysTask.plan(ctx);
      assert.ok(plan.some((l) => l.startsWith('would write:') && l.includes(fp(pubs[0] as string))), plan.join('\n'));
      assert.ok(plan.some((l) => l.includes('public-keys/1: skipped')), plan.join('\n'));
      assert.equal(await treeDigest(root), before);
    });
  });

  describe("the user's lines and imprint's block", () => {
    const userFile = `/home/${DEMO_USER}/.ssh/authorized_keys`;
    const cfg = `authorized_keys:\n  user: ${DEMO_USER}\n`;

    async function userSsh(content: Buffer | string, mode = 0o600): Promise<void> {
      await mkdir(host(`/home/${DEMO_USER}/.ssh`), { mode: 0o700 });
      await chown(host(`/home/${DEMO_USER}/.ssh`), 1000, 1000);
      await writeFile(host(userFile), content);
      await chown(host(userFile), 1000, 1000);
      await chmod(host(userFile), mode);
    }

    it('existing user lines survive byte for byte (CRLF, options, comments, invalid UTF-8, no final newline)', async () => {
      const mine = Buffer.concat([
        Buffer.from(`# my keys\r\nfrom="10.0.0.0/8",no-pty ${pubs[2]}\n\n  # indented comment\t\n`),
        Buffer.from([0x23, 0x20, 0xff, 0xfe, 0x0a]), // "# \xff\xfe\n": not UTF-8
        Buffer.from(`${pubs[3]} last line without newline`),
      ]);
      await userSsh(mine, 0o644);
      const { rec } = await runTask(metadata('i-0aaa', [pubs[0] as string]), cfg);
      const after = await readFile(host(userFile));
      assert.deepEqual(after, Buffer.concat([mine, Buffer.from(`\n${BEGIN('i-0aaa')}\n${pubs[0]}\n${END}\n`)]));
      assert.deepEqual(await ownerAndMode(userFile), [1000, 1000, 0o600]);
      assert.ok(rec.report.actions.some((a) => a.includes('was mode 0644; now 0600')));
      // Run again, same instance: nothing to do, nothing written.
      const inode = (await lstat(host(userFile))).ino;
      const again = await runTask(metadata('i-0aaa', [pubs[0] as string]), cfg);
      assert.equal((await lstat(host(userFile))).ino, inode);
      assert.equal(again.rec.report.details.written, false);
      assert.ok(again.rec.report.actions.some((a) => a.includes('already in')));
    });

    it("a second instance's keys replace the first's in the block; lines the user added before and after stay", async () => {
      await userSsh(`${pubs[2]} mine\n`);
      await runTask(metadata('i-first', [pubs[0] as string]), cfg);
      // The user appends a line after imprint's block.
      await writeFile(host(userFile), `${await readFile(host(userFile), 'utf8')}${pubs[3]} added later\n`);
      const { rec } = await runTask(metadata('i-second', [pubs[1] as string]), cfg);
      assert.equal(await readFile(host(userFile), 'utf8'), `${pubs[2]} mine\n${BEGIN('i-second')}\n${pubs[1]}\n${END}\n${pubs[3]} added later\n`);
      assert.ok(rec.report.actions.some((a) => a.includes('replaced the launch keys of previous instance i-first')));
      assert.deepEqual(rec.report.details.previousInstances, ['i-first']);
    });

    it('a key the user already has outside the block is not repeated; a key served twice is written once', async () => {
      await userSsh(`no-port-forwarding ${pubs[0]} already mine\n`);
      const { rec } = await runTask(metadata('i-0aaa', [pubs[0] as string, pubs[1] as string, pubs[1] as string]), cfg);
      assert.equal(await readFile(host(userFile), 'utf8'), `no-port-forwarding ${pubs[0]} already mine\n${BEGIN('i-0aaa')}\n${pubs[1]}\n${END}\n`);
      assert.ok(rec.report.actions.some((a) => a.includes("outside imprint's block")));
      assert.ok(rec.report.actions.some((a) => a.includes('listed twice')));
    });

    it('invalid keys are skipped with a warning naming their origin; narrowing options are kept, widening ones refuse the key; an entry with a line break is refused whole', async () => {
      const [type, b64] = (pubs[1] as string).split(' ');
      const md = metadata('i-0aaa', [
        { origin: 'public-keys/0', name: 'backup', text: `command="/usr/local/bin/backup",restrict ${pubs[0]}\n` },
        { origin: 'public-keys/1', name: 'bad', text: `${type} ${(b64 as string).slice(0, -3)}\n` },
        { origin: 'public-keys/2', name: 'multi', text: `${pubs[2]}\n# a comment\nssh-dss AAAAB3NzaC1kc3M= old\n${pubs[3]}\r\n` },
        { origin: 'public-keys/3', name: 'empty', text: '\n' },
        { origin: 'public-keys/4', name: 'env', text: `environment="LD_PRELOAD=/tmp/x.so" ${pubs[3]}\n` },
        { origin: 'public-keys/5', name: 'dup', text: `command="a",command="b" ${pubs[2]}\n` },
      ]);
      const { rec } = await runTask(md, cfg);
      // The key meant for a forced backup command keeps it: it never gets a shell.
      assert.equal(await readFile(host(userFile), 'utf8'), `${BEGIN('i-0aaa')}\ncommand="/usr/local/bin/backup",restrict ${pubs[0]}\n${END}\n`);
      assert.deepEqual(rec.report.warnings, [
        'public-keys/1: skipped: base64 does not decode',
        'public-keys/2: skipped: embedded line break (an entry holds exactly one key)',
        'public-keys/3: skipped: no key in it',
        'public-keys/4: skipped: its options (environment=) would let it do more than a plain key; authorized_keys.allow_options is off, so the key is refused rather than installed without its options',
        'public-keys/5: skipped: sshd would ignore this line (bad key options: multiple "command" clauses)',
      ]);
      assert.ok(rec.report.actions.some((a) => a.includes('keeps its options (command, restrict)')));
    });

    it('a certificate is refused as a launch key, with the reason', async () => {
      const ca = path.join(keyDir, 'k1');
      await exec('ssh-keygen', ['-q', '-s', ca, '-I', 'cert', '-n', 'root', path.join(keyDir, 'k2.pub')]);
      const cert = (await readFile(path.join(keyDir, 'k2-cert.pub'), 'utf8')).trim();
      const { rec } = await runTask(metadata('i-0aaa', [cert, pubs[0] as string]), cfg);
      assert.equal(await readFile(host(userFile), 'utf8'), `${BEGIN('i-0aaa')}\n${pubs[0]}\n${END}\n`);
      assert.match(rec.report.warnings.join('\n'), /skipped: a certificate \(ssh-ed25519-cert-v01@openssh.com\) never logs in from its own line: sshd honours a certificate only through a cert-authority line/);
    });

    it('with allow_options, parsed options are kept', async () => {
      await runTask(metadata('i-0aaa', [`no-pty,from="10.*" ${pubs[0]}`]), `${cfg}  allow_options: true\n`);
      assert.equal(await readFile(host(userFile), 'utf8'), `${BEGIN('i-0aaa')}\nno-pty,from="10.*" ${pubs[0]}\n${END}\n`);
    });
  });

  describe('killed at every durable step, then run again', function () {
    // Dozens of runs, each reading its key back with ssh-keygen: slower than the other cases.
    this.timeout(180_000);
    // The task runs in a child process that SIGKILLs itself at crash point N (agent/os/crash.ts).
    const agent = path.resolve('agent');
    const script = `
      import { TaskRecorder } from '${agent}/boot/report.ts';
      import { parseConfig } from '${agent}/config.ts';
      import { Console } from '${agent}/os/console.ts';
      import { RootTree } from '${agent}/os/root.ts';
      import { authorizedKeysTask } from '${agent}/tasks/authorized-keys.ts';
      const [root, id, key, yaml] = process.argv.slice(1);
      const md = { source: 'ec2', instanceId: id, keys: [{ origin: 'public-keys/0', name: 'k', text: key }], productCodes: null, identityDocument: null, rejected: [] };
      const ctx = { root: new RootTree(root), config: parseConfig(yaml, 't'), instance: { id: 'x', source: 'override' }, facts: { metadata: md } };
      await authorizedKeysTask.run(ctx, new TaskRecorder('authorized-keys', 'network', new Console({ json: true, verbose: false })));
    `;

    function child(args: string[], crashAt: number | null): Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string }> {
      return new Promise((resolve) => {
        const env = { PATH: process.env.PATH, ...(crashAt === null ? {} : { IMPRINT_TEST_CRASH_AT: String(crashAt) }) };
        const proc = execFile(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script, ...args], { env }, (err, _stdout, stderr) => {
          resolve({ code: proc.exitCode, signal: proc.signalCode ?? (err as { signal?: NodeJS.Signals } | null)?.signal ?? null, stderr });
        });
      });
    }

    it(`ends with ${DEMO_USER}'s keys in place, .ssh and the file theirs, the user's lines intact`, async () => {
      const cfg = `authorized_keys:\n  user: ${DEMO_USER}\n`;
      const file = host(`/home/${DEMO_USER}/.ssh/authorized_keys`);
      let killed = 0;
      for (let n = 1; n < 20; n += 1) {
        await rm(host(`/home/${DEMO_USER}/.ssh`), { recursive: true, force: true });
        for (const f of (await exec('ls', ['-A', host(`/home/${DEMO_USER}`)])).stdout.split('\n').filter((f) => f.startsWith('.imprint-'))) {
          await rm(host(`/home/${DEMO_USER}/${f}`), { recursive: true });
        }
        // First instance, complete; then the second instance's run is killed at step n.
        const first = await child([root, 'i-first', pubs[0] as string, cfg], null);
        assert.equal(first.code, 0, first.stderr);
        await writeFile(file, `${await readFile(file, 'utf8')}${pubs[3]} mine\n`);
        const crashed = await child([root, 'i-second', pubs[1] as string, cfg], n);
        if (crashed.signal !== 'SIGKILL') {
          assert.equal(crashed.code, 0, crashed.stderr);
          break;
        }
        killed = n;
        // Right after the kill, the file is the old one or the new one, never a mix.
        const now = await readFile(file, 'utf8');
        assert.ok(now.includes(`${pubs[3]} mine\n`), `step ${n}: user line lost`);
        const rerun = await child([root, 'i-second', pubs[1] as string, cfg], null);
        assert.equal(rerun.code, 0, `step ${n}: ${rerun.stderr}`);
        assert.equal(await readFile(file, 'utf8'), `${BEGIN('i-second')}\n${pubs[1]}\n${END}\n${pubs[3]} mine\n`, `step ${n}`);
        assert.deepEqual(await ownerAndMode(`/home/${DEMO_USER}/.ssh/authorized_keys`), [1000, 1000, 0o600]);
        assert.equal((await exec('ls', ['-A', host(`/home/${DEMO_USER}/.ssh`)])).stdout, 'authorized_keys\n', `step ${n}: leftovers`);
      }
      assert.ok(killed >= 2, `only ${killed} crash points reached`);
    });

    it('a kill while ~/.ssh is being made never leaves a root-owned ~/.ssh behind', async () => {
      const cfg = `authorized_keys:\n  user: ${DEMO_USER}\n`;
      const crashed = await child([root, 'i-1', pubs[0] as string, cfg], 1);
      assert.equal(crashed.signal, 'SIGKILL');
      assert.equal(await lstat(host(`/home/${DEMO_USER}/.ssh`)).catch(() => null), null);
      const rerun = await child([root, 'i-1', pubs[0] as string, cfg], null);
      assert.equal(rerun.code, 0, rerun.stderr);
      assert.deepEqual(await ownerAndMode(`/home/${DEMO_USER}/.ssh`), [1000, 1000, 0o700]);
      const leftovers = (await exec('ls', ['-A', host(`/home/${DEMO_USER}`)])).stdout.split('\n').filter((f) => f.startsWith('.imprint-'));
      assert.deepEqual(leftovers, [], 'the killed run left its temp directory');
    });
  });

  describe('no keys in metadata', () => {
    const rootFile = '/root/.ssh/authorized_keys';

    it('nothing is written (no .ssh created) and it is reported', async () => {
      const before = await treeDigest(root);
      const { rec } = await runTask(metadata('i-0aaa', []));
      assert.equal(await treeDigest(root), before);
      assert.deepEqual(rec.report.actions, ['metadata has no launch keys; nothing written']);
      const invalid = await runTask(metadata('i-0aaa', ['ssh-ed25519 AAAA']));
      assert.equal(await treeDigest(root), before);
      assert.ok(invalid.rec.report.actions.includes('no usable launch key in metadata; nothing written'));
    });

    it("a previous instance's block is removed; this instance's own block is kept", async () => {
      await runTask(metadata('i-old', [pubs[0] as string]));
      await writeFile(host(rootFile), `${pubs[2]} mine\n${await readFile(host(rootFile), 'utf8')}`);
      const same = await runTask(metadata('i-old', []));
      assert.equal(await readFile(host(rootFile), 'utf8'), `${pubs[2]} mine\n${BEGIN('i-old')}\n${pubs[0]}\n${END}\n`);
      assert.ok(same.rec.report.actions.some((a) => a.includes('kept')));
      const other = await runTask(metadata('i-new', []));
      assert.equal(await readFile(host(rootFile), 'utf8'), `${pubs[2]} mine\n`);
      assert.ok(other.rec.report.actions.some((a) => a.includes('removed the launch keys of previous instance i-old')));
    });
  });

  for (const procMode of [true, false]) describe(`attacks are refused and nothing changes, inside the tree or out (${procMode ? 'via /proc/self/fd' : 'path fallback, as without /proc'})`, () => {
    before(() => setProcFdMode(procMode));
    after(() => setProcFdMode(null));
    const home = `/home/${DEMO_USER}`;
    const cfg = `authorized_keys:\n  user: ${DEMO_USER}\n`;

    async function sshDir(uid = 1000, mode = 0o700): Promise<void> {
      await mkdir(host(`${home}/.ssh`));
      await chown(host(`${home}/.ssh`), uid, uid);
      await chmod(host(`${home}/.ssh`), mode);
    }

    async function assertRefused(why: RegExp, yaml = cfg, digests = true): Promise<void> {
      // (treeDigest reads every file: it would block on a FIFO, so that case compares listings.)
      const tree = digests ? await treeDigest(root) : '';
      const out = await treeDigest(outside);
      await assert.rejects(runTask(metadata('i-0aaa', [pubs[0] as string]), yaml), (err: unknown) => {
        assert.ok(err instanceof ImprintError, String(err));
        assert.match(err.message, why);
        return true;
      });
      if (digests) assert.equal(await treeDigest(root), tree, 'the tree changed');
      assert.equal(await treeDigest(outside), out, 'the outside dir changed');
    }

    it('(control) a sound home gets its keys, .ssh created 0700 and the file 0600, both the user\'s', async () => {
      await runTask(metadata('i-0aaa', [pubs[0] as string]), cfg);
      assert.deepEqual(await ownerAndMode(`${home}/.ssh`), [1000, 1000, 0o700]);
      assert.deepEqual(await ownerAndMode(`${home}/.ssh/authorized_keys`), [1000, 1000, 0o600]);
      await runTask(metadata('i-0bbb', [pubs[1] as string]), cfg);
      assert.equal(await readFile(host(`${home}/.ssh/authorized_keys`), 'utf8'), `${BEGIN('i-0bbb')}\n${pubs[1]}\n${END}\n`);
    });

    it('~/.ssh a symlink to <root>/etc', async () => {
      await symlink('/etc', host(`${home}/.ssh`));
      await symlink(host('/etc'), host('/root/.ssh'));
      await assertRefused(/refusing \/home\/debian\/\.ssh: it is a symlink/);
      await assertRefused(/refusing \/root\/\.ssh: it is a symlink/, '');
      assert.equal(await lstat(host('/etc/authorized_keys')).catch(() => null), null);
    });

    it('~/.ssh a symlink outside the root', async () => {
      await symlink(outside, host(`${home}/.ssh`));
      await assertRefused(/\.ssh: it is a symlink/);
    });

    it('authorized_keys a symlink to <root>/etc/shadow', async () => {
      await sshDir();
      await symlink('../../../etc/shadow', host(`${home}/.ssh/authorized_keys`));
      await assertRefused(/authorized_keys: it is a symlink/);
      const shadow = await readFile(host('/etc/shadow'), 'utf8');
      assert.match(shadow, /^root:/);
    });

    it('authorized_keys a hard link to <root>/etc/shadow', async () => {
      await sshDir();
      await link(host('/etc/shadow'), host(`${home}/.ssh/authorized_keys`));
      await assertRefused(/authorized_keys: it has 2 hard links/);
    });

    it('authorized_keys owned by another user', async () => {
      await sshDir();
      await writeFile(host(`${home}/.ssh/authorized_keys`), `${pubs[2]}\n`);
      await chown(host(`${home}/.ssh/authorized_keys`), 1001, 1001);
      await assertRefused(/owned by uid 1001, not debian or root/);
    });

    it("authorized_keys root's and unreadable to the user (its content would be handed to the user)", async () => {
      await sshDir();
      await writeFile(host(`${home}/.ssh/authorized_keys`), 'secret\n', { mode: 0o600 });
      await assertRefused(/owned by root and not readable by debian/);
    });

    it('authorized_keys not a regular file (a FIFO, a directory)', async () => {
      await sshDir();
      await exec('mkfifo', [host(`${home}/.ssh/authorized_keys`)]);
      const listing = async (): Promise<string> => (await exec('ls', ['-lanR', host(home)])).stdout;
      const before = await listing();
      await assertRefused(/not a regular file/, cfg, false);
      assert.equal(await listing(), before);
      assert.ok((await lstat(host(`${home}/.ssh/authorized_keys`))).isFIFO());
      await rm(host(`${home}/.ssh/authorized_keys`));
      await mkdir(host(`${home}/.ssh/authorized_keys`));
      await assertRefused(/not a regular file/);
    });

    it('~/.ssh owned by another user, or group-writable', async () => {
      await sshDir(1001);
      await assertRefused(/\.ssh: owned by uid 1001, not debian/);
      await chown(host(`${home}/.ssh`), 1000, 1000);
      await chmod(host(`${home}/.ssh`), 0o770);
      await assertRefused(/\.ssh: group\/world-writable \(mode 0770/);
    });

    it('~/.ssh a regular file', async () => {
      await writeFile(host(`${home}/.ssh`), 'x');
      await chown(host(`${home}/.ssh`), 1000, 1000);
      await assertRefused(/\.ssh: it is not a directory/);
    });

    it('a world-writable home, a group-writable /home, a home owned by someone else', async () => {
      await chmod(host(home), 0o777);
      await assertRefused(/refusing \/home\/debian: group\/world-writable \(mode 0777/);
      await chmod(host(home), 0o755);
      await chmod(host('/home'), 0o775);
      await assertRefused(/refusing \/home: group\/world-writable/);
      await chmod(host('/home'), 0o755);
      await chown(host(home), 1001, 1001);
      await assertRefused(/refusing \/home\/debian: owned by uid 1001/);
    });

    it('the home itself a symlink (inside the tree, or outside it)', async () => {
      await rename(host(home), host('/home/real-debian'));
      await symlink('real-debian', host(home));
      await assertRefused(/refusing \/home\/debian: it is a symlink/);
      await rm(host(home));
      await chown(outside, 1000, 1000);
      await symlink(outside, host(home));
      await assertRefused(/refusing \/home\/debian: it is a symlink/);
      await rm(host(home));
      await symlink(outside, host('/home-link'));
      await rename(host('/home'), host('/home-real'));
      await symlink('home-link', host('/home'));
      await assertRefused(/refusing \/home: it is a symlink/);
    });

    it('a missing home is not created', async () => {
      await rm(host(home), { recursive: true });
      await assertRefused(/home \/home\/debian does not exist/);
    });
  });
});
