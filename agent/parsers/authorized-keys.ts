import { ParseError } from './errors.js';
import { formatKeyOptions, neverLogsIn, parseKeyOptions, widenings, type KeyOption, type KeyOptionEffect, type OptionsEnvironment } from './key-options.js';
import { certifiedKeyType, parsePublicKey, SSHD_LINE_KEY_TYPES, type PublicKey } from './ssh-public-key.js';

// authorized_keys lines, read the way sshd reads them (sshd(8), AUTHORIZED_KEYS FILE FORMAT;
// auth2-pubkey.c, auth-options.c): an optional options field (comma-separated, values in double
// quotes with \" escapes, ending at the first blank outside quotes), then the key type, the
// base64 blob, and a free comment. Launch keys come from metadata, which is untrusted input:
// validateLaunchKey decides what may reach a user's file, and in what form.

/** Longest key line accepted from metadata (UTF-8 bytes). An RSA-16384 certificate fits. */
export const MAX_KEY_LINE_BYTES = 16 * 1024;
/** Longest comment kept on a launch key (characters). */
export const MAX_COMMENT_CHARS = 256;
/** Smallest RSA modulus accepted (OpenSSH 9 refuses smaller keys too). */
export const MIN_RSA_BITS = 2048;

/**
 * The key types a launch key may have: the plain types sshd honours on a key line, under every
 * name sshd reads for them (rsa-sha2-256/512 are RSA; webauthn-sk-ecdsa is the ECDSA-SK key).
 * Not DSA (refused by default since OpenSSH 7.0, gone in 10.0); not certificates: sshd honours
 * a certificate only through a cert-authority line holding its CA's key, so a certificate on
 * its own line never logs anyone in.
 */
export const ALLOWED_KEY_TYPES: ReadonlySet<string> = new Set([
  'ssh-ed25519',
  'ecdsa-sha2-nistp256',
  'ecdsa-sha2-nistp384',
  'ecdsa-sha2-nistp521',
  'ssh-rsa',
  'rsa-sha2-256',
  'rsa-sha2-512',
  'sk-ssh-ed25519@openssh.com',
  'sk-ecdsa-sha2-nistp256@openssh.com',
  'webauthn-sk-ecdsa-sha2-nistp256@openssh.com',
]);

export { formatKeyOptions, parseKeyOptions, type KeyOption, type OptionsResult } from './key-options.js';

// ---------------------------------------------------------------------------------------------
// Lines

export interface AuthorizedKeyLine {
  /** The options field exactly as written, or null when the line starts with the key type. */
  options: string | null;
  type: string;
  base64: string;
  /** Everything after the blob, without the blanks around it ('' when none). */
  comment: string;
}

export type SplitResult = { ok: true; line: AuthorizedKeyLine } | { ok: false; reason: string };

/** Where the options field ends (sshkey_advance_past_options): the first blank outside quotes; -1 if a quote is left open. */
function endOfOptions(text: string): number {
  let quoted = false;
  let i = 0;
  for (; i < text.length && (quoted || (text[i] !== ' ' && text[i] !== '\t')); i += 1) {
    if (text[i] === '\\' && text[i + 1] === '"') i += 1;
    else if (text[i] === '"') quoted = !quoted;
  }
  return quoted ? -1 : i;
}

/**
 * Splits one line (no newline in it) into options, type, blob and comment the way sshd finds
 * them. A blank or "#" line is { ok: false, reason: 'blank' | 'comment' }.
 */
export function splitAuthorizedKeyLine(raw: string): SplitResult {
  const text = raw.replace(/^[ \t]+/, '').replace(/[ \t\r]+$/, '');
  if (text === '') return { ok: false, reason: 'blank' };
  if (text.startsWith('#')) return { ok: false, reason: 'comment' };
  let rest = text;
  let options: string | null = null;
  const first = /^[^ \t]*/.exec(rest)?.[0] ?? '';
  if (!SSHD_LINE_KEY_TYPES.has(first)) {
    const end = endOfOptions(rest);
    if (end < 0) return { ok: false, reason: 'options field has an unterminated quote' };
    options = rest.slice(0, end);
    rest = rest.slice(end).replace(/^[ \t]+/, '');
  }
  const m = /^([^ \t]+)(?:[ \t]+([^ \t]+))?(?:[ \t]+([^]*))?$/.exec(rest);
  if (!m || m[1] === undefined) return { ok: false, reason: 'no key type' };
  if (m[2] === undefined) return { ok: false, reason: options === null ? 'no key data after the key type' : `"${printable(m[1], 40)}" is not a key type` };
  return { ok: true, line: { options, type: m[1], base64: m[2], comment: m[3] ?? '' } };
}

/** Text for a message: control characters made visible, bounded. */
function printable(text: string, max: number): string {
  const cut = Array.from(text).slice(0, max).join('');
  return JSON.stringify(cut).slice(1, -1) + (cut.length < text.length ? '…' : '');
}

/**
 * A comment fit for authorized_keys and a console: other characters (controls, format
 * characters such as bidi overrides, unassigned code points, lone surrogates) removed, any
 * blank made a space, at most MAX_COMMENT_CHARS characters.
 */
export function sanitizeComment(comment: string): string {
  const cleaned = comment
    .replace(/[\t\p{Z}]/gu, ' ')
    .replace(/\p{C}/gu, '')
    .trim();
  return Array.from(cleaned).slice(0, MAX_COMMENT_CHARS).join('').trim();
}

// ---------------------------------------------------------------------------------------------
// Launch keys

export type LaunchKeyResult =
  | {
      ok: true;
      /** The line to put in authorized_keys: [options ]type base64[ comment], one line, no newline. */
      line: string;
      /** SHA256 fingerprint as ssh-keygen -l prints it. */
      fingerprint: string;
      /** The canonical type (ssh-rsa for a key sent as rsa-sha2-512). */
      type: string;
      /** ED25519, RSA... as ssh-keygen -l labels it. */
      label: string;
      bits: number;
      /** The canonical blob in base64, as written in the line (what identifies the key for duplicates). */
      base64: string;
      /** The options kept on the line (lower-case names), [] when none. */
      options: string[];
    }
  | { ok: false; reason: string };

export interface LaunchKeyContext {
  /** Seconds since the epoch, for expiry-time (default: now). */
  now?: number;
  /** How sshd's system resolves service names in permitopen/permitlisten. */
  env?: OptionsEnvironment;
}

const CONTROL = /[\0-\x08\x0a-\x1f\x7f-\x9f]/;

/**
 * Judges one key line served by metadata: written only as a line sshd will honour. Exactly one
 * line (a single trailing newline is allowed); no CR, NUL or other control character (a TAB
 * only as a blank between fields); at most MAX_KEY_LINE_BYTES; an allowed plain type whose blob
 * decodes and holds that kind of key (parsePublicKey); RSA of at least MIN_RSA_BITS; no
 * certificate. Options are read with sshd's grammar (key-options.ts): a field sshd would reject,
 * or options with which sshd would deny every login, refuse the key. Without allowOptions,
 * options are kept only when they grant nothing a bare key line would not (see widenings);
 * otherwise the key is refused, never installed without them. Never throws on any string.
 */
export function validateLaunchKey(text: string, origin: string, allowOptions: boolean, context: LaunchKeyContext = {}): LaunchKeyResult {
  if (typeof text !== 'string') return { ok: false, reason: 'not text' };
  // Cheap bound first: a 100 KB line is refused before any pattern looks at it.
  if (text.length > MAX_KEY_LINE_BYTES + 1 || Buffer.byteLength(text, 'utf8') > MAX_KEY_LINE_BYTES + 1) {
    return { ok: false, reason: `longer than ${MAX_KEY_LINE_BYTES} bytes` };
  }
  const body = text.endsWith('\n') ? text.slice(0, -1) : text;
  if (Buffer.byteLength(body, 'utf8') > MAX_KEY_LINE_BYTES) return { ok: false, reason: `longer than ${MAX_KEY_LINE_BYTES} bytes` };
  if (body.includes('\n')) return { ok: false, reason: 'more than one line (embedded newline)' };
  if (body.includes('\r')) return { ok: false, reason: 'carriage return in the key (CRLF line ending or injection)' };
  if (body.includes('\0')) return { ok: false, reason: 'NUL byte in the key' };
  const control = CONTROL.exec(body);
  if (control) return { ok: false, reason: `control character U+${control[0].charCodeAt(0).toString(16).toUpperCase().padStart(4, '0')} in the key` };
  if (/[\u2028\u2029]/.test(body)) return { ok: false, reason: 'Unicode line separator in the key' };

  const split = splitAuthorizedKeyLine(body);
  if (!split.ok) {
    if (split.reason === 'blank') return { ok: false, reason: 'empty' };
    if (split.reason === 'comment') return { ok: false, reason: 'a comment, not a key' };
    return split;
  }
  const { type, base64, comment } = split.line;
  if (type === 'ssh-dss' || certifiedKeyType(type) === 'ssh-dss') return { ok: false, reason: 'ssh-dss (DSA) keys are not accepted' };
  if (certifiedKeyType(type) !== null) {
    return { ok: false, reason: `a certificate (${printable(type, 60)}) never logs in from its own line: sshd honours a certificate only through a cert-authority line holding the CA's public key` };
  }
  if (!ALLOWED_KEY_TYPES.has(type)) return { ok: false, reason: `key type "${printable(type, 40)}" is not allowed` };
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(base64) || base64.length % 4 !== 0) return { ok: false, reason: 'base64 does not decode' };

  let key: PublicKey;
  try {
    key = parsePublicKey(`${type} ${base64}`, origin);
  } catch (err) {
    if (err instanceof ParseError) return { ok: false, reason: err.reason };
    return { ok: false, reason: `unreadable key (${err instanceof Error ? err.message : String(err)})` };
  }
  if (key.type === 'ssh-rsa' && key.bits < MIN_RSA_BITS) return { ok: false, reason: `RSA key of ${key.bits} bits is too small (at least ${MIN_RSA_BITS})` };

  let options: KeyOption[] = [];
  if (split.line.options !== null) {
    const parsed = parseKeyOptions(split.line.options, context.env);
    if (!parsed.ok) return { ok: false, reason: `sshd would ignore this line (bad key options: ${parsed.reason})` };
    const never = neverLogsIn(parsed.effect, context.now ?? Date.now() / 1000);
    if (never !== null) return { ok: false, reason: `sshd would refuse every login with this line: ${never}` };
    const wider = widenings(parsed.effect);
    if (!allowOptions && wider.length > 0) {
      return {
        ok: false,
        reason: `its options (${wider.join(', ')}) would let it do more than a plain key; authorized_keys.allow_options is off, so the key is refused rather than installed without its options`,
      };
    }
    options = parsed.options;
  }
  const cleanComment = sanitizeComment(comment);
  // The blob as parsed, canonical and re-encoded: the line carries exactly the bytes that were checked.
  const canonical = key.blob.toString('base64');
  const line = [formatKeyOptions(options), key.type, canonical, cleanComment].filter((p) => p !== '').join(' ');
  return { ok: true, line, fingerprint: key.fingerprint, type: key.type, label: key.label, bits: key.bits, base64: canonical, options: options.map((o) => o.name) };
}

/** How sshd reads one line of an authorized_keys file. */
export type KeyLineReading =
  | { kind: 'blank' | 'comment' }
  /** sshd skips the line, or no login can ever succeed with it. */
  | { kind: 'ignored'; reason: string }
  | {
      kind: 'key';
      line: AuthorizedKeyLine;
      key: PublicKey;
      options: KeyOption[];
      effect: KeyOptionEffect | null;
      /** A CA line: any certificate it signed logs in, not the key itself. */
      certAuthority: boolean;
    };

/**
 * Reads one line as sshd does at login (auth2-pubkeyfile.c): the key must parse, the options
 * must parse, and the options must not deny every login (expired, principals= without
 * cert-authority, a from= sshd cannot read). A certificate line never matches anything. Used by
 * boot (the user's own keys) and by audit (which keys log in), so both read lines alike.
 */
export function readKeyLine(raw: string, now: number = Date.now() / 1000, env: OptionsEnvironment = {}): KeyLineReading {
  const split = splitAuthorizedKeyLine(raw);
  if (!split.ok) {
    if (split.reason === 'blank' || split.reason === 'comment') return { kind: split.reason };
    return { kind: 'ignored', reason: split.reason };
  }
  let key: PublicKey;
  try {
    key = parsePublicKey(`${split.line.type} ${split.line.base64}`);
  } catch (err) {
    return { kind: 'ignored', reason: err instanceof ParseError ? err.reason : 'unreadable key' };
  }
  if (key.certificate) return { kind: 'ignored', reason: 'a certificate on its own line (sshd matches certificates only through cert-authority lines)' };
  let options: KeyOption[] = [];
  let effect: KeyOptionEffect | null = null;
  if (split.line.options !== null) {
    const parsed = parseKeyOptions(split.line.options, env);
    if (!parsed.ok) return { kind: 'ignored', reason: `bad key options: ${parsed.reason}` };
    const never = neverLogsIn(parsed.effect, now);
    if (never !== null) return { kind: 'ignored', reason: never };
    options = parsed.options;
    effect = parsed.effect;
  }
  return { kind: 'key', line: split.line, key, options, effect, certAuthority: effect?.certAuthority === true };
}

/** getservbyname(name, "tcp") from the text of an /etc/services file. */
export function tcpServicesFrom(text: string): (name: string) => number | null {
  const ports = new Map<string, number>();
  for (const raw of text.split('\n')) {
    const words = raw.replace(/#.*/, '').trim().split(/\s+/);
    const m = /^(\d+)\/tcp$/.exec(words[1] ?? '');
    if (!m || !words[0]) continue;
    for (const name of [words[0], ...words.slice(2)]) if (!ports.has(name)) ports.set(name, Number(m[1]));
  }
  return (name) => ports.get(name) ?? null;
}

// ---------------------------------------------------------------------------------------------
// The file: the user's lines and imprint's block

export const BLOCK_BEGIN_PREFIX = '# imprint: launch keys for instance ';
export const BLOCK_BEGIN_SUFFIX = ' (managed; edits here are replaced)';
export const BLOCK_END = '# imprint: end';

export type AuthorizedKeysPart =
  | { kind: 'user'; text: string }
  | {
      kind: 'imprint';
      /** The block's exact text, markers included. */
      text: string;
      /** The instance the block was written for, as its marker says (null if unreadable). */
      instanceId: string | null;
      /** The lines between the markers, without their newlines. */
      lines: string[];
      /** False when no end marker follows: the block then runs to the end of the file. */
      terminated: boolean;
    };

export interface AuthorizedKeysFile {
  /** In file order; joining every part's text gives back the file exactly. */
  parts: AuthorizedKeysPart[];
}

function lineBody(line: string): string {
  return line.replace(/\n$/, '').replace(/\r$/, '');
}

/**
 * Splits a file into the user's own text and imprint's block(s), byte for byte: the parts'
 * texts concatenated are the input. A begin marker without an end marker makes everything
 * after it imprint's (imprint only ever writes both at once; a lost end marker is a manual edit).
 */
export function parseAuthorizedKeysFile(text: string): AuthorizedKeysFile {
  const lines = text.match(/[^\n]*\n|[^\n]+$/g) ?? [];
  const parts: AuthorizedKeysPart[] = [];
  let user = '';
  let i = 0;
  while (i < lines.length) {
    const line = lines[i] as string;
    if (!lineBody(line).startsWith(BLOCK_BEGIN_PREFIX)) {
      user += line;
      i += 1;
      continue;
    }
    if (user !== '') parts.push({ kind: 'user', text: user });
    user = '';
    const id = /^(\S+)/.exec(lineBody(line).slice(BLOCK_BEGIN_PREFIX.length))?.[1] ?? null;
    let blockText = line;
    const inner: string[] = [];
    let terminated = false;
    i += 1;
    while (i < lines.length) {
      const l = lines[i] as string;
      blockText += l;
      i += 1;
      if (lineBody(l).trim() === BLOCK_END) {
        terminated = true;
        break;
      }
      inner.push(lineBody(l));
    }
    parts.push({ kind: 'imprint', text: blockText, instanceId: id, lines: inner, terminated });
  }
  if (user !== '') parts.push({ kind: 'user', text: user });
  return { parts };
}

/** imprint's block for an instance: the markers around the key lines, each ending in a newline. */
export function managedBlock(instanceId: string, keyLines: readonly string[]): string {
  return [`${BLOCK_BEGIN_PREFIX}${instanceId}${BLOCK_BEGIN_SUFFIX}`, ...keyLines, BLOCK_END].map((l) => `${l}\n`).join('');
}

/**
 * The file with every imprint block removed and `block` (or nothing, when null) put where the
 * first one was, else appended. The user's text is kept byte for byte; the one thing added is
 * a newline after a last user line that had none, so that the block starts on its own line.
 */
export function replaceManagedBlock(file: AuthorizedKeysFile, block: string | null): string {
  let out = '';
  let placed = false;
  for (const part of file.parts) {
    if (part.kind === 'user') out += part.text;
    else if (!placed) {
      placed = true;
      if (block !== null) out += block;
    }
  }
  if (!placed && block !== null) {
    if (out !== '' && !out.endsWith('\n')) out += '\n';
    out += block;
  }
  return out;
}

/**
 * The blobs (canonical base64) of keys the user's own lines already authorize for login: lines sshd
 * would accept, except cert-authority lines (they trust a CA, not the key itself).
 */
export function userKeyBlobs(file: AuthorizedKeysFile, now: number = Date.now() / 1000): Set<string> {
  const blobs = new Set<string>();
  for (const part of file.parts) {
    if (part.kind !== 'user') continue;
    for (const raw of part.text.split('\n')) {
      const read = readKeyLine(raw, now);
      if (read.kind === 'key' && !read.certAuthority) blobs.add(read.key.blob.toString('base64'));
    }
  }
  return blobs;
}
