import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { editAccountFiles, type AccountTable } from '../../agent/os/account-db.js';
import { RootTree } from '../../agent/os/root.js';
import { hashPassword, sha512Crypt } from '../../agent/os/sha512-crypt.js';

// imprint's own edits of a tree's account files, under shadow-utils' lock protocol, and its
// SHA-512 crypt, checked against the spec's vector and the system's crypt (host perl).

describe('SHA-512 crypt', function () {
  it('gives the specification\'s test vector', () => {
    assert.equal(sha512Crypt('Hello world!', 'saltstring'), '$6$saltstring$svn8UoSVapNtMuq1ukKS4tPQd8iKwSMHWjl/O817G3uBnIFNjnQJuesI68u4OTLiBFdcbYEdFCoEOfaS35inz1');
  });

  it('agrees with the system\'s crypt(3) on long, binary and UTF-8 passwords', async () => {
    const cases: [Buffer, string][] = [[Buffer.alloc(200, 'x'), 'abc'], [Buffer.from([1, 2, 250, 255, 64]), 'ZZ./09az'], [Buffer.from('pässwörd', 'utf8'), '0123456789abcdef']];
    for (const [password, salt] of cases) {
      const child = execFile('perl', ['-e', 'binmode STDIN; local $/; my $p = <STDIN>; print crypt($p, $ARGV[0])', `$6$${salt}`]);
      const out = await new Promise<string>((resolve) => {
        let text = '';
        child.stdout?.on('data', (d: Buffer) => { text += d.toString(); });
        child.on('close', () => resolve(text));
        child.stdin?.end(password);
      });
      assert.equal(sha512Crypt(password, salt), out);
    }
  });

  it('makes a fresh 16-character salt each time', () => {
    const a = hashPassword('same');
    const b = hashPassword('same');
    assert.match(a, /^\$6\$[./0-9A-Za-z]{16}\$[./0-9A-Za-z]{86}$/);
    assert.notEqual(a, b);
  });
});

describe('editing a tree\'s account files', function () {
  let dir: string;
  let root: RootTree;

  beforeEach(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'imprint-accounts-'));
    await mkdir(path.join(dir, 'etc'));
    await writeFile(path.join(dir, 'etc/passwd'), Buffer.from('root:x:0:0:r\xe9:/root:/bin/bash\n+::::::\nno-final-newline:x:1:1::/:/bin/sh', 'latin1'), { mode: 0o644 });
    await writeFile(path.join(dir, 'etc/shadow'), 'root:$6$a$b:19000:0:99999:7:::\n', { mode: 0o640 });
    root = new RootTree(dir);
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  const setRoot = (tables: Map<string, AccountTable>): void => {
    const shadow = tables.get('/etc/shadow') as AccountTable;
    shadow.setField(shadow.indexesOf('root')[0] as number, 1, '!');
    const passwd = tables.get('/etc/passwd') as AccountTable;
    passwd.add('new:x:5:5:Zoë:/home/new:/bin/sh');
  };

  it('keeps every other byte, adds entries before the NIS lines, keeps owner and mode, and leaves no lock', async () => {
    await editAccountFiles(root, ['/etc/passwd', '/etc/shadow'], setRoot);
    assert.equal(await readFile(path.join(dir, 'etc/shadow'), 'utf8'), 'root:!:19000:0:99999:7:::\n');
    assert.deepEqual(await readFile(path.join(dir, 'etc/passwd')), Buffer.concat([Buffer.from('root:x:0:0:r\xe9:/root:/bin/bash\n', 'latin1'), Buffer.from('new:x:5:5:Zoë:/home/new:/bin/sh\n', 'utf8'), Buffer.from('+::::::\nno-final-newline:x:1:1::/:/bin/sh', 'latin1')]));
    assert.equal((await stat(path.join(dir, 'etc/shadow'))).mode & 0o777, 0o640);
    await assert.rejects(stat(path.join(dir, 'etc/passwd.lock')));
    await assert.rejects(stat(path.join(dir, 'etc/shadow.lock')));
  });

  it('takes over a lock whose holder is gone (a pid that does not exist), as shadow-utils does', async () => {
    const dead = await new Promise<number>((resolve) => {
      const child = execFile('true');
      child.on('exit', () => resolve(child.pid as number));
    });
    await writeFile(path.join(dir, 'etc/shadow.lock'), `${dead}\0`);
    await editAccountFiles(root, ['/etc/passwd', '/etc/shadow'], setRoot);
    assert.match(await readFile(path.join(dir, 'etc/shadow'), 'utf8'), /^root:!:/);
  });

  it('refuses a lock file without a pid and changes nothing (shadow-utils refuses it too)', async () => {
    await writeFile(path.join(dir, 'etc/shadow.lock'), '');
    await assert.rejects(editAccountFiles(root, ['/etc/passwd', '/etc/shadow'], setRoot), /cannot lock \/etc\/shadow: \/etc\/shadow\.lock exists without a valid pid/);
    assert.match(await readFile(path.join(dir, 'etc/shadow'), 'utf8'), /^root:\$6\$a\$b:/);
    await assert.rejects(stat(path.join(dir, 'etc/passwd.lock')), 'the lock taken before it is released');
  });

  it('writes nothing when the edit throws', async () => {
    await assert.rejects(editAccountFiles(root, ['/etc/passwd', '/etc/shadow'], (tables) => {
      setRoot(tables);
      throw new Error('changed my mind');
    }), /changed my mind/);
    assert.match(await readFile(path.join(dir, 'etc/shadow'), 'utf8'), /^root:\$6\$a\$b:/);
  });
});
