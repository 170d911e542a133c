// The last line of defence for evidence values: whatever a check quotes from a file (a cron
// line, a profile line, a URL), anything shaped like a secret is masked before it is printed —
// crypt(3) hashes, PEM and OpenSSH private key blocks, password=/token= assignments, passwords
// in URLs, Authorization headers — and control characters are made visible. Values are bounded.

export const MAX_VALUE_CHARS = 300;

const SECRET_WORD = '[A-Za-z0-9_]*(?:password|passwd|passphrase|secret|token|api[_-]?key|access[_-]?key)[A-Za-z0-9_]*';
const HARMLESS = '(?:yes|no|true|false|on|off|none|prohibit-password|without-password|forced-commands-only)\\b';

/** Secrets that may appear anywhere, messages included. */
const ALWAYS: [RegExp, string][] = [
  // A key block: the BEGIN line, optional headers, then base64 (a bare "-----BEGIN ... KEY-----" label is not a key).
  [/-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----(?:\s|\\n)+(?:[A-Za-z-]+: [^\n]*(?:\n|\\n)+)*[A-Za-z0-9+/=]{16}[\s\S]*?(?:-----END [A-Z0-9 ]*PRIVATE KEY-----|$)/g, '[private key hidden]'],
  [/\$(?:1|2[abxy]|5|6|7|y|gy|sha1|md5)\$[^\s:'"]{8,}/g, '[password hash hidden]'],
];

/** Secrets in quoted file content (evidence values): assignments, URLs with passwords, auth headers. */
const QUOTED: [RegExp, string | ((m: string, ...g: string[]) => string)][] = [
  [/\b([a-z][a-z0-9+.-]*:\/\/[^/\s:@]+):[^@\s/]+@/gi, '$1:***@'],
  [/\b(authorization|x-auth-token|x-api-key|private-token)(\s*:\s*)(?:(bearer|basic|token)\s+)?[^\s'"]+/gi, (_m, name: string, sep: string, scheme?: string) => `${name}${sep}${scheme ? `${scheme} ` : ''}***`],
  // NAME=value (shell, ini, cron), and "name": value / name: value at the start of a field (JSON, YAML)
  [new RegExp(`\\b(${SECRET_WORD})(\\s*=\\s*)(["']?)(?!${HARMLESS})[^\\s'"&;]+\\3`, 'gi'), '$1$2$3***$3'],
  [new RegExp(`(^|[{,\\s])(["']?)(${SECRET_WORD})\\2(\\s*:\\s+)(["']?)(?!${HARMLESS})[^\\s'",}]+\\5`, 'gi'), '$1$2$3$2$4$5***$5'],
  [/(\s-p)(?=\S{3})[^\s'"]+/g, '$1***'],
];

function visible(text: string): string {
  // Control characters (and bidi overrides) made visible, so a value cannot rewrite a terminal line.
  const out = text
    .replace(/[\0-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`)
    .replace(/\n/g, '\\n')
    .replace(/\t/g, ' ');
  const chars = Array.from(out);
  return chars.length > MAX_VALUE_CHARS ? `${chars.slice(0, MAX_VALUE_CHARS).join('')}…` : out;
}

/** For messages and paths: key material and hashes hidden, control characters made visible. */
export function redactText(text: string): string {
  let out = text;
  for (const [re, replacement] of ALWAYS) out = out.replace(re, replacement);
  return visible(out);
}

export function redact(value: string): string {
  let out = value;
  for (const [re, replacement] of ALWAYS) out = out.replace(re, replacement);
  for (const [re, replacement] of QUOTED) out = out.replace(re, replacement as string);
  return visible(out);
}
