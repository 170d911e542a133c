import { createHash } from 'node:crypto';
import { ParseError } from './errors.js';

// OpenSSH public keys ("type base64 comment"): parsed from the wire-format blob, not trusted
// from the text, so the reported size and fingerprint are the key's own.

export interface PublicKey {
  type: string;
  blob: Buffer;
  comment: string;
  bits: number;
  /** "SHA256:..." as ssh-keygen -l prints it. */
  fingerprint: string;
  /** ED25519, ECDSA, RSA... as ssh-keygen -l prints it in parentheses. */
  label: string;
}

function readString(blob: Buffer, offset: number): { value: Buffer; next: number } | null {
  if (offset + 4 > blob.length) return null;
  const len = blob.readUInt32BE(offset);
  if (offset + 4 + len > blob.length) return null;
  return { value: blob.subarray(offset + 4, offset + 4 + len), next: offset + 4 + len };
}

function mpintBits(value: Buffer): number {
  let i = 0;
  while (i < value.length && value[i] === 0) i += 1;
  if (i === value.length) return 0;
  return (value.length - i - 1) * 8 + (32 - Math.clz32(value[i] as number));
}

const LABELS: Record<string, string> = { 'ssh-ed25519': 'ED25519', 'ssh-rsa': 'RSA', 'ssh-dss': 'DSA', 'sk-ssh-ed25519@openssh.com': 'ED25519-SK', 'sk-ecdsa-sha2-nistp256@openssh.com': 'ECDSA-SK' };

export function fingerprintOf(blob: Buffer): string {
  return `SHA256:${createHash('sha256').update(blob).digest('base64').replace(/=+$/, '')}`;
}

export function parsePublicKey(text: string, file = 'public key'): PublicKey {
  const line = text.trim();
  const [type = '', b64 = '', ...rest] = line.split(/[ \t]+/);
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(b64)) throw new ParseError(file, 1, 'key data is not base64');
  const blob = Buffer.from(b64, 'base64');
  const inner = readString(blob, 0);
  if (!inner || inner.value.toString('latin1') !== type) throw new ParseError(file, 1, `key data does not hold a ${type} key`);
  let bits = 0;
  if (type === 'ssh-ed25519' || type === 'sk-ssh-ed25519@openssh.com') bits = 256;
  else if (type.startsWith('ecdsa-sha2-nistp') || type.startsWith('sk-ecdsa-sha2-nistp')) bits = Number.parseInt(/nistp(\d+)/.exec(type)?.[1] ?? '0', 10);
  else if (type === 'ssh-rsa') {
    const e = readString(blob, inner.next);
    const n = e && readString(blob, e.next);
    if (!n) throw new ParseError(file, 1, 'truncated RSA key');
    bits = mpintBits(n.value);
  }
  const label = LABELS[type] ?? (type.startsWith('ecdsa-') ? 'ECDSA' : type.toUpperCase());
  return { type, blob, comment: rest.join(' '), bits, fingerprint: fingerprintOf(blob), label };
}

/** The line ssh-keygen -l prints, and cloud-init puts in its fingerprint block. */
export function fingerprintLine(key: PublicKey): string {
  return `${key.bits} ${key.fingerprint} ${key.comment || 'no comment'} (${key.label})`;
}
