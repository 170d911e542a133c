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
}

const DIRECTIVE = /^([ \t]*)([A-Za-z][A-Za-z0-9]*)([ \t]*=[ \t]*|[ \t]+)([^\r\n]*?)[ \t\r]*$/;
const KEYWORD_ONLY = /^([ \t]*)([A-Za-z][A-Za-z0-9]*)[ \t\r]*$/;

export function parseSshdLine(raw: string, file: string, lineNo: number, inMatch: boolean): SshdLine {
  if (raw.includes('\0')) throw new ParseError(file, lineNo, 'NUL byte in line');
  const trimmed = raw.trim();
  if (trimmed === '') return { raw, kind: 'blank', key: '', value: '', inMatch };
  if (trimmed.startsWith('#')) return { raw, kind: 'comment', key: '', value: '', inMatch };
  const m = DIRECTIVE.exec(raw);
  if (m) return { raw, kind: 'directive', key: (m[2] as string).toLowerCase(), value: m[4] as string, inMatch };
  const k = KEYWORD_ONLY.exec(raw);
  if (k) return { raw, kind: 'directive', key: (k[2] as string).toLowerCase(), value: '', inMatch };
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
  return { file, lines, finalNewline };
}

export function printSshdConfig(config: SshdConfig): string {
  const body = config.lines.map((l) => l.raw).join('\n');
  return config.finalNewline ? `${body}\n` : body;
}

/** Splits a value into words the way sshd does: blanks separate, double quotes group. */
export function splitArgs(value: string): string[] {
  const args: string[] = [];
  const re = /"([^"]*)"|(\S+)/g;
  for (let m = re.exec(value); m; m = re.exec(value)) {
    const word = m[1] ?? (m[2] as string);
    if (m[1] === undefined && word.startsWith('#')) break;
    args.push(word);
  }
  return args;
}

/** A copy of a directive line with a new value, keeping its indentation, keyword spelling and separator. */
export function withValue(line: SshdLine, value: string): SshdLine {
  const m = DIRECTIVE.exec(line.raw);
  const k = KEYWORD_ONLY.exec(line.raw);
  const raw = m ? `${m[1]}${m[2]}${m[3]}${value}` : k ? `${k[1]}${k[2]} ${value}` : `${line.raw.trim()} ${value}`;
  return { ...line, raw, value };
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
