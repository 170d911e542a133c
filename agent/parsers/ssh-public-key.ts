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

/** Reads the blob's fields after the type string; throws unless they are exactly what the type needs. */
function keyBits(type: string, blob: Buffer, offset: number, file: string): number {
  const fields: Buffer[] = [];
  const take = (n: number): void => {
    for (let i = 0; i < n; i += 1) {
      const f = readString(blob, offset);
      if (!f) throw new ParseError(file, 1, `truncated ${type} key`);
      fields.push(f.value);
      offset = f.next;
    }
  };
  let bits: number;
  const curve = /^(?:sk-)?ecdsa-sha2-nistp(256|384|521)(?:@openssh\.com)?$/.exec(type)?.[1];
  if (type === 'ssh-ed25519' || type === 'sk-ssh-ed25519@openssh.com') {
    take(type.startsWith('sk-') ? 2 : 1);
    if (fields[0]?.length !== 32) throw new ParseError(file, 1, 'ed25519 key is not 32 bytes');
    bits = 256;
  } else if (curve) {
    take(type.startsWith('sk-') ? 3 : 2);
    const size = Number.parseInt(curve, 10);
    if (fields[0]?.toString('latin1') !== `nistp${curve}`) throw new ParseError(file, 1, `ECDSA curve does not match ${type}`);
    const point = fields[1] as Buffer;
    if (point.length !== 1 + 2 * Math.ceil(size / 8) || point[0] !== 4) throw new ParseError(file, 1, 'ECDSA point is malformed');
    bits = size;
  } else if (type === 'ssh-rsa') {
    take(2);
    bits = mpintBits(fields[1] as Buffer);
  } else if (type === 'ssh-dss') {
    take(4);
    bits = mpintBits(fields[0] as Buffer);
  } else throw new ParseError(file, 1, `unsupported key type ${JSON.stringify(type.slice(0, 40))}`);
  if (offset !== blob.length) throw new ParseError(file, 1, `extra bytes after the ${type} key`);
  if (bits === 0) throw new ParseError(file, 1, `${type} key has no key material`);
  return bits;
}

export function parsePublicKey(text: string, file = 'public key'): PublicKey {
  const m = /^[ \t]*(\S+)[ \t]+(\S+)(?:[ \t]+([^]*))?$/.exec(text.replace(/[ \t\r\n]+$/, ''));
  if (!m) throw new ParseError(file, 1, 'not "type base64 [comment]"');
  const [, type = '', b64 = '', comment = ''] = m;
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(b64) || b64.length % 4 !== 0) throw new ParseError(file, 1, 'key data is not base64');
  const blob = Buffer.from(b64, 'base64');
  const inner = readString(blob, 0);
  if (!inner || inner.value.toString('latin1') !== type) throw new ParseError(file, 1, `key data does not hold a ${type} key`);
  const bits = keyBits(type, blob, inner.next, file);
  const label = LABELS[type] ?? (type.startsWith('ecdsa-') ? 'ECDSA' : type.toUpperCase());
  return { type, blob, comment, bits, fingerprint: fingerprintOf(blob), label };
}

/** The line ssh-keygen -l prints, and cloud-init puts in its fingerprint block. */
export function fingerprintLine(key: PublicKey): string {
  return `${key.bits} ${key.fingerprint} ${key.comment || 'no comment'} (${key.label})`;
}
