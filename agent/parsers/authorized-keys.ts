import { ParseError } from './errors.js';
import { certifiedKeyType, parsePublicKey, type PublicKey } from './ssh-public-key.js';

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

const PLAIN_ALLOWED = [
  'ssh-ed25519',
  'ecdsa-sha2-nistp256',
  'ecdsa-sha2-nistp384',
  'ecdsa-sha2-nistp521',
  'ssh-rsa',
  'sk-ssh-ed25519@openssh.com',
  'sk-ecdsa-sha2-nistp256@openssh.com',
];
const certName = (plain: string): string => `${plain.replace(/@openssh\.com$/, '')}-cert-v01@openssh.com`;

/** The key types a launch key may have: the plain types and their certificates. Not DSA. */
export const ALLOWED_KEY_TYPES: ReadonlySet<string> = new Set([...PLAIN_ALLOWED, ...PLAIN_ALLOWED.map(certName)]);

/** Every type name sshd itself recognises at the start of a line (so that it is not read as options). */
const SSHD_KEY_TYPES: ReadonlySet<string> = new Set([...ALLOWED_KEY_TYPES, 'ssh-dss', certName('ssh-dss')]);

// ---------------------------------------------------------------------------------------------
// Options

export interface KeyOption {
  /** Lower case, as sshd compares them case-insensitively ("no-pty", "command"). */
  name: string;
  /** The dequoted value of a name="value" option; null for a flag. */
  value: string | null;
}

/** Flags sshd knows, and whether it also takes them with a "no-" prefix (auth-options.c). */
const FLAGS: ReadonlyMap<string, boolean> = new Map([
  ['restrict', false],
  ['cert-authority', false],
  ['port-forwarding', true],
  ['agent-forwarding', true],
  ['x11-forwarding', true],
  ['touch-required', true],
  ['verify-required', true],
  ['pty', true],
  ['user-rc', true],
]);
const VALUED = new Set(['command', 'principals', 'from', 'expiry-time', 'environment', 'permitopen', 'permitlisten', 'tunnel']);

/** Checks sshd makes on a value while parsing (the rest, such as from=, it checks at login). */
function valueProblem(name: string, value: string): string | null {
  switch (name) {
    case 'expiry-time':
      return /^\d{8}(?:\d{4}(?:\d{2})?)?Z?$/.test(value) ? null : 'expiry-time is not YYYYMMDD[HHMM[SS]][Z]';
    case 'environment':
      return /^[A-Za-z_][A-Za-z0-9_]*=/.test(value) ? null : 'environment is not NAME=value';
    case 'tunnel':
      return /^\d{1,10}$/.test(value) ? null : 'tunnel is not a device number';
    case 'permitopen':
    case 'permitlisten':
      return /^(?:\[[0-9A-Fa-f:.]+\]|[^\s:[\]]+|\*):(?:\d{1,5}|\*)$/.test(value) || (name === 'permitlisten' && /^(?:\d{1,5}|\*)$/.test(value))
        ? null
        : `${name} is not host:port`;
    default:
      return null;
  }
}

export type OptionsResult = { ok: true; options: KeyOption[] } | { ok: false; reason: string };

/**
 * Parses an options field ("no-pty,command=\"a \\\"b\\\"\"") as sshd's sshauthopt_parse does:
 * known flags (optionally "no-"), name="value" with \" the only escape, commas between, and
 * nothing unknown. Printable ASCII only: a value with a control or non-ASCII byte is refused.
 */
export function parseKeyOptions(text: string): OptionsResult {
  if (text === '') return { ok: false, reason: 'empty options field' };
  if (!/^[\x20-\x7e]*$/.test(text)) return { ok: false, reason: 'options hold a control or non-ASCII character' };
  const options: KeyOption[] = [];
  let i = 0;
  for (;;) {
    const nameMatch = /^[A-Za-z0-9-]+/.exec(text.slice(i));
    const word = (nameMatch?.[0] ?? '').toLowerCase();
    if (word === '') return { ok: false, reason: `option expected at column ${i + 1}` };
    i += word.length;
    if (text[i] === '=') {
      if (!VALUED.has(word)) return { ok: false, reason: `unknown option "${word.slice(0, 40)}="` };
      i += 1;
      if (text[i] !== '"') return { ok: false, reason: `${word}= value does not start with a quote` };
      i += 1;
      let value = '';
      while (i < text.length && text[i] !== '"') {
        if (text[i] === '\\' && text[i + 1] === '"') i += 1;
        value += text[i];
        i += 1;
      }
      if (i >= text.length) return { ok: false, reason: `${word}= value has no closing quote` };
      i += 1;
      const problem = valueProblem(word, value);
      if (problem) return { ok: false, reason: problem };
      options.push({ name: word, value });
    } else {
      const base = word.startsWith('no-') ? word.slice(3) : word;
      const negatable = FLAGS.get(base);
      const known = FLAGS.has(word) || (word.startsWith('no-') && negatable === true);
      if (!known) return { ok: false, reason: `unknown option "${word.slice(0, 40)}"` };
      options.push({ name: word, value: null });
    }
    if (i === text.length) return { ok: true, options };
    if (text[i] !== ',') return { ok: false, reason: `"," expected after ${word} at column ${i + 1}` };
    i += 1;
    if (i === text.length) return { ok: false, reason: 'options end with ","' };
  }
}

/** Prints options so that parseKeyOptions (and sshd) read back exactly these names and values. */
export function formatKeyOptions(options: readonly KeyOption[]): string {
  return options.map((o) => (o.value === null ? o.name : `${o.name}="${o.value.replace(/"/g, '\\"')}"`)).join(',');
}

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
  if (!SSHD_KEY_TYPES.has(first)) {
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
      /** SHA256 fingerprint as ssh-keygen -l prints it (of the certified key, for a certificate). */
      fingerprint: string;
      type: string;
      /** ED25519, RSA-CERT... as ssh-keygen -l labels it. */
      label: string;
      bits: number;
      /** The blob in canonical base64, as written in the line (what identifies the key for duplicates). */
      base64: string;
      /** Names of options metadata put before the key that were dropped (allowOptions off). */
      droppedOptions: string[];
    }
  | { ok: false; reason: string };

const CONTROL = /[\0-\x08\x0a-\x1f\x7f-\x9f]/;

/**
 * Judges one key line served by metadata. Exactly one line (a single trailing newline is
 * allowed); no CR, NUL or other control character (a TAB only as a blank between fields);
 * at most MAX_KEY_LINE_BYTES; an allowed type whose blob decodes and holds that very type
 * (parsePublicKey); RSA of at least MIN_RSA_BITS. Options are dropped unless allowOptions, and
 * then kept only if they parse. Never throws on any string.
 */
export function validateLaunchKey(text: string, origin: string, allowOptions: boolean): LaunchKeyResult {
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
  if (type === 'ssh-dss' || type === certName('ssh-dss')) return { ok: false, reason: 'ssh-dss (DSA) keys are not accepted' };
  if (!ALLOWED_KEY_TYPES.has(type)) return { ok: false, reason: `key type "${printable(type, 40)}" is not allowed` };
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(base64) || base64.length % 4 !== 0) return { ok: false, reason: 'base64 does not decode' };

  let key: PublicKey;
  try {
    key = parsePublicKey(`${type} ${base64}`, origin);
  } catch (err) {
    if (err instanceof ParseError) return { ok: false, reason: err.reason };
    return { ok: false, reason: `unreadable key (${err instanceof Error ? err.message : String(err)})` };
  }
  const plainType = certifiedKeyType(type) ?? type;
  if (plainType === 'ssh-rsa' && key.bits < MIN_RSA_BITS) return { ok: false, reason: `RSA key of ${key.bits} bits is too small (at least ${MIN_RSA_BITS})` };

  let optionsText = '';
  const droppedOptions: string[] = [];
  if (split.line.options !== null) {
    const parsed = parseKeyOptions(split.line.options);
    if (allowOptions) {
      if (!parsed.ok) return { ok: false, reason: `options do not parse: ${parsed.reason}` };
      optionsText = formatKeyOptions(parsed.options);
    } else if (parsed.ok) {
      droppedOptions.push(...parsed.options.map((o) => o.name));
    } else {
      droppedOptions.push(`unparsable options (${parsed.reason})`);
    }
  }
  const cleanComment = sanitizeComment(comment);
  // The blob as parsed, re-encoded: the line carries exactly the bytes that were checked.
  const canonical = key.blob.toString('base64');
  const line = [optionsText, type, canonical, cleanComment].filter((p) => p !== '').join(' ');
  return { ok: true, line, fingerprint: key.fingerprint, type, label: key.label, bits: key.bits, base64: canonical, droppedOptions };
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
export function userKeyBlobs(file: AuthorizedKeysFile): Set<string> {
  const blobs = new Set<string>();
  for (const part of file.parts) {
    if (part.kind !== 'user') continue;
    for (const raw of part.text.split('\n')) {
      const split = splitAuthorizedKeyLine(raw);
      if (!split.ok) continue;
      if (split.line.options !== null) {
        const parsed = parseKeyOptions(split.line.options);
        if (!parsed.ok || parsed.options.some((o) => o.name === 'cert-authority')) continue;
      }
      try {
        parsePublicKey(`${split.line.type} ${split.line.base64}`);
      } catch {
        continue;
      }
      blobs.add(Buffer.from(split.line.base64, 'base64').toString('base64'));
    }
  }
  return blobs;
}
