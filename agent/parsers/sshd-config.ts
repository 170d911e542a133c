import { ParseError } from './errors.js';

// sshd_config(5) as text: every line is kept verbatim so that an edit changes only the lines
// it means to, and comments, spacing and unrelated settings survive.

export interface SshdLine {
  raw: string;
  kind: 'blank' | 'comment' | 'directive';
  /** Lower-cased keyword (sshd keywords are case-insensitive). */
  key: string;
  /** The value text after the keyword and separator, without trailing blanks. */
  value: string;
  /** True for lines after a Match line: they apply only to matching connections. */
  inMatch: boolean;
}

export interface SshdConfig {
  file: string;
  lines: SshdLine[];
  finalNewline: boolean;
  /** The file ends its lines with CRLF: lines imprint adds get the same ending. */
  crlf?: boolean;
}

// sshd splits a line into words itself (argv_split), so a keyword may be quoted too.
const DIRECTIVE = /^([ \t]*)("?)([A-Za-z][A-Za-z0-9]*)\2([ \t]*=[ \t]*|[ \t]+)([^\r\n]*?)[ \t\r]*$/;
const KEYWORD_ONLY = /^([ \t]*)("?)([A-Za-z][A-Za-z0-9]*)\2[ \t\r]*$/;

export function parseSshdLine(raw: string, file: string, lineNo: number, inMatch: boolean): SshdLine {
  if (raw.includes('\0')) throw new ParseError(file, lineNo, 'NUL byte in line');
  const trimmed = raw.trim();
  if (trimmed === '') return { raw, kind: 'blank', key: '', value: '', inMatch };
  if (trimmed.startsWith('#')) return { raw, kind: 'comment', key: '', value: '', inMatch };
  const m = DIRECTIVE.exec(raw);
  if (m) return { raw, kind: 'directive', key: (m[3] as string).toLowerCase(), value: m[5] as string, inMatch };
  const k = KEYWORD_ONLY.exec(raw);
  if (k) return { raw, kind: 'directive', key: (k[3] as string).toLowerCase(), value: '', inMatch };
  throw new ParseError(file, lineNo, `not a "Keyword value" line: ${JSON.stringify(trimmed.slice(0, 60))}`);
}

export function parseSshdConfig(text: string, file: string): SshdConfig {
  const finalNewline = text.endsWith('\n');
  const body = finalNewline ? text.slice(0, -1) : text;
  const raws = body === '' ? [] : body.split('\n');
  let inMatch = false;
  const lines = raws.map((raw, i) => {
    const line = parseSshdLine(raw, file, i + 1, inMatch);
    if (line.kind === 'directive' && line.key === 'match') {
      inMatch = true;
      return { ...line, inMatch: true };
    }
    return line;
  });
  const crlf = raws.length > 0 && raws.every((r) => r.endsWith('\r'));
  return crlf ? { file, lines, finalNewline, crlf } : { file, lines, finalNewline };
}

export function printSshdConfig(config: SshdConfig): string {
  const body = config.lines.map((l) => (config.crlf && !l.raw.endsWith('\r') ? `${l.raw}\r` : l.raw)).join('\n');
  return config.finalNewline ? `${body}\n` : body;
}

/**
 * Splits a value into words the way sshd does (argv_split): blanks separate, single and double
 * quotes group, a backslash escapes a quote, a backslash or a blank, and a word that starts with
 * an unquoted # begins a trailing comment.
 */
export function splitArgs(value: string): string[] {
  const args: string[] = [];
  let word: string | null = null;
  let quote: string | null = null;
  for (let i = 0; i < value.length; i += 1) {
    const c = value[i] as string;
    if (quote === null && (c === ' ' || c === '\t' || c === '\r' || c === '\n')) {
      if (word !== null) args.push(word);
      word = null;
      continue;
    }
    if (word === null && quote === null && c === '#') break;
    word ??= '';
    const next = value[i + 1];
    if (c === '\\' && next !== undefined && (next === '\\' || next === '"' || next === "'" || (quote === null && next === ' '))) {
      word += next;
      i += 1;
    } else if (quote === null && (c === '"' || c === "'")) quote = c;
    else if (c === quote) quote = null;
    else word += c;
  }
  if (word !== null) args.push(word);
  return args;
}

/** The first word of a directive's value as sshd reads it (unquoted, trailing comment dropped), lower-cased. */
export function firstArg(line: SshdLine): string {
  return (splitArgs(line.value)[0] ?? '').toLowerCase();
}

/** A copy of a directive line with a new value, keeping its indentation, keyword spelling and separator. */
export function withValue(line: SshdLine, value: string): SshdLine {
  const m = DIRECTIVE.exec(line.raw);
  const k = KEYWORD_ONLY.exec(line.raw);
  const cr = line.raw.endsWith('\r') ? '\r' : '';
  const raw = m ? `${m[1]}${m[2]}${m[3]}${m[2]}${m[4]}${value}` : k ? `${k[1]}${k[2]}${k[3]}${k[2]} ${value}` : `${line.raw.trim()} ${value}`;
  return { ...line, raw: `${raw}${cr}`, value };
}

export function directiveLine(keyword: string, value: string, inMatch = false): SshdLine {
  return { raw: `${keyword} ${value}`, kind: 'directive', key: keyword.toLowerCase(), value, inMatch };
}

export function commentLine(text: string, inMatch = false): SshdLine {
  return { raw: `# ${text}`, kind: 'comment', key: '', value: '', inMatch };
}

/** Index of the first line of the first Match block (global directives must go before it). */
export function firstMatchIndex(config: SshdConfig): number {
  const i = config.lines.findIndex((l) => l.kind === 'directive' && l.key === 'match');
  return i === -1 ? config.lines.length : i;
}

/** Parses `sshd -T` output ("key value" lines) into a map; repeated keys collect all values. */
export function parseEffectiveConfig(text: string): Map<string, string[]> {
  const settings = new Map<string, string[]>();
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '') continue;
    const space = line.indexOf(' ');
    const key = (space === -1 ? line : line.slice(0, space)).toLowerCase();
    const value = space === -1 ? '' : line.slice(space + 1);
    settings.set(key, [...(settings.get(key) ?? []), value]);
  }
  return settings;
}
