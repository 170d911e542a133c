import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { sshAuthorizedKeys } from '../../agent/audit/checks/authorized-keys.js';
import { AuditContext } from '../../agent/audit/context.js';
import { RootTree } from '../../agent/os/root.js';
import { parsePublicKey } from '../../agent/parsers/ssh-public-key.js';

// `imprint audit` lists the keys that log in as sshd reads authorized_keys (the reader boot
// uses too; the loopback oracle in key-lines-oracle.test.ts proves that reader against the
// real sshd). Here: the check itself, on a scratch tree, lists exactly the lines that are a way
// in. Keys made with the real ssh-keygen.

const run = promisify(execFile);

function withInner(pubLine: string, inner: string): string {
  const blob = Buffer.from(pubLine.split(' ')[1] ?? '', 'base64');
  const n = blob.readUInt32BE(0);
  const len = Buffer.alloc(4);
  len.writeUInt32BE(inner.length);
  return Buffer.concat([len, Buffer.from(inner, 'latin1'), blob.subarray(4 + n)]).toString('base64');
}

describe('audit ssh.authorized-keys reads lines as sshd does', function () {
  this.timeout(120_000);
  let dir = '';

  before(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'imprint-audit-keys-'));
  });
  after(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('lists the keys sshd honours (rsa-sha2-*, webauthn, short inner names, CA lines) and not the lines it ignores', async () => {
    const keys = path.join(dir, 'keys');
    await mkdir(keys);
    const gen = async (name: string, args: string[]): Promise<string> => {
      await run('ssh-keygen', ['-q', '-N', '', '-C', name, '-f', path.join(keys, name), ...args]);
      return (await readFile(path.join(keys, `${name}.pub`), 'utf8')).trim();
    };
    const [ed, rsa, ec, ca, other, exp, pri, dup] = await Promise.all([
      gen('ed', ['-t', 'ed25519']), gen('rsa', ['-t', 'rsa', '-b', '2048']), gen('ec', ['-t', 'ecdsa', '-b', '256']), gen('ca', ['-t', 'ed25519']),
      gen('other', ['-t', 'ed25519']), gen('exp', ['-t', 'ed25519']), gen('pri', ['-t', 'ed25519']), gen('dup', ['-t', 'ed25519']),
    ]) as string[];
    await run('ssh-keygen', ['-q', '-s', path.join(keys, 'ca'), '-I', 'c', '-n', 'root', path.join(keys, 'other.pub')]);
    const cert = (await readFile(path.join(keys, 'other-cert.pub'), 'utf8')).trim();
    const ecBlob = Buffer.from((ec as string).split(' ')[1] ?? '', 'base64');
    const str = (s: string | Buffer): Buffer => {
      const b = typeof s === 'string' ? Buffer.from(s) : s;
      const l = Buffer.alloc(4);
      l.writeUInt32BE(b.length);
      return Buffer.concat([l, b]);
    };
    const skEc = Buffer.concat([str('sk-ecdsa-sha2-nistp256@openssh.com'), ecBlob.subarray(4 + 19), str('ssh:')]).toString('base64');
    const lines = [
      `${ed}`, // 1: listed
      `rsa-sha2-512 ${withInner(rsa as string, 'rsa-sha2-512')} rsa-named`, // 2: listed (sshd reads the name)
      `${cert}`, // 3: a certificate alone: never matches
      `command="a",command="b" ${dup}`, // 4: bad key options
      `expiry-time="20200101" ${exp}`, // 5: expired
      `principals="root" ${pri}`, // 6: principals on a plain key
      `webauthn-sk-ecdsa-sha2-nistp256@openssh.com ${skEc} webauthn`, // 7: listed
      `cert-authority ${ca}`, // 8: listed, as a CA
      `ssh-ed25519 ${withInner(ed as string, 'ED25519')} short-inner`, // 9: listed (same key as line 1)
    ];
    const tree = path.join(dir, 'tree');
    await mkdir(path.join(tree, 'etc'), { recursive: true });
    await mkdir(path.join(tree, 'root/.ssh'), { recursive: true, mode: 0o700 });
    await writeFile(path.join(tree, 'etc/passwd'), 'root:x:0:0:root:/root:/bin/bash\n');
    await writeFile(path.join(tree, 'root/.ssh/authorized_keys'), `${lines.join('\n')}\n`, { mode: 0o600 });
    const findings = await sshAuthorizedKeys.run(new AuditContext(new RootTree(tree)));
    assert.deepEqual(findings.map((f) => f.evidence.line), [1, 2, 7, 8, 9], findings.map((f) => f.message).join('\n'));
    const fp = (l: string): string => parsePublicKey(l).fingerprint;
    assert.deepEqual(findings.map((f) => f.facts?.fingerprint), [fp(ed as string), fp(rsa as string), fp(`sk-ecdsa-sha2-nistp256@openssh.com ${skEc}`), fp(ca as string), fp(ed as string)]);
    assert.match(findings[3]?.message ?? '', /any key signed by the CA/);
  });
});
