import { createHash, randomBytes } from 'node:crypto';

// SHA-512 crypt ("$6$"), as specified by Ulrich Drepper's public "Unix crypt using SHA-256 and
// SHA-512" document, computed here so that no password hashing needs a child process, and none
// needs the image's libraries. yescrypt would need an implementation of its own; it is not needed:
// imprint only ever hashes passwords of 32 random bytes that nobody knows, where the scheme's
// work factor (which protects guessable passwords) adds nothing, and every libxcrypt and glibc
// crypt verifies $6$.

const ITOA64 = './0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';
const DEFAULT_ROUNDS = 5000;

function sha512(...parts: Buffer[]): Buffer {
  const h = createHash('sha512');
  for (const p of parts) h.update(p);
  return h.digest();
}

/** `length` bytes of `digest` repeated (the spec's P and S sequences). */
function repeatTo(digest: Buffer, length: number): Buffer {
  const out = Buffer.alloc(length);
  for (let i = 0; i < length; i += digest.length) digest.copy(out, i, 0, Math.min(digest.length, length - i));
  return out;
}

function encode(final: Buffer): string {
  let out = '';
  const put = (b2: number, b1: number, b0: number, n: number): void => {
    let w = (b2 << 16) | (b1 << 8) | b0;
    for (let i = 0; i < n; i += 1) {
      out += ITOA64[w & 0x3f];
      w >>= 6;
    }
  };
  // The spec's byte order: triples (n, n+21, n+42), rotated left by n mod 3, then the last byte.
  for (let n = 0; n < 21; n += 1) {
    const t = [n, n + 21, n + 42];
    const r = n % 3;
    const [a, b, c] = [...t.slice(r), ...t.slice(0, r)] as [number, number, number];
    put(final[a] as number, final[b] as number, final[c] as number, 4);
  }
  put(0, 0, final[63] as number, 2);
  return out;
}

/** crypt(password, "$6$salt") with the default 5000 rounds. The salt is at most 16 characters of [./0-9A-Za-z]. */
export function sha512Crypt(password: Buffer | string, salt: string): string {
  if (!/^[./0-9A-Za-z]{1,16}$/.test(salt)) throw new Error('sha512Crypt: salt must be 1 to 16 characters of [./0-9A-Za-z]');
  const p = typeof password === 'string' ? Buffer.from(password, 'utf8') : password;
  const s = Buffer.from(salt, 'ascii');
  const b = sha512(p, s, p);
  const aParts: Buffer[] = [p, s];
  let n = p.length;
  for (; n > 64; n -= 64) aParts.push(b);
  aParts.push(b.subarray(0, n));
  for (let bits = p.length; bits > 0; bits >>= 1) aParts.push((bits & 1) !== 0 ? b : p);
  const a = sha512(...aParts);
  const pSeq = repeatTo(sha512(...Array<Buffer>(p.length).fill(p)), p.length);
  const sSeq = repeatTo(sha512(...Array<Buffer>(16 + (a[0] as number)).fill(s)), s.length);
  let c = a;
  for (let i = 0; i < DEFAULT_ROUNDS; i += 1) {
    const parts: Buffer[] = [(i & 1) !== 0 ? pSeq : c];
    if (i % 3 !== 0) parts.push(sSeq);
    if (i % 7 !== 0) parts.push(pSeq);
    parts.push((i & 1) !== 0 ? c : pSeq);
    c = sha512(...parts);
  }
  return `$6$${salt}$${encode(c)}`;
}

/** A SHA-512 crypt hash of `password` with a fresh random 16-character salt. */
export function hashPassword(password: Buffer | string): string {
  const salt = [...randomBytes(16)].map((x) => ITOA64[x & 0x3f]).join('');
  return sha512Crypt(password, salt);
}
