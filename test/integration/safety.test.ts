import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { link, mkdir, mkdtemp, readdir, readFile, rename, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { parseAccountFile } from '../../agent/parsers/accounts.js';
import { imprint } from '../support/cli.js';
import { effectiveSshd, hostKeyPairs, setting, shadowStates } from '../support/checks.js';
import { DEMO_USER, FAST_KEYS_CONFIG, removeScratch, scratchImage, treeDigest, writeConfig } from '../support/tree.js';

const exec = promisify(execFile);

describe('crash safety: killed at every durable step, then run again', function () {
  this.timeout(600_000);
  let template: string;
  const copies: string[] = [];

  before(async () => {
    template = await scratchImage();
    await writeConfig(template, FAST_KEYS_CONFIG);
  });
  after(async () => {
    for (const c of copies) await rm(c, { recursive: true, force: true });
    await removeScratch(template);
  });

  async function copyOfTemplate(): Promise<string> {
    const dir = await mkdtemp(path.join(tmpdir(), 'imprint-crash-'));
    copies.push(dir);
    await exec('cp', ['-a', `${template}/.`, dir]);
    return dir;
  }

  it('ends with complete key pairs, a parseable shadow with every target locked, and an sshd config sshd accepts', async () => {
    let killedAt = 0;
    for (let n = 1; n < 200; n += 1) {
      const root = await copyOfTemplate();
      const crashed = await imprint(['boot', '--root', root], { IMPRINT_TEST_CRASH_AT: String(n) });
      if (crashed.signal !== 'SIGKILL') {
        assert.equal(crashed.code, 0, `run with crash point ${n} beyond the last: ${crashed.stderr}`);
        break;
      }
      killedAt = n;
      // Right after the kill: the account database is whole (shadow-utils replace it atomically).
      parseAccountFile(await readFile(path.join(root, 'etc/shadow'), 'utf8'), 'shadow', 'etc/shadow');
      const rerun = await imprint(['boot', '--root', root]);
      assert.equal(rerun.code, 0, `rerun after a kill at step ${n}: ${rerun.stderr}`);
      const pairs = await hostKeyPairs(root);
      assert.deepEqual(pairs.map((k) => k.name), ['ssh_host_ecdsa_key', 'ssh_host_ed25519_key'], `step ${n}`);
      assert.ok(pairs.every((k) => k.mode === 0o600), `step ${n}: key modes`);
      const leftovers = (await readdir(path.join(root, 'etc/ssh'))).filter((f) => f.startsWith('.imprint-new-') || f.startsWith('.imprint-check-'));
      assert.deepEqual(leftovers, [], `step ${n}: leftovers`);
      const states = await shadowStates(root);
      assert.equal(states.get('root'), 'locked', `step ${n}: root`);
      assert.equal(states.get(DEMO_USER), 'locked', `step ${n}: ${DEMO_USER}`);
      assert.equal(setting(await effectiveSshd(root), 'passwordauthentication'), 'no', `step ${n}: sshd`);
      await rm(root, { recursive: true, force: true });
    }
    assert.ok(killedAt >= 20, `only ${killedAt} crash points were reached; the hook is not wired through the writes`);
  });
});

describe('symlink and hard-link safety', function () {
  let root: string;
  let outside: string;

  beforeEach(async () => {
    root = await scratchImage();
    await writeConfig(root, FAST_KEYS_CONFIG);
    outside = await mkdtemp(path.join(tmpdir(), 'imprint-outside-'));
  });
  afterEach(async () => {
    await removeScratch(root);
    await rm(outside, { recursive: true, force: true });
  });

  /** Moves a path of the tree outside it and leaves a symlink in its place. */
  async function redirect(inTree: string): Promise<void> {
    const target = path.join(outside, path.basename(inTree));
    await rename(path.join(root, inTree), target);
    await symlink(target, path.join(root, inTree));
  }

  const cases: [string, string, RegExp][] = [
    ['etc/ssh', 'host-keys', /refusing \/etc\/ssh: it is a symlink/],
    ['etc/ssh/sshd_config.d', 'sshd-config', /refusing \/etc\/ssh\/sshd_config\.d: it is a symlink/],
    ['etc/ssh/sshd_config', 'sshd-config', /refusing \/etc\/ssh\/sshd_config: it is a symlink/],
    ['etc/shadow', 'passwords', /refusing \/etc\/shadow: it is a symlink/],
    ['etc/sudoers.d', 'default-user', /refusing \/etc\/sudoers\.d: it is a symlink/],
  ];
  for (const [inTree, task, message] of cases) {
    it(`refuses a tree whose ${inTree} is a symlink out of it, and changes nothing outside`, async () => {
      if (task === 'default-user') await writeConfig(root, `${FAST_KEYS_CONFIG}default_user:\n  name: ${DEMO_USER}\n`);
      await redirect(inTree);
      const before = await treeDigest(outside);
      const run = await imprint(['boot', '--root', root, '--json']);
      assert.equal(run.code, 1, run.stderr);
      assert.match(run.stderr, new RegExp(`${task}: error: .*${message.source}`));
      const report = JSON.parse(run.stdout) as { tasks: { task: string; status: string }[] };
      assert.equal(report.tasks.find((t) => t.task === task)?.status, 'failed');
      assert.equal(await treeDigest(outside), before, 'something outside the tree changed');
    });
  }

  it('refuses a state directory that is a symlink out of the tree', async () => {
    await mkdir(path.join(outside, 'state'));
    await mkdir(path.join(root, 'var/lib'), { recursive: true });
    await symlink(path.join(outside, 'state'), path.join(root, 'var/lib/imprint'));
    const run = await imprint(['boot', '--root', root]);
    assert.equal(run.code, 1);
    assert.match(run.stdout, /refusing \/var\/lib\/imprint: it is a symlink/);
    assert.deepEqual(await readdir(path.join(outside, 'state')), []);
  });

  it('removes a host key that is a symlink without touching its target, and one with another hard link without overwriting it', async () => {
    const secret = path.join(outside, 'precious');
    await writeFile(secret, 'not a key\n');
    await rm(path.join(root, 'etc/ssh/ssh_host_ed25519_key'));
    await symlink(secret, path.join(root, 'etc/ssh/ssh_host_ed25519_key'));
    const shared = path.join(outside, 'shared');
    await writeFile(shared, 'shared content\n');
    await rm(path.join(root, 'etc/ssh/ssh_host_ecdsa_key'));
    await link(shared, path.join(root, 'etc/ssh/ssh_host_ecdsa_key'));
    const run = await imprint(['boot', '--root', root]);
    assert.equal(run.code, 0, run.stderr);
    assert.equal(await readFile(secret, 'utf8'), 'not a key\n');
    assert.equal(await readFile(shared, 'utf8'), 'shared content\n');
    assert.deepEqual((await hostKeyPairs(root)).map((k) => k.name), ['ssh_host_ecdsa_key', 'ssh_host_ed25519_key']);
  });
});
