import { parseUnitFile } from './unit-file.js';

// Where logs leave the machine: rsyslog forwarding (legacy "*.* @host" / "@@host" actions,
// ":omrelp:host:port", RainerScript action(type="omfwd"|"omrelp" target=...)), syslog-ng
// network destinations, and systemd-journal-upload's URL=. The Outscale clean-up guide lists
// the logging configuration among what to check in a shared image: a forwarding line planted
// by the image's builder sends every instance's auth log to the builder.

export interface Forwarding {
  /** 1-based line where the forwarding statement starts. */
  line: number;
  target: string;
  port: number | null;
  protocol: 'udp' | 'tcp' | 'relp' | 'http' | 'unknown';
  /** The statement as written (first line, trimmed). */
  text: string;
}

/** The text with quoted strings replaced by spaces of the same length (so offsets and lines hold). */
function blankQuotes(text: string): string {
  return text.replace(/"(?:[^"\\\n]|\\.)*"|'[^'\n]*'/g, (m) => m.replace(/[^\n]/g, ' '));
}

/** /* ... *\/ block comments and # comments (outside quotes) blanked, keeping line structure. */
function blankComments(text: string): string {
  let out = '';
  let i = 0;
  let quote: string | null = null;
  while (i < text.length) {
    const c = text[i] as string;
    if (quote) {
      out += c;
      if (c === '\\' && i + 1 < text.length) {
        out += text[i + 1];
        i += 2;
        continue;
      }
      if (c === quote || c === '\n') quote = null;
      i += 1;
      continue;
    }
    if (c === '"') {
      quote = c;
      out += c;
      i += 1;
      continue;
    }
    if (c === '/' && text[i + 1] === '*') {
      const end = text.indexOf('*/', i + 2);
      const stop = end === -1 ? text.length : end + 2;
      out += text.slice(i, stop).replace(/[^\n]/g, ' ');
      i = stop;
      continue;
    }
    if (c === '#') {
      const end = text.indexOf('\n', i);
      const stop = end === -1 ? text.length : end;
      out += ' '.repeat(stop - i);
      i = stop;
      continue;
    }
    out += c;
    i += 1;
  }
  return out;
}

function lineAt(text: string, offset: number): number {
  let n = 1;
  for (let i = 0; i < offset && i < text.length; i += 1) if (text[i] === '\n') n += 1;
  return n;
}

function firstLine(text: string, offset: number): string {
  const end = text.indexOf('\n', offset);
  return text.slice(offset, end === -1 ? undefined : end).trim();
}

function hostPort(spec: string): { target: string; port: number | null } {
  const v6 = /^\[([^\]]+)\](?::(\d+))?$/.exec(spec);
  if (v6) return { target: v6[1] as string, port: v6[2] ? Number.parseInt(v6[2], 10) : null };
  const m = /^([^:]+)(?::(\d+))?$/.exec(spec);
  return { target: m?.[1] ?? spec, port: m?.[2] ? Number.parseInt(m[2], 10) : null };
}

/** The name="value" parameters of a RainerScript object body (values unquoted). */
export function objectParams(body: string): Map<string, string> {
  const params = new Map<string, string>();
  const re = /([A-Za-z][A-Za-z0-9_.]*)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|'([^']*)'|([^\s")]+))/g;
  for (let m = re.exec(body); m; m = re.exec(body)) params.set((m[1] as string).toLowerCase(), m[2] ?? m[3] ?? m[4] ?? '');
  return params;
}

/** The text from an opening parenthesis to its match (quotes respected); null when unterminated. */
function balanced(text: string, open: number): string | null {
  let depth = 0;
  let quote: string | null = null;
  for (let i = open; i < text.length; i += 1) {
    const c = text[i] as string;
    if (quote) {
      if (c === '\\') i += 1;
      else if (c === quote) quote = null;
      continue;
    }
    if (c === '"' || c === "'") quote = c;
    else if (c === '(') depth += 1;
    else if (c === ')') {
      depth -= 1;
      if (depth === 0) return text.slice(open + 1, i);
    }
  }
  return null;
}

/** Forwarding statements of an rsyslog configuration file. */
export function rsyslogForwarding(text: string): Forwarding[] {
  const out: Forwarding[] = [];
  const code = blankComments(text);
  const bare = blankQuotes(code);

  // RainerScript: action(type="omfwd" target="..." port="..." protocol="tcp")
  const actionRe = /\baction\s*\(/gi;
  for (let m = actionRe.exec(bare); m; m = actionRe.exec(bare)) {
    const open = m.index + m[0].length - 1;
    const body = balanced(code, open);
    if (body === null) continue;
    const params = objectParams(body);
    const type = (params.get('type') ?? '').toLowerCase();
    if (type !== 'omfwd' && type !== 'omrelp') continue;
    const target = params.get('target') ?? params.get('targets') ?? '(no target)';
    const portText = params.get('port');
    const protocol = type === 'omrelp' ? 'relp' : (params.get('protocol') ?? 'udp').toLowerCase() === 'tcp' ? 'tcp' : 'udp';
    out.push({ line: lineAt(text, m.index), target, port: portText && /^\d+$/.test(portText) ? Number.parseInt(portText, 10) : null, protocol, text: firstLine(text, m.index) });
  }

  // Legacy actions: "<selector> @host[:port]", "@@(o,z9)host", "& @host", "if ... then @@host", ":omrelp:host:port".
  const lines = bare.split('\n');
  for (let i = 0; i < lines.length; i += 1) {
    const l = lines[i] as string;
    if (/^\s*\$/.test(l) || /^\s*(?:module|input|template|global|ruleset|main_queue|parser|lookup_table)\s*\(/i.test(l)) continue;
    const legacy = /(?:^|[\s&;])(@@?)(?:\([^)]*\))?(\[[0-9A-Fa-f:.]+\](?::\d+)?|[A-Za-z0-9_.-]+(?::\d+)?)(?=[\s;]|$)/.exec(l);
    if (legacy) {
      const { target, port } = hostPort(legacy[2] as string);
      out.push({ line: i + 1, target, port, protocol: legacy[1] === '@@' ? 'tcp' : 'udp', text: (text.split('\n')[i] ?? '').trim() });
      continue;
    }
    const relp = /:omrelp:(\[[0-9A-Fa-f:.]+\]|[^:\s;]+)(?::(\d+))?/.exec(l);
    if (relp) {
      out.push({ line: i + 1, target: (relp[1] as string).replace(/^\[|\]$/g, ''), port: relp[2] ? Number.parseInt(relp[2], 10) : null, protocol: 'relp', text: (text.split('\n')[i] ?? '').trim() });
    }
  }
  return out.sort((a, b) => a.line - b.line);
}

/** Network destinations of a syslog-ng configuration: network(), tcp(), udp(), syslog() drivers in destination blocks. */
export function syslogNgForwarding(text: string): Forwarding[] {
  const out: Forwarding[] = [];
  const code = blankComments(text);
  const destRe = /\bdestination\s+[A-Za-z0-9_]+\s*\{/g;
  for (let m = destRe.exec(code); m; m = destRe.exec(code)) {
    let depth = 1;
    let i = m.index + m[0].length;
    for (; i < code.length && depth > 0; i += 1) {
      if (code[i] === '{') depth += 1;
      else if (code[i] === '}') depth -= 1;
    }
    const block = code.slice(m.index, i);
    const driverRe = /\b(network|tcp6?|udp6?|syslog)\s*\(\s*(?:"([^"]*)"|'([^']*)'|([^\s)"']+))/g;
    for (let d = driverRe.exec(block); d; d = driverRe.exec(block)) {
      const driver = d[1] as string;
      const target = d[2] ?? d[3] ?? d[4] ?? '';
      const after = block.slice(d.index);
      const transport = /transport\s*\(\s*"?(tcp|udp|tls)/i.exec(after.slice(0, after.indexOf(')') + 200))?.[1]?.toLowerCase();
      const protocol = driver.startsWith('udp') ? 'udp' : driver.startsWith('tcp') ? 'tcp' : transport === 'udp' ? 'udp' : transport ? 'tcp' : 'unknown';
      const portMatch = /\bport\s*\(\s*(\d+)/.exec(after.slice(0, 300));
      const offset = m.index + d.index;
      out.push({ line: lineAt(text, offset), target, port: portMatch ? Number.parseInt(portMatch[1] as string, 10) : null, protocol, text: firstLine(text, offset) });
    }
  }
  return out;
}

/** systemd-journal-upload's URL= (journal-upload.conf(5), [Upload] section). */
export function journalUploadUrl(text: string): Forwarding | null {
  const url = parseUnitFile(text).filter((a) => a.section === 'Upload' && a.key === 'URL' && a.value !== '').pop();
  if (!url) return null;
  const m = /^(?:(https?):\/\/)?(\[[^\]]+\]|[^/:]+)(?::(\d+))?/.exec(url.value);
  return {
    line: url.line,
    target: (m?.[2] ?? url.value).replace(/^\[|\]$/g, ''),
    port: m?.[3] ? Number.parseInt(m[3], 10) : null,
    protocol: 'http',
    text: `URL=${url.value}`,
  };
}
