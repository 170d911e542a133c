import assert from 'node:assert/strict';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { imprint } from '../support/cli.js';
import { removeScratch, scratchImage } from '../support/tree.js';

// `imprint known-hosts` end to end with real OpenSSH: imprint boots a scratch tree (its console
// output captured in a scratch file), known-hosts turns that console text into known_hosts
// lines, and `ssh -o StrictHostKeyChecking=yes` accepts them against an sshd on 127.0.0.1
// serving the host keys imprint generated. That sshd has a scratch config (host keys in the
// tree, AuthorizedKeysFile in scratch, PidFile none, UsePAM no) and touches none of this
// machine's own sshd config or keys.

const exec = promisify(execFile);

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** Starts sshd -D -e and resolves once it says it listens (its own log line, not a timer). */
function startSshd(configFile: string): Promise<ChildProcess> {
  return new Promise((resolve, reject) => {
    const child = spawn('/usr/sbin/sshd', ['-D', '-e', '-f', configFile], { stdio: ['ignore', 'ignore', 'pipe'] });
    let log = '';
    child.stderr?.on('data', (d: Buffer) => {
      log += d.toString();
      if (log.includes('Server listening on')) resolve(child);
    });
    child.on('exit', (code) => reject(new Error(`sshd exited (${code}): ${log}`)));
  });
}

async function bootConsole(root: string, consoleFile: string): Promise<string> {
  await writeFile(consoleFile, '');
  const run = await imprint(['boot', '--root', root], { JOURNAL_STREAM: '8:1', IMPRINT_TEST_CONSOLE: consoleFile });
  assert.equal(run.code, 0, run.stderr);
  return readFile(consoleFile, 'utf8');
}

describe('imprint known-hosts against a real sshd', function () {
  let root: string;
  let other: string;
  let scratch: string;
  let sshd: ChildProcess | null = null;

  before(async () => {
    root = await scratchImage();
    other = await scratchImage();
    scratch = await mkdtemp(path.join(tmpdir(), 'imprint-known-hosts-'));
  });
  after(async () => {
    if (sshd?.pid !== undefined && sshd.exitCode === null) {
      const exited = new Promise((resolve) => sshd?.once('exit', resolve));
      sshd.kill('SIGTERM');
      await exited;
    }
    await removeScratch(root);
    await removeScratch(other);
    await rm(scratch, { recursive: true, force: true });
  });

  it('makes known_hosts lines that ssh -o StrictHostKeyChecking=yes accepts, and that refuse another instance', async () => {
    // A cloud console prefixes lines ("ec2: "): known-hosts reads through that.
    const consoleText = (await bootConsole(root, path.join(scratch, 'console'))).split('\n').map((l) => `ec2: ${l}`).join('\n');
    await writeFile(path.join(scratch, 'console-output.txt'), consoleText);
    const port = await freePort();
    const made = await imprint(['known-hosts', path.join(scratch, 'console-output.txt'), '--host', `127.0.0.1:${port}`]);
    assert.equal(made.code, 0, made.stderr);
    const lines = made.stdout.trimEnd().split('\n');
    assert.deepEqual(lines.map((l) => l.split(' ')[1]).sort(), ['ecdsa-sha2-nistp256', 'ssh-ed25519', 'ssh-rsa']);
    assert.ok(lines.every((l) => l.startsWith(`[127.0.0.1]:${port} `)), made.stdout);
    const knownHosts = path.join(scratch, 'known_hosts');
    await writeFile(knownHosts, made.stdout);

    await exec('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'known-hosts-test', '-f', path.join(scratch, 'id')]);
    await writeFile(path.join(scratch, 'authorized_keys'), await readFile(path.join(scratch, 'id.pub')));
    const config = path.join(scratch, 'sshd_config');
    await writeFile(config, [
      `ListenAddress 127.0.0.1:${port}`,
      ...['ed25519', 'ecdsa', 'rsa'].map((t) => `HostKey ${path.join(root, `etc/ssh/ssh_host_${t}_key`)}`),
      'PidFile none', 'UsePAM no', `AuthorizedKeysFile ${path.join(scratch, 'authorized_keys')}`, 'StrictModes no',
      'PasswordAuthentication no', 'KbdInteractiveAuthentication no', 'PermitRootLogin prohibit-password', '',
    ].join('\n'));
    sshd = await startSshd(config);

    const ssh = (hostKeyAlgorithms: string, file: string): Promise<{ code: number; stderr: string }> => exec('ssh', [
      '-F', '/dev/null', '-i', path.join(scratch, 'id'), '-o', 'IdentitiesOnly=yes', '-o', 'BatchMode=yes',
      '-o', 'StrictHostKeyChecking=yes', '-o', `UserKnownHostsFile=${file}`, '-o', 'GlobalKnownHostsFile=/dev/null',
      '-o', `HostKeyAlgorithms=${hostKeyAlgorithms}`, '-p', String(port), 'root@127.0.0.1', 'true',
    ]).then(() => ({ code: 0, stderr: '' }), (err: { code: number; stderr: string }) => ({ code: err.code, stderr: err.stderr }));
    // Each of the three host keys, one connection each.
    for (const alg of ['ssh-ed25519', 'ecdsa-sha2-nistp256', 'rsa-sha2-512']) {
      const result = await ssh(alg, knownHosts);
      assert.equal(result.code, 0, `${alg}: ${result.stderr}`);
    }
    // The same lines made from another instance's console: ssh refuses the connection.
    await bootConsole(other, path.join(scratch, 'other-console'));
    const wrong = await imprint(['known-hosts', path.join(scratch, 'other-console'), '--host', `127.0.0.1:${port}`]);
    assert.equal(wrong.code, 0, wrong.stderr);
    await writeFile(path.join(scratch, 'wrong_known_hosts'), wrong.stdout);
    const refused = await ssh('ssh-ed25519', path.join(scratch, 'wrong_known_hosts'));
    assert.notEqual(refused.code, 0);
    assert.match(refused.stderr, /REMOTE HOST IDENTIFICATION HAS CHANGED|Host key verification failed/);
  });

  it('refuses a keys block that the fingerprints do not vouch for, and prints nothing', async () => {
    assert.equal((await imprint(['clean', '--root', root])).code, 0, 'a new instance: new keys, new blocks');
    const consoleText = await bootConsole(root, path.join(scratch, 'console2'));
    await exec('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', path.join(scratch, 'foreign')]);
    const foreign = await readFile(path.join(scratch, 'foreign.pub'), 'utf8');
    const forged = consoleText.replace(/^ssh-ed25519 \S+/m, foreign.split(' ').slice(0, 2).join(' '));
    await writeFile(path.join(scratch, 'forged'), forged);
    const run = await imprint(['known-hosts', path.join(scratch, 'forged'), '--host', 'example.test']);
    assert.equal(run.code, 1);
    assert.equal(run.stdout, '');
    assert.match(run.stderr, /ED25519 key in the keys block has fingerprint SHA256:\S+, which the fingerprint block does not list: refusing all keys/);
    const cut = consoleText.replace(/^ssh-rsa \S+\r?\n/m, '');
    await writeFile(path.join(scratch, 'cut'), cut);
    const cutRun = await imprint(['known-hosts', path.join(scratch, 'cut'), '--host', 'example.test']);
    assert.equal(cutRun.code, 1);
    assert.match(cutRun.stderr, /the keys block lacks the key of SHA256:/);
    const none = await imprint(['known-hosts', '/dev/null', '--host', 'example.test']);
    assert.equal(none.code, 1);
    assert.match(none.stderr, /no "-----BEGIN SSH HOST KEY FINGERPRINTS-----" block/);
    assert.equal((await imprint(['known-hosts', path.join(scratch, 'cut')])).code, 2, '--host is required');
  });
});
