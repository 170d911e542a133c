import { execFile } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { parseAccountFile, passwordState } from '../../agent/parsers/accounts.js';
import { parseEffectiveConfig } from '../../agent/parsers/sshd-config.js';
import { parsePublicKey } from '../../agent/parsers/ssh-public-key.js';

// Independent checks of an image tree, done with the real tools rather than imprint's own code.

const exec = promisify(execFile);

/** `sshd -T` on the tree: the image's own sshd in a chroot if it has one, else the host's in bwrap. */
export async function effectiveSshd(root: string): Promise<Map<string, string[]>> {
  const own = await stat(path.join(root, 'usr/sbin/sshd')).then(() => true, () => false);
  const { stdout } = own
    ? await exec('bwrap', ['--bind', root, '/', '--dev', '/dev', '--proc', '/proc', '--tmpfs', '/run', '--dir', '/run/sshd', '--', '/usr/sbin/sshd', '-T', '-f', '/etc/ssh/sshd_config'])
    : await exec('bwrap', ['--dev-bind', '/', '/', '--bind', path.join(root, 'etc/ssh'), '/etc/ssh', '--tmpfs', '/run', '--dir', '/run/sshd', '--', '/usr/sbin/sshd', '-T', '-f', '/etc/ssh/sshd_config']);
  return parseEffectiveConfig(stdout);
}

export function setting(effective: Map<string, string[]>, key: string): string | undefined {
  return effective.get(key)?.[0];
}

export interface HostKeyFile {
  name: string;
  mode: number;
  uid: number;
  gid: number;
  pubMode: number;
  fingerprint: string;
}

/** Every private host key with its public half; throws if a pair is incomplete or mismatched. */
export async function hostKeyPairs(root: string): Promise<HostKeyFile[]> {
  const dir = path.join(root, 'etc/ssh');
  const names = (await readdir(dir)).filter((n) => /^ssh_host_.*_key$/.test(n)).sort();
  const pairs: HostKeyFile[] = [];
  for (const name of names) {
    const priv = await stat(path.join(dir, name));
    const pub = await stat(path.join(dir, `${name}.pub`));
    const pubText = await readFile(path.join(dir, `${name}.pub`), 'utf8');
    // ssh-keygen -y derives the public key from the private one: a torn pair cannot pass. It
    // refuses group-readable keys (0640 root:ssh_keys), so it reads a 0600 copy.
    const scratch = await mkdtemp(path.join(tmpdir(), 'imprint-keycheck-'));
    const copy = path.join(scratch, 'key');
    await writeFile(copy, await readFile(path.join(dir, name)), { mode: 0o600 });
    const { stdout } = await exec('ssh-keygen', ['-y', '-f', copy]).finally(() => rm(scratch, { recursive: true, force: true }));
    const derived = parsePublicKey(stdout);
    const stored = parsePublicKey(pubText);
    if (derived.fingerprint !== stored.fingerprint) throw new Error(`${name}: .pub does not match the private key`);
    pairs.push({ name, mode: priv.mode & 0o7777, uid: priv.uid, gid: priv.gid, pubMode: pub.mode & 0o7777, fingerprint: stored.fingerprint });
  }
  return pairs;
}

export async function shadowStates(root: string): Promise<Map<string, string>> {
  const parsed = parseAccountFile(await readFile(path.join(root, 'etc/shadow'), 'utf8'), 'shadow', 'etc/shadow');
  return new Map(parsed.lines.map((l) => [l.fields[0] as string, passwordState(l.fields[1] as string)]));
}

export async function shadowLines(root: string): Promise<Map<string, string>> {
  const text = await readFile(path.join(root, 'etc/shadow'), 'utf8');
  return new Map(text.split('\n').filter(Boolean).map((l) => [l.split(':')[0] as string, l]));
}
