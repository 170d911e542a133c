import net from 'node:net';

// The options field of an authorized_keys line, read with sshd's own grammar (OpenSSH
// auth-options.c sshauthopt_parse, misc.c opt_flag/opt_match/opt_dequote, a2port, a2tun,
// parse_absolute_time; addrmatch.c for from=). Written from reading that code, not copied.
// What sshd does that matters here:
//  - option names are compared case-insensitively, flags by prefix then a "," or the end must
//    follow; "no-" negates only the flags that allow it (not restrict, not cert-authority);
//  - a value is "quoted", \" is the only escape, and anything else is kept as is;
//  - an empty option (",pty", "pty,,restrict", a trailing "," before the key) is skipped;
//  - a second command=, from= or principals= makes the whole line "bad key options" (ignored);
//    a second expiry-time= keeps the earliest; environment= keeps the first of a name;
//  - permitopen/permitlisten: host:port or host/port, [v6]:port, port 1-65535 (strtonum, so
//    " +22" is 22), a tcp service name, or *; permitlisten also takes a bare port;
//  - tunnel: "any" or 0..2147483645; expiry-time: YYYYMMDD[HHMM[SS]] with Z or UTC for UTC, else
//    local time, as glibc strptime reads it (so Feb 31 is March 3, second 60/61 is allowed);
//  - from= and principals= are only checked at login: an empty from= entry or a CIDR with a
//    too-long mask or host bits set denies every login, principals= on a key that is not a
//    cert-authority denies every login, an expiry-time in the past denies every login.

export interface KeyOption {
  /** Lower case, as sshd compares them case-insensitively ("no-pty", "command"). */
  name: string;
  /** The dequoted value of a name="value" option; null for a flag. */
  value: string | null;
}

/** What sshd makes of the options: the authority the line grants (auth-options.h sshauthopt). */
export interface KeyOptionEffect {
  restricted: boolean;
  certAuthority: boolean;
  portForwarding: boolean;
  agentForwarding: boolean;
  x11Forwarding: boolean;
  pty: boolean;
  userRc: boolean;
  /** no-touch-required: a FIDO key signs without a touch. */
  noTouchRequired: boolean;
  verifyRequired: boolean;
  command: string | null;
  principals: string | null;
  from: string | null;
  /** The earliest expiry-time, seconds since the epoch. */
  expiresAt: number | null;
  environment: string[];
  permitOpen: string[];
  permitListen: string[];
  /** tunnel=: a device number, or 'any'. */
  tunnel: number | 'any' | null;
}

export type OptionsResult = { ok: true; options: KeyOption[]; effect: KeyOptionEffect } | { ok: false; reason: string };

export interface OptionsEnvironment {
  /** getservbyname(name, "tcp") of the system sshd runs on; without it a port must be a number. */
  tcpService?: (name: string) => number | null;
}

const PERMIT_MAX = 4096;
const ENV_MAX = 1024;
const TUNID_MAX = 0x7fffffff - 2;
const NI_MAXHOST = 1025;
/** C isspace() in the C locale: what strtoll and strptime skip. */
const C_SPACE = /^[ \t\n\v\f\r]*/;

/** Flags in sshd's order of trying, and whether "no-" negates them. */
const FLAGS: ReadonlyArray<readonly [string, boolean]> = [
  ['restrict', false],
  ['cert-authority', false],
  ['port-forwarding', true],
  ['agent-forwarding', true],
  ['x11-forwarding', true],
  ['touch-required', true],
  ['verify-required', true],
  ['pty', true],
  ['user-rc', true],
];
const VALUED = ['command', 'principals', 'from', 'expiry-time', 'environment', 'permitopen', 'permitlisten', 'tunnel'] as const;

/** strtonum(3) as OpenSSH uses it: strtoll's spelling (blanks, a sign, decimal digits), then a range. */
export function strtonum(text: string, min: number, max: number): number | null {
  const m = /^[ \t\n\v\f\r]*([+-]?)(\d+)$/.exec(text);
  if (!m) return null;
  const digits = (m[2] as string).replace(/^0+(?=\d)/, '');
  if (digits.length > 16) return null;
  const value = m[1] === '-' && Number(digits) !== 0 ? -Number(digits) : Number(digits);
  return value < min || value > max ? null : value;
}

/** a2port: a number 0..65535 or a tcp service name; -1 when neither. */
function a2port(text: string, env: OptionsEnvironment): number {
  const n = strtonum(text, 0, 65535);
  if (n !== null) return n;
  return env.tcpService?.(text) ?? -1;
}

/** Checks a permitopen/permitlisten value as handle_permit does; null when sshd takes it. */
function permitProblem(value: string, bareListenPort: boolean, env: OptionsEnvironment): string | null {
  const spec = bareListenPort && !value.includes(':') ? `*:${value}` : value;
  // hpdelim2: "[...]" up to the first "]", else up to the first ":" or "/".
  let host: string;
  let rest: string | null;
  if (spec.startsWith('[')) {
    const close = spec.indexOf(']');
    if (close < 0) return 'invalid permission hostname (no "]")';
    const after = spec[close + 1];
    if (after !== undefined && after !== ':' && after !== '/') return 'invalid permission hostname';
    host = spec.slice(0, close + 1);
    rest = after === undefined ? null : spec.slice(close + 2);
  } else {
    const d = spec.search(/[:/]/);
    host = d < 0 ? spec : spec.slice(0, d);
    rest = d < 0 ? null : spec.slice(d + 1);
  }
  if (Buffer.byteLength(host) >= NI_MAXHOST) return 'invalid permission hostname (too long)';
  if (rest === null || (rest !== '*' && a2port(rest, env) <= 0)) return 'invalid permission port (1-65535, a service name or *)';
  return null;
}

/** glibc strptime's get_number on one fixed-width field: blanks, then digits only, in range. */
function field(text: string, min: number, max: number): number | null {
  const m = /^[ \t\n\v\f\r]*(\d+)$/.exec(text);
  if (!m) return null;
  const v = Number(m[1]);
  return v < min || v > max ? null : v;
}

/**
 * parse_absolute_time: YYYYMMDD, YYYYMMDDHHMM or YYYYMMDDHHMMSS, a final Z or UTC (any case)
 * for UTC, else local time; out-of-range days roll over as mktime does. Seconds since the
 * epoch, or null when sshd refuses it (also for the epoch itself and anything before it).
 */
export function parseAbsoluteTime(text: string): number | null {
  let len = text.length;
  let utc = false;
  if (len > 1 && /z$/i.test(text)) {
    utc = true;
    len -= 1;
  } else if (len > 3 && /utc$/i.test(text)) {
    utc = true;
    len -= 3;
  }
  if (len !== 8 && len !== 12 && len !== 14) return null;
  const s = text.slice(0, len);
  const year = field(s.slice(0, 4), 0, 9999);
  const month = field(s.slice(4, 6), 1, 12);
  const day = field(s.slice(6, 8), 1, 31);
  const hour = len >= 12 ? field(s.slice(8, 10), 0, 23) : 0;
  const minute = len >= 12 ? field(s.slice(10, 12), 0, 59) : 0;
  const second = len === 14 ? field(s.slice(12, 14), 0, 61) : 0;
  if (year === null || month === null || day === null || hour === null || minute === null || second === null) return null;
  const d = new Date(0);
  if (utc) {
    d.setUTCFullYear(year, month - 1, day);
    d.setUTCHours(hour, minute, second, 0);
  } else {
    d.setFullYear(year, month - 1, day);
    d.setHours(hour, minute, second, 0);
  }
  const t = Math.floor(d.getTime() / 1000);
  return Number.isFinite(t) && t > 0 ? t : null;
}

/** inet_aton's spelling (as glibc's numeric getaddrinfo takes it): 1-4 parts, decimal, 0octal or 0xhex. */
function ipv4Bytes(text: string): number[] | null {
  const parts = text.split('.');
  if (parts.length > 4) return null;
  const values: number[] = [];
  for (const p of parts) {
    let v: number;
    if (/^0[xX][0-9a-fA-F]*$/.test(p)) v = p.length === 2 ? 0 : Number.parseInt(p.slice(2), 16);
    else if (/^0[0-7]*$/.test(p)) v = Number.parseInt(p, 8);
    else if (/^[1-9]\d*$/.test(p)) v = Number(p);
    else return null;
    if (!Number.isSafeInteger(v)) return null;
    values.push(v);
  }
  const last = values.pop() as number;
  if (values.some((v) => v > 255)) return null;
  const lastBytes = 4 - values.length;
  if (last >= 2 ** (8 * lastBytes)) return null;
  const out = [...values];
  for (let i = lastBytes - 1; i >= 0; i -= 1) out.push(Math.floor(last / 2 ** (8 * i)) % 256);
  return out;
}

function ipv6Bytes(text: string): number[] | null {
  if (text.includes('%') || !net.isIPv6(text)) return null;
  let tail: number[] = [];
  let body = text;
  const v4 = /:(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (v4) {
    tail = ipv4Bytes(v4[1] as string) ?? [];
    body = `${text.slice(0, v4.index)}:0:0`;
  }
  const [head = '', back] = body.split('::');
  const words = (s: string): number[] => (s === '' ? [] : s.split(':').map((w) => Number.parseInt(w, 16)));
  const h = words(head);
  const b = back === undefined ? [] : words(back);
  const all = [...h, ...Array<number>(8 - h.length - b.length).fill(0), ...b];
  const bytes = all.flatMap((w) => [w >> 8, w & 255]);
  if (v4) bytes.splice(12, 4, ...tail);
  return bytes.length === 16 ? bytes : null;
}

/**
 * One from= entry as addr_pton_cidr sees it: 'cidr' (a network sshd matches as such),
 * 'pattern' (a wildcard pattern), or 'invalid' (sshd then denies every login with this line).
 */
function fromEntryKind(entry: string): 'cidr' | 'pattern' | 'invalid' {
  if (entry === '') return 'invalid';
  if (Buffer.byteLength(entry) >= 64) return 'pattern';
  const slash = entry.indexOf('/');
  let addr = entry;
  let mask: number | null = null;
  if (slash >= 0) {
    addr = entry.slice(0, slash);
    const m = entry.slice(slash + 1);
    if (!/^\d+$/.test(m) || m.length > 4 || Number(m) > 128) return 'pattern';
    mask = Number(m);
  }
  const bytes = ipv4Bytes(addr) ?? ipv6Bytes(addr);
  if (!bytes) return 'pattern';
  const bits = bytes.length * 8;
  const len = mask ?? bits;
  if (len > bits) return 'invalid';
  for (let bit = len; bit < bits; bit += 1) {
    if (((bytes[bit >> 3] as number) >> (7 - (bit & 7))) & 1) return 'invalid';
  }
  return 'cidr';
}

/** Why sshd would deny every login with this from= list (addr_match_list returning -2), or null. */
export function fromProblem(list: string): string | null {
  for (const raw of list.split(',')) {
    const entry = raw.startsWith('!') ? raw.slice(1) : raw;
    if (fromEntryKind(entry) === 'invalid') {
      return entry === '' ? 'from= has an empty entry' : `from= entry "${entry}" is a network with a mask too long or host bits set`;
    }
  }
  return null;
}

function defaults(): KeyOptionEffect {
  return {
    restricted: false, certAuthority: false, portForwarding: true, agentForwarding: true, x11Forwarding: true, pty: true, userRc: true,
    noTouchRequired: false, verifyRequired: false, command: null, principals: null, from: null, expiresAt: null,
    environment: [], permitOpen: [], permitListen: [], tunnel: null,
  };
}

/** opt_dequote: a quoted value starting at i; \" is a quote, every other byte is kept. */
function dequote(text: string, i: number): { value: string; next: number } | { error: string } {
  if (text[i] !== '"') return { error: 'missing start quote' };
  let value = '';
  let j = i + 1;
  while (j < text.length && text[j] !== '"') {
    if (text[j] === '\\' && text[j + 1] === '"') j += 1;
    value += text[j];
    j += 1;
  }
  if (j >= text.length) return { error: 'missing end quote' };
  return { value, next: j + 1 };
}

/**
 * Parses an options field (everything before the key type) as sshd does. Never throws. The
 * result lists the options in order (names lower case, values dequoted) and their effect.
 */
export function parseKeyOptions(text: string, env: OptionsEnvironment = {}): OptionsResult {
  if (typeof text !== 'string' || text === '' || text[0] === ' ' || text[0] === '\t') return { ok: false, reason: 'empty options field' };
  const options: KeyOption[] = [];
  const e = defaults();
  const fail = (reason: string): OptionsResult => ({ ok: false, reason });
  let i = 0;
  // strncasecmp in the C locale: ASCII letters only, so that indexes stay those of `text`.
  const lower = text.replace(/[A-Z]/g, (c) => c.toLowerCase());
  while (i < text.length && text[i] !== ' ' && text[i] !== '\t') {
    let matched = false;
    for (const [flag, negatable] of FLAGS) {
      const negated = negatable && lower.startsWith('no-', i) && lower.startsWith(flag, i + 3);
      if (!negated && !lower.startsWith(flag, i)) continue;
      const on = !negated;
      options.push({ name: negated ? `no-${flag}` : flag, value: null });
      i += flag.length + (negated ? 3 : 0);
      matched = true;
      switch (flag) {
        case 'restrict':
          Object.assign(e, { restricted: true, portForwarding: false, agentForwarding: false, x11Forwarding: false, pty: false, userRc: false });
          break;
        case 'cert-authority': e.certAuthority = true; break;
        case 'port-forwarding': e.portForwarding = on; break;
        case 'agent-forwarding': e.agentForwarding = on; break;
        case 'x11-forwarding': e.x11Forwarding = on; break;
        case 'touch-required': e.noTouchRequired = !on; break;
        case 'verify-required': e.verifyRequired = on; break;
        case 'pty': e.pty = on; break;
        default: e.userRc = on;
      }
      break;
    }
    if (!matched) {
      const name = VALUED.find((n) => lower.startsWith(`${n}=`, i));
      if (name !== undefined) {
        matched = true;
        const q = dequote(text, i + name.length + 1);
        if ('error' in q) return fail(`${name}=: ${q.error}`);
        i = q.next;
        const v = q.value;
        options.push({ name, value: v });
        switch (name) {
          case 'command':
          case 'principals':
          case 'from': {
            const key = name === 'command' ? 'command' : name === 'principals' ? 'principals' : 'from';
            if (e[key] !== null) return fail(`multiple "${name}" clauses`);
            e[key] = v;
            break;
          }
          case 'expiry-time': {
            const t = parseAbsoluteTime(v);
            if (t === null) return fail(`invalid expires time "${v.slice(0, 40)}" (YYYYMMDD[HHMM[SS]][Z], a real date after 1970)`);
            if (e.expiresAt === null || t < e.expiresAt) e.expiresAt = t;
            break;
          }
          case 'environment': {
            if (e.environment.length > ENV_MAX) return fail('too many environment strings');
            const eq = v.indexOf('=');
            const varName = eq < 0 ? '' : v.slice(0, eq);
            if (!/^[A-Za-z0-9_]+$/.test(varName)) return fail('invalid environment string (NAME=value, NAME of letters, digits and _)');
            if (!e.environment.some((x) => x.startsWith(`${varName}=`))) e.environment.push(v);
            break;
          }
          case 'permitopen':
          case 'permitlisten': {
            const list = name === 'permitopen' ? e.permitOpen : e.permitListen;
            if (list.length > PERMIT_MAX) return fail('too many permission directives');
            const problem = permitProblem(v, name === 'permitlisten', env);
            if (problem) return fail(`${name}="${v.slice(0, 40)}": ${problem}`);
            list.push(v);
            break;
          }
          default: {
            const tun = v.toLowerCase() === 'any' ? 'any' : strtonum(v, 0, TUNID_MAX);
            if (tun === null) return fail(`invalid tun device "${v.slice(0, 40)}" (any, or 0-${TUNID_MAX})`);
            e.tunnel = tun;
          }
        }
      }
    }
    if (i >= text.length || text[i] === ' ' || text[i] === '\t') break;
    if (text[i] !== ',') {
      const word = /^[^,\s="]*/.exec(text.slice(i))?.[0] ?? '';
      return fail(matched ? `unknown key option after column ${i}` : `unknown key option "${word.slice(0, 40)}"`);
    }
    i += 1;
  }
  return { ok: true, options, effect: e };
}

/** Prints options so that parseKeyOptions (and sshd) read back exactly these names and values. */
export function formatKeyOptions(options: readonly KeyOption[]): string {
  return options.map((o) => (o.value === null ? o.name : `${o.name}="${o.value.replace(/"/g, '\\"')}"`)).join(',');
}

/**
 * Why sshd would refuse every login with a line carrying these options (checked at login, not
 * while parsing), or null. `now` in seconds since the epoch.
 */
export function neverLogsIn(e: KeyOptionEffect, now: number): string | null {
  if (e.expiresAt !== null && e.expiresAt < now) return `expired at ${new Date(e.expiresAt * 1000).toISOString()} (expiry-time)`;
  if (e.principals !== null && !e.certAuthority) return 'principals= on a key that is not a cert-authority (sshd denies it)';
  if (e.from !== null) return fromProblem(e.from);
  return null;
}

/**
 * What these options let the key do beyond a bare key line, or [] when they only narrow it.
 * A bare key is sshd's most permissive line (every flag on), so flags switched back on after
 * restrict never exceed it; what does: cert-authority (any key a CA signs logs in),
 * no-touch-required (a FIDO key without presence), environment= (variables into the session,
 * such as LD_PRELOAD, where PermitUserEnvironment allows).
 */
export function widenings(e: KeyOptionEffect): string[] {
  const out: string[] = [];
  if (e.certAuthority) out.push('cert-authority');
  if (e.noTouchRequired) out.push('no-touch-required');
  if (e.environment.length > 0) out.push('environment=');
  return out;
}
