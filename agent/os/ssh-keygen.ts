import { run } from './exec.js';

export type HostKeyType = 'ed25519' | 'ecdsa' | 'rsa';

/**
 * Generates a key pair with the distribution's ssh-keygen at hostPath (and hostPath.pub).
 * The caller picks a temporary path beside the final one and renames it into place.
 */
export async function generateKeyPair(type: HostKeyType, bits: number | undefined, hostPath: string, comment: string): Promise<void> {
  const args = ['-q', '-t', type, '-N', '', '-C', comment, '-f', hostPath];
  if (bits !== undefined && type !== 'ed25519') args.splice(3, 0, '-b', String(bits));
  await run('ssh-keygen', args, { timeoutMs: 120_000 });
}

/**
 * The fingerprint ("SHA256:...") ssh-keygen -l reads from one authorized_keys line (options and
 * all, given on stdin), or null when ssh-keygen cannot read a key from it. This is the
 * ssh-keygen of the machine imprint runs on, never the image's: on a live system that is the
 * system's own, and for a --root tree it reads the line's text only, so no code of the image
 * runs. sshd reads keys with the same OpenSSH code (sshkey_read), so this catches what
 * imprint's own parser would miss (an ECDSA point off its curve, an RSA modulus sshd refuses).
 */
export async function keygenFingerprint(line: string): Promise<string | null> {
  const r = await run('ssh-keygen', ['-l', '-E', 'sha256', '-f', '-'], { input: `${line}\n`, okCodes: [1, 255], timeoutMs: 30_000 });
  if (r.code !== 0) return null;
  const lines = r.stdout.trim().split('\n');
  if (lines.length !== 1) return null;
  return /^\d+ (SHA256:[A-Za-z0-9+/]+) /.exec(lines[0] as string)?.[1] ?? null;
}
