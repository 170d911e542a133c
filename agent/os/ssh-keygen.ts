import { run } from './exec.js';
import { statTree } from './files.js';
import type { RootTree } from './root.js';
import { runSandboxed } from './sandbox.js';

export type HostKeyType = 'ed25519' | 'ecdsa' | 'rsa';

/**
 * Generates a key pair with the distribution's ssh-keygen at hostPath (and hostPath.pub).
 * The caller picks a temporary path beside the final one and renames it into place.
 */
export async function generateKeyPair(type: HostKeyType, bits: number | undefined, hostPath: string, comment: string, onPid?: (pid: number | undefined) => void): Promise<void> {
  const args = ['-q', '-t', type, '-N', '', '-C', comment, '-f', hostPath];
  if (bits !== undefined && type !== 'ed25519') args.splice(3, 0, '-b', String(bits));
  await run('ssh-keygen', args, { timeoutMs: 120_000, ...(onPid ? { onSpawn: (child) => onPid(child.pid) } : {}) });
}

/** ssh-keygen -l's answer: the one fingerprint it read, or null when it read none (or several). */
function oneFingerprint(code: number, stdout: string): string | null {
  if (code !== 0) return null;
  const lines = stdout.trim().split('\n');
  if (lines.length !== 1) return null;
  return /^\d+ (SHA256:[A-Za-z0-9+/]+) /.exec(lines[0] as string)?.[1] ?? null;
}

const IMAGE_KEYGEN = '/usr/bin/ssh-keygen';

/**
 * The fingerprint ("SHA256:...") ssh-keygen -l reads from one authorized_keys line (options and
 * all), or null when ssh-keygen cannot read a key from it. It is the ssh-keygen of the OpenSSH
 * that will read the line: on a live system the system's own; for a --root tree the image's own
 * (its version's key rules), run in the sandbox (os/sandbox.ts) with the line copied in; a tree
 * without ssh-keygen is judged by this machine's, on the line's text only. sshd reads keys with
 * the same OpenSSH code (sshkey_read), so this catches what imprint's own parser would miss (an
 * ECDSA point off its curve, an RSA modulus sshd refuses).
 */
export async function keygenFingerprint(line: string, root?: RootTree): Promise<string | null> {
  const args = ['-l', '-E', 'sha256', '-f'];
  const image = root && !root.isLive ? await statTree(root, IMAGE_KEYGEN) : null;
  if (root && image?.isFile()) {
    const spec = { root: root.dir, files: [{ at: '/tmp/launch-key.pub', data: `${line}\n`, mode: 0o644 }], okCodes: [1, 255], timeoutMs: 30_000 };
    const r = await runSandboxed(spec, IMAGE_KEYGEN, [...args, '/tmp/launch-key.pub']);
    return oneFingerprint(r.code, r.stdout);
  }
  const r = await run('ssh-keygen', [...args, '-'], { input: `${line}\n`, okCodes: [1, 255], timeoutMs: 30_000 });
  return oneFingerprint(r.code, r.stdout);
}
