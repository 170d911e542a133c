import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { RootTree } from '../../agent/os/root.js';
import { sandboxSeccompFilter } from '../../agent/os/seccomp.js';
import { expandKeysFile } from '../../agent/sshd/authorized-keys-file.js';
import { expandIncludePattern, loadConfigSet } from '../../agent/sshd/config-set.js';
import { connectionSpecs, matchBlocks, relevantUsers } from '../../agent/sshd/contexts.js';
import { stageCandidates } from '../../agent/sshd/staging.js';

const USER = { name: 'ann', uid: 1001, gid: 1001, home: '/home/ann' };

describe('sshd as the judge: the pure parts', () => {
  let dir = '';
  let root: RootTree;
  beforeEach(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'imprint-judge-unit-'));
    root = new RootTree(dir);
    await mkdir(path.join(dir, 'etc/ssh/sshd_config.d'), { recursive: true });
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('expands AuthorizedKeysFile tokens as sshd does, relative paths from home', () => {
    assert.equal(expandKeysFile('.ssh/authorized_keys2', USER), '/home/ann/.ssh/authorized_keys2');
    assert.equal(expandKeysFile('%h/.keys', USER), '/home/ann/.keys');
    assert.equal(expandKeysFile('/etc/ssh/authorized_keys/%u', USER), '/etc/ssh/authorized_keys/ann');
    assert.equal(expandKeysFile('/var/keys/%U/100%%', USER), '/var/keys/1001/100%');
    assert.equal(expandKeysFile('/keys/%x', USER), null, 'a token sshd would not expand here');
  });

  it('builds one -C context per user and Match block, with each block\'s criteria satisfied', async () => {
    await writeFile(path.join(dir, 'etc/ssh/sshd_config'), 'Port 22\nMatch Address 10.0.0.0/8,!10.9.9.9 LocalPort 2222\n  PasswordAuthentication yes\nMatch Host *.example.com User ann\n  PermitRootLogin yes\n');
    const blocks = matchBlocks(await loadConfigSet(root));
    assert.deepEqual(blocks.map((b) => [b.line, [...b.criteria.keys()]]), [[2, ['address', 'localport']], [4, ['host', 'user']]]);
    const accounts = [
      { name: 'root', password: 'x', uid: 0, gid: 0, gecos: '', home: '/root', shell: '/bin/bash' },
      { name: 'daemon', password: 'x', uid: 1, gid: 1, gecos: '', home: '/', shell: '/usr/sbin/nologin' },
      { name: 'ann', password: 'x', uid: 1001, gid: 1001, gecos: '', home: '/home/ann', shell: '/bin/sh' },
    ];
    const users = relevantUsers(blocks, accounts);
    assert.deepEqual(users, ['root', 'ann'], 'no account without a login shell');
    const specs = connectionSpecs(blocks, users);
    assert.equal(specs.length, 6);
    assert.ok(specs.some((s) => s.user === 'ann' && s.addr === '10.0.0.0' && s.lport === 2222));
    assert.ok(specs.some((s) => s.user === 'root' && s.host === 'x.example.com'));
  });

  it('expands an Include with a wildcard in a directory component, sorted like glob(3)', async () => {
    for (const d of ['b', 'a', '.hidden']) {
      await mkdir(path.join(dir, `etc/ssh/inc/${d}`), { recursive: true });
      await writeFile(path.join(dir, `etc/ssh/inc/${d}/x.conf`), 'UseDNS no\n');
    }
    assert.deepEqual(await expandIncludePattern(root, '/etc/ssh/inc/*/x.conf', []), ['/etc/ssh/inc/a/x.conf', '/etc/ssh/inc/b/x.conf']);
  });

  it('stages a candidate two Includes deep: every file on the chain names the staged copy, and messages map back', async () => {
    await writeFile(path.join(dir, 'etc/ssh/sshd_config'), 'Include sshd_config.d/*.conf\r\nPort 22\r\n');
    await writeFile(path.join(dir, 'etc/ssh/sshd_config.d/10-a.conf'), 'Include /etc/ssh/deep.conf\n');
    await writeFile(path.join(dir, 'etc/ssh/deep.conf'), 'Match all\nPasswordAuthentication yes\n');
    const candidates = new Map([['/etc/ssh/deep.conf', 'Match all\nPasswordAuthentication no\n']]);
    const staged = stageCandidates(await loadConfigSet(root, candidates), candidates, '/run/stage');
    assert.equal(staged.config, '/run/stage/etc/ssh/sshd_config');
    assert.deepEqual([...staged.files.keys()].sort(), ['/run/stage/etc/ssh/deep.conf', '/run/stage/etc/ssh/sshd_config', '/run/stage/etc/ssh/sshd_config.d/10-a.conf']);
    assert.equal(staged.files.get('/run/stage/etc/ssh/sshd_config'), 'Include /run/stage/etc/ssh/sshd_config.d/10-a.conf\r\nPort 22\r\n', 'CRLF kept');
    assert.equal(staged.files.get('/run/stage/etc/ssh/sshd_config.d/10-a.conf'), 'Include /run/stage/etc/ssh/deep.conf\n');
    assert.equal(staged.unstage('/run/stage/etc/ssh/deep.conf line 2: Bad option'), '/etc/ssh/deep.conf line 2: Bad option');
  });

  it('compiles a seccomp filter for this architecture (8-byte instructions ending allow / EPERM / kill)', () => {
    const filter = sandboxSeccompFilter('x64') as Buffer;
    assert.equal(filter.length % 8, 0);
    const ret = (i: number): number => filter.readUInt32LE(filter.length - 8 * i + 4);
    assert.deepEqual([ret(3), ret(2), ret(1)], [0x7fff0000, 0x00050001, 0x80000000]);
    assert.equal(sandboxSeccompFilter('mips'), null);
  });
});
