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
