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
  /** ED25519, ECDSA, RSA... as ssh-keygen -l prints it in parentheses (ED25519-CERT for a certificate). */
  label: string;
  /** Present for an OpenSSH certificate ("*-cert-v01@openssh.com"); the fields above describe its key. */
  certificate?: Certificate;
}

/** The parsed body of an OpenSSH certificate (PROTOCOL.certkeys). Strings are untrusted text. */
export interface Certificate {
  /** The certified key's own type ("ssh-ed25519" for "ssh-ed25519-cert-v01@openssh.com"). */
  keyType: string;
  /** The certified key alone, as its plain public key blob (what the fingerprint is taken over). */
  keyBlob: Buffer;
  serial: bigint;
  kind: 'user' | 'host';
  keyId: string;
  principals: string[];
  validAfter: bigint;
  validBefore: bigint;
  criticalOptions: string[];
  extensions: string[];
  /** The signing CA's fingerprint ("SHA256:..."). */
  caFingerprint: string;
  caType: string;
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

// The key-type names OpenSSH knows (sshkey.c and the ssh-*.c key implementations, 8.4 to 10.0),
// each with the canonical name of its kind (what sshkey_ssh_name gives, and what the
// fingerprint is taken over). At the start of a line only these exact names are a key type
// (peek_type_nid). Inside a blob sshkey_type_from_name also takes a plain type's short name in
// any case ("ED25519", "rsa"), but ECDSA kinds look their curve up by the full name, so only
// the full names work for them.
const PLAIN_KINDS: Readonly<Record<string, string>> = {
  'ssh-ed25519': 'ssh-ed25519',
  'ecdsa-sha2-nistp256': 'ecdsa-sha2-nistp256',
  'ecdsa-sha2-nistp384': 'ecdsa-sha2-nistp384',
  'ecdsa-sha2-nistp521': 'ecdsa-sha2-nistp521',
  'ssh-rsa': 'ssh-rsa',
  'rsa-sha2-256': 'ssh-rsa',
  'rsa-sha2-512': 'ssh-rsa',
  'sk-ssh-ed25519@openssh.com': 'sk-ssh-ed25519@openssh.com',
  'sk-ecdsa-sha2-nistp256@openssh.com': 'sk-ecdsa-sha2-nistp256@openssh.com',
  'webauthn-sk-ecdsa-sha2-nistp256@openssh.com': 'sk-ecdsa-sha2-nistp256@openssh.com',
  'ssh-dss': 'ssh-dss',
};
const SHORT_NAMES: Readonly<Record<string, string>> = { ed25519: 'ssh-ed25519', rsa: 'ssh-rsa', 'ed25519-sk': 'sk-ssh-ed25519@openssh.com', dsa: 'ssh-dss' };
const CERT_KINDS: Readonly<Record<string, string>> = {
  'ssh-ed25519-cert-v01@openssh.com': 'ssh-ed25519-cert-v01@openssh.com',
  'ecdsa-sha2-nistp256-cert-v01@openssh.com': 'ecdsa-sha2-nistp256-cert-v01@openssh.com',
  'ecdsa-sha2-nistp384-cert-v01@openssh.com': 'ecdsa-sha2-nistp384-cert-v01@openssh.com',
  'ecdsa-sha2-nistp521-cert-v01@openssh.com': 'ecdsa-sha2-nistp521-cert-v01@openssh.com',
  'ssh-rsa-cert-v01@openssh.com': 'ssh-rsa-cert-v01@openssh.com',
  'rsa-sha2-256-cert-v01@openssh.com': 'ssh-rsa-cert-v01@openssh.com',
  'rsa-sha2-512-cert-v01@openssh.com': 'ssh-rsa-cert-v01@openssh.com',
  'sk-ssh-ed25519-cert-v01@openssh.com': 'sk-ssh-ed25519-cert-v01@openssh.com',
  'sk-ecdsa-sha2-nistp256-cert-v01@openssh.com': 'sk-ecdsa-sha2-nistp256-cert-v01@openssh.com',
  'ssh-dss-cert-v01@openssh.com': 'ssh-dss-cert-v01@openssh.com',
};

/** Every name sshd reads as a key type at the start of an authorized_keys line. */
export const SSHD_LINE_KEY_TYPES: ReadonlySet<string> = new Set([...Object.keys(PLAIN_KINDS), ...Object.keys(CERT_KINDS)]);

/** The canonical type of a name at the start of a line (exact names only), or null. */
export function canonicalLineType(name: string): string | null {
  return PLAIN_KINDS[name] ?? CERT_KINDS[name] ?? null;
}

/** The canonical type of the name inside a blob (sshkey_type_from_name), or null. */
function canonicalBlobType(name: string): string | null {
  return PLAIN_KINDS[name] ?? CERT_KINDS[name] ?? SHORT_NAMES[name.toLowerCase()] ?? null;
}

export function fingerprintOf(blob: Buffer): string {
  return `SHA256:${createHash('sha256').update(blob).digest('base64').replace(/=+$/, '')}`;
}

/**
 * Reads the key fields of a plain key type starting at offset; throws unless they are what the
 * type needs. Returns the key size and where the fields end.
 */
function keyFields(type: string, blob: Buffer, offset: number, file: string): { bits: number; next: number } {
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
  if (bits === 0) throw new ParseError(file, 1, `${type} key has no key material`);
  return { bits, next: offset };
}

/** Reads the blob's fields after the type string; throws unless they are exactly what the type needs. */
function keyBits(type: string, blob: Buffer, offset: number, file: string): number {
  const { bits, next } = keyFields(type, blob, offset, file);
  if (next !== blob.length) throw new ParseError(file, 1, `extra bytes after the ${type} key`);
  return bits;
}

const CERT_SUFFIX = '-cert-v01@openssh.com';

/** "ssh-ed25519-cert-v01@openssh.com" → "ssh-ed25519", "sk-ssh-ed25519-cert-v01@openssh.com" → "sk-ssh-ed25519@openssh.com"; null for a plain type. */
export function certifiedKeyType(certType: string): string | null {
  if (!certType.endsWith(CERT_SUFFIX)) return null;
  const base = certType.slice(0, -CERT_SUFFIX.length);
  return base.startsWith('sk-') ? `${base}@openssh.com` : base;
}

function sshString(data: Buffer): Buffer {
  const len = Buffer.alloc(4);
  len.writeUInt32BE(data.length);
  return Buffer.concat([len, data]);
}

/** A string field that is itself a list of strings (principals), or of name/data pairs (options). */
function stringList(field: Buffer, pairs: boolean, what: string, file: string): string[] {
  const names: string[] = [];
  let offset = 0;
  while (offset < field.length) {
    const name = readString(field, offset);
    if (!name) throw new ParseError(file, 1, `certificate ${what} are malformed`);
    offset = name.next;
    if (pairs) {
      const data = readString(field, offset);
      if (!data) throw new ParseError(file, 1, `certificate ${what} are malformed`);
      offset = data.next;
    }
    names.push(name.value.toString('utf8'));
  }
  return names;
}

/** Parses the body of a certificate blob (after its type string) the way PROTOCOL.certkeys lays it out. */
function certificateBody(certType: string, keyType: string, blob: Buffer, offset: number, file: string): { bits: number; cert: Certificate } {
  const nonce = readString(blob, offset);
  if (!nonce) throw new ParseError(file, 1, `truncated ${certType} certificate`);
  const keyStart = nonce.next;
  const { bits, next: keyEnd } = keyFields(keyType, blob, keyStart, file);
  offset = keyEnd;
  const u64 = (): bigint => {
    if (offset + 8 > blob.length) throw new ParseError(file, 1, `truncated ${certType} certificate`);
    const v = blob.readBigUInt64BE(offset);
    offset += 8;
    return v;
  };
  const u32 = (): number => {
    if (offset + 4 > blob.length) throw new ParseError(file, 1, `truncated ${certType} certificate`);
    const v = blob.readUInt32BE(offset);
    offset += 4;
    return v;
  };
  const str = (): Buffer => {
    const f = readString(blob, offset);
    if (!f) throw new ParseError(file, 1, `truncated ${certType} certificate`);
    offset = f.next;
    return f.value;
  };
  const serial = u64();
  const kindCode = u32();
  if (kindCode !== 1 && kindCode !== 2) throw new ParseError(file, 1, `certificate type ${kindCode} is neither user (1) nor host (2)`);
  const keyId = str().toString('utf8');
  const principals = stringList(str(), false, 'principals', file);
  const validAfter = u64();
  const validBefore = u64();
  const criticalOptions = stringList(str(), true, 'critical options', file);
  const extensions = stringList(str(), true, 'extensions', file);
  str(); // reserved
  const caBlob = str();
  const signature = str();
  if (offset !== blob.length) throw new ParseError(file, 1, `extra bytes after the ${certType} certificate`);
  // The CA is a plain key (OpenSSH refuses a certificate as a CA), and the signature names its algorithm.
  const caInner = readString(caBlob, 0);
  const caType = caInner?.value.toString('latin1') ?? '';
  if (!caInner || certifiedKeyType(caType) !== null) throw new ParseError(file, 1, 'certificate signing key is not a plain public key');
  keyBits(caType, caBlob, caInner.next, file);
  const sigType = readString(signature, 0);
  const sigData = sigType ? readString(signature, sigType.next) : null;
  if (!sigType || sigType.value.length === 0 || !sigData) throw new ParseError(file, 1, 'certificate signature is malformed');
  const keyBlob = Buffer.concat([sshString(Buffer.from(keyType, 'latin1')), blob.subarray(keyStart, keyEnd)]);
  return {
    bits,
    cert: {
      keyType, keyBlob, serial, kind: kindCode === 1 ? 'user' : 'host', keyId, principals, validAfter, validBefore,
      criticalOptions, extensions, caFingerprint: fingerprintOf(caBlob), caType,
    },
  };
}

/**
 * Parses "type base64 [comment]" the way sshd's sshkey_read does: the type is one of the exact
 * names sshd knows, the blob's own name is that kind (rsa-sha2-512 and ssh-rsa are one kind;
 * "ED25519" inside a blob is ssh-ed25519). The result's type and blob are canonical (the blob
 * carries the canonical name), so that the fingerprint is the one ssh-keygen -l prints.
 */
export function parsePublicKey(text: string, file = 'public key'): PublicKey {
  const m = /^[ \t]*(\S+)[ \t]+(\S+)(?:[ \t]+([^]*))?$/.exec(text.replace(/[ \t\r\n]+$/, ''));
  if (!m) throw new ParseError(file, 1, 'not "type base64 [comment]"');
  const [, lineType = '', b64 = '', comment = ''] = m;
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(b64) || b64.length % 4 !== 0) throw new ParseError(file, 1, 'key data is not base64');
  const written = Buffer.from(b64, 'base64');
  const inner = readString(written, 0);
  const type = canonicalLineType(lineType);
  if (type === null) throw new ParseError(file, 1, `unsupported key type ${JSON.stringify(lineType.slice(0, 40))}`);
  if (!inner || canonicalBlobType(inner.value.toString('latin1')) !== type) throw new ParseError(file, 1, `key data does not hold a ${lineType} key`);
  const blob = inner.value.toString('latin1') === type ? written : Buffer.concat([sshString(Buffer.from(type, 'latin1')), written.subarray(inner.next)]);
  const bodyStart = 4 + type.length;
  const keyType = certifiedKeyType(type);
  const labelOf = (t: string): string => LABELS[t] ?? (t.startsWith('ecdsa-') ? 'ECDSA' : t.toUpperCase());
  if (keyType !== null) {
    // A certificate: ssh-keygen -l reports the certified key's size and fingerprint, labelled -CERT.
    const { bits, cert } = certificateBody(type, keyType, blob, bodyStart, file);
    return { type, blob, comment, bits, fingerprint: fingerprintOf(cert.keyBlob), label: `${labelOf(keyType)}-CERT`, certificate: cert };
  }
  const bits = keyBits(type, blob, bodyStart, file);
  return { type, blob, comment, bits, fingerprint: fingerprintOf(blob), label: labelOf(type) };
}

/** The line ssh-keygen -l prints, and cloud-init puts in its fingerprint block. */
export function fingerprintLine(key: PublicKey): string {
  return `${key.bits} ${key.fingerprint} ${key.comment || 'no comment'} (${key.label})`;
}
