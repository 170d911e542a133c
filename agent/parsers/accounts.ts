import { ParseError } from './errors.js';

// Colon-separated account databases (/etc/passwd, /etc/shadow, /etc/group). Each line keeps
// its exact text so that lines we do not target are written back byte for byte.

export interface AccountLine {
  /** 1-based line number in the file. */
  line: number;
  fields: string[];
}

export interface AccountFile {
  file: string;
  lines: AccountLine[];
  /** Whether the file ended with a newline (most do; we preserve it either way). */
  finalNewline: boolean;
}

const FIELD_COUNT = { passwd: 7, shadow: 9, group: 4 } as const;
export type AccountKind = keyof typeof FIELD_COUNT;

export function parseAccountFile(text: string, kind: AccountKind, file: string): AccountFile {
  const finalNewline = text.endsWith('\n');
  const body = finalNewline ? text.slice(0, -1) : text;
  const rawLines = body === '' ? [] : body.split('\n');
  const lines = rawLines.map((raw, i) => {
    const line = i + 1;
    if (raw.includes('\r') || raw.includes('\0')) throw new ParseError(file, line, 'control character in line');
    const fields = raw.split(':');
    if (fields.length !== FIELD_COUNT[kind]) {
      throw new ParseError(file, line, `expected ${FIELD_COUNT[kind]} colon-separated fields, found ${fields.length}`);
    }
    if (fields[0] === '') throw new ParseError(file, line, 'empty account name');
    return { line, fields };
  });
  return { file, lines, finalNewline };
}

export function printAccountFile(parsed: AccountFile): string {
  const body = parsed.lines.map((l) => l.fields.join(':')).join('\n');
  return parsed.finalNewline ? `${body}\n` : body;
}

export function findAccount(parsed: AccountFile, name: string): AccountLine | undefined {
  return parsed.lines.find((l) => l.fields[0] === name);
}

export interface PasswdEntry {
  name: string;
  password: string;
  uid: number;
  gid: number;
  gecos: string;
  home: string;
  shell: string;
}

export function passwdEntries(parsed: AccountFile): PasswdEntry[] {
  return parsed.lines.map((l) => {
    const [name = '', password = '', uid = '', gid = '', gecos = '', home = '', shell = ''] = l.fields;
    return { name, password, uid: Number.parseInt(uid, 10), gid: Number.parseInt(gid, 10), gecos, home, shell };
  });
}

export interface GroupEntry {
  name: string;
  gid: number;
  members: string[];
}

export function groupEntries(parsed: AccountFile): GroupEntry[] {
  return parsed.lines.map((l) => {
    const [name = '', , gid = '', members = ''] = l.fields;
    return { name, gid: Number.parseInt(gid, 10), members: members === '' ? [] : members.split(',') };
  });
}

/**
 * What a password field allows. "usable" and "empty" both let someone log in with a password
 * ("empty" with no password at all); "locked" is a hash behind "!"; "disabled" is anything that
 * can never match ("*", "!!" alone, "x" in shadow, vendor markers).
 */
export type PasswordState = 'usable' | 'empty' | 'locked' | 'disabled';

const CRYPT_HASH = /^(\$[0-9a-z]+\$[^:\s]*|[./0-9A-Za-z]{13})$/;

export function passwordState(field: string): PasswordState {
  if (field === '') return 'empty';
  if (field.startsWith('!')) return field.length > 1 && CRYPT_HASH.test(field.replace(/^!+/, '')) ? 'locked' : 'disabled';
  if (CRYPT_HASH.test(field)) return 'usable';
  return 'disabled';
}

/** The crypt scheme of a hash, for reports ("sha512", "yescrypt", ...). Never the hash itself. */
export function hashScheme(field: string): string {
  const hash = field.replace(/^!+/, '');
  const id = /^\$([0-9a-z]+)\$/.exec(hash)?.[1];
  const names: Record<string, string> = { '1': 'md5', '2a': 'bcrypt', '2b': 'bcrypt', '2y': 'bcrypt', '5': 'sha256', '6': 'sha512', y: 'yescrypt', gy: 'gost-yescrypt', '7': 'scrypt' };
  if (id !== undefined) return names[id] ?? `$${id}$`;
  if (/^[./0-9A-Za-z]{13}$/.test(hash)) return 'des';
  return 'none';
}
