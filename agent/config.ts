import { isMap, isScalar, isSeq, LineCounter, parseDocument, type Node as YamlNode, type Pair, type YAMLMap } from 'yaml';
import type { HostKeyType } from './os/ssh-keygen.js';

// The optional YAML config (/etc/imprint/imprint.yaml). No file means safe defaults. Every
// field is validated; any error is reported as file:line:col and nothing is changed.

export type PermitRootLogin = 'auto' | 'prohibit-password' | 'no';
export type CryptChoice = 'auto' | 'SHA512' | 'YESCRYPT';

export interface DefaultUser {
  name: string;
  groups: string[];
  shell: string;
  gecos: string;
  /** A sudoers rule for the user ("ALL=(ALL) NOPASSWD:ALL"), or false for none. */
  sudo: string | false;
}

export interface Config {
  /** The file the config came from, or null when the built-in defaults are used. */
  source: string | null;
  hostKeys: { enabled: boolean; types: HostKeyType[] | 'auto'; rsaBits: number; ecdsaBits: number };
  passwords: { enabled: boolean; accounts: string[] | 'auto'; exclude: string[]; method: CryptChoice };
  sshd: { enabled: boolean; permitRootLogin: PermitRootLogin; useDns: boolean; settings: Record<string, string> };
  defaultUser: DefaultUser | null;
}

export function defaultConfig(): Config {
  return {
    source: null,
    hostKeys: { enabled: true, types: 'auto', rsaBits: 3072, ecdsaBits: 256 },
    passwords: { enabled: true, accounts: 'auto', exclude: [], method: 'auto' },
    sshd: { enabled: true, permitRootLogin: 'auto', useDns: false, settings: {} },
    defaultUser: null,
  };
}

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(problems.join('\n'));
    this.name = 'ConfigError';
  }
}

/** Settings that imprint owns: a config must not be able to turn password logins back on. */
export const RESERVED_SSHD_KEYWORDS = new Set([
  'passwordauthentication', 'kbdinteractiveauthentication', 'challengeresponseauthentication', 'permitemptypasswords',
  'pubkeyauthentication', 'permitrootlogin', 'usedns', 'include', 'match',
]);

const USER_NAME = /^[a-z_][a-z0-9_-]{0,31}$/;
const HOST_KEY_TYPES: HostKeyType[] = ['ed25519', 'ecdsa', 'rsa'];

export function levenshtein(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i += 1) {
    let prev = row[0] as number;
    row[0] = i;
    for (let j = 1; j <= b.length; j += 1) {
      const cur = row[j] as number;
      row[j] = Math.min(cur + 1, (row[j - 1] as number) + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1));
      prev = cur;
    }
  }
  return row[b.length] as number;
}

export function didYouMean(word: string, choices: readonly string[]): string {
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const choice of choices) {
    const d = levenshtein(word.toLowerCase(), choice.toLowerCase());
    if (d < bestDistance) [best, bestDistance] = [choice, d];
  }
  return best !== undefined && bestDistance <= Math.max(2, Math.floor(word.length / 3)) ? ` (did you mean "${best}"?)` : '';
}

class Validator {
  private readonly found: { offset: number; text: string }[] = [];
  constructor(private readonly file: string, private readonly lines: LineCounter) {}

  /** Every problem, in the order they stand in the file. */
  get problems(): string[] {
    return [...this.found].sort((a, b) => a.offset - b.offset).map((p) => p.text);
  }

  at(node: YamlNode | null | undefined, message: string): void {
    const offset = node?.range?.[0] ?? 0;
    const { line, col } = this.lines.linePos(offset);
    this.found.push({ offset, text: `${this.file}:${line}:${col}: ${message}` });
  }

  /** The pairs of a mapping node, with unknown keys reported against the allowed ones. */
  fields(node: YamlNode | null | undefined, where: string, allowed: readonly string[]): Map<string, YamlNode | null> {
    const out = new Map<string, YamlNode | null>();
    // A section whose settings are all commented out ("host_keys:" alone) means the defaults.
    if (isScalar(node) && node.value === null) return out;
    if (!isMap(node)) {
      this.at(node, `${where} must be a mapping`);
      return out;
    }
    for (const pair of (node as YAMLMap).items as Pair<YamlNode, YamlNode | null>[]) {
      const key = isScalar(pair.key) ? String(pair.key.value) : '';
      if (!allowed.includes(key)) {
        const scope = where === 'the config' ? '' : ` in ${where}`;
        this.at(pair.key, `unknown key "${key}"${scope}${didYouMean(key, allowed)}; known keys: ${allowed.join(', ')}`);
        continue;
      }
      out.set(key, pair.value);
    }
    return out;
  }

  bool(node: YamlNode | null | undefined, where: string, fallback: boolean): boolean {
    if (node === undefined) return fallback;
    if (isScalar(node) && typeof node.value === 'boolean') return node.value;
    this.at(node, `${where} must be true or false`);
    return fallback;
  }

  int(node: YamlNode | null | undefined, where: string, fallback: number, allowed: { min: number; max: number } | readonly number[]): number {
    if (node === undefined) return fallback;
    const value = isScalar(node) ? node.value : undefined;
    if (typeof value !== 'number' || !Number.isInteger(value)) {
      this.at(node, `${where} must be a whole number`);
      return fallback;
    }
    const isList = Array.isArray(allowed);
    const list = allowed as readonly number[];
    const range = allowed as { min: number; max: number };
    if (isList ? list.includes(value) : value >= range.min && value <= range.max) return value;
    this.at(node, `${where} must be ${isList ? `one of ${list.join(', ')}` : `between ${range.min} and ${range.max}`}, not ${value}`);
    return fallback;
  }

  str(node: YamlNode | null | undefined, where: string, check?: (s: string) => string | null): string | undefined {
    if (node === undefined) return undefined;
    const value = isScalar(node) ? node.value : undefined;
    if (typeof value !== 'string') {
      this.at(node, `${where} must be a string`);
      return undefined;
    }
    if (/[\0-\x1f\x7f]/.test(value)) {
      this.at(node, `${where} must not contain control characters or newlines`);
      return undefined;
    }
    const problem = check?.(value) ?? null;
    if (problem) {
      this.at(node, `${where} ${problem}`);
      return undefined;
    }
    return value;
  }

  choice<T extends string>(node: YamlNode | null | undefined, where: string, choices: readonly T[], fallback: T): T {
    if (node === undefined) return fallback;
    const value = isScalar(node) ? String(node.value) : undefined;
    if (value !== undefined && (choices as readonly string[]).includes(value)) return value as T;
    this.at(node, `${where} must be one of ${choices.join(', ')}${value === undefined ? '' : `, not "${value}"${didYouMean(value, choices)}`}`);
    return fallback;
  }

  strList(node: YamlNode | null | undefined, where: string, check?: (s: string) => string | null): string[] | undefined {
    if (node === undefined) return undefined;
    if (!isSeq(node)) {
      this.at(node, `${where} must be a list`);
      return undefined;
    }
    const out: string[] = [];
    for (const item of node.items as (YamlNode | null)[]) {
      const s = this.str(item, `each entry of ${where}`, check);
      if (s !== undefined) out.push(s);
    }
    return out;
  }
}

const userName = (s: string): string | null => (USER_NAME.test(s) ? null : `"${s}" is not a valid user name (lower case letters, digits, _ and -, at most 32)`);

function hostKeysSection(v: Validator, node: YamlNode | null, config: Config): void {
  const f = v.fields(node, 'host_keys', ['enabled', 'types', 'rsa_bits', 'ecdsa_bits']);
  const hk = config.hostKeys;
  hk.enabled = v.bool(f.get('enabled'), 'host_keys.enabled', hk.enabled);
  const types = f.get('types');
  if (isScalar(types) && types.value === 'auto') hk.types = 'auto';
  else if (types !== undefined) {
    const list = v.strList(types, 'host_keys.types', (s) =>
      (HOST_KEY_TYPES as string[]).includes(s) ? null : `must be one of ${HOST_KEY_TYPES.join(', ')}, not "${s}"${didYouMean(s, HOST_KEY_TYPES)}`);
    if (isSeq(types) && types.items.length === 0) v.at(types, 'host_keys.types must name at least one key type (or be "auto")');
    else if (list?.length) hk.types = [...new Set(list)] as HostKeyType[];
  }
  hk.rsaBits = v.int(f.get('rsa_bits'), 'host_keys.rsa_bits', hk.rsaBits, { min: 3072, max: 16384 });
  hk.ecdsaBits = v.int(f.get('ecdsa_bits'), 'host_keys.ecdsa_bits', hk.ecdsaBits, [256, 384, 521]);
}

function passwordsSection(v: Validator, node: YamlNode | null, config: Config): void {
  const f = v.fields(node, 'passwords', ['enabled', 'accounts', 'exclude', 'method']);
  const pw = config.passwords;
  pw.enabled = v.bool(f.get('enabled'), 'passwords.enabled', pw.enabled);
  const accounts = f.get('accounts');
  if (isScalar(accounts) && accounts.value === 'auto') pw.accounts = 'auto';
  else if (accounts !== undefined) pw.accounts = v.strList(accounts, 'passwords.accounts', userName) ?? pw.accounts;
  pw.exclude = v.strList(f.get('exclude'), 'passwords.exclude', userName) ?? pw.exclude;
  pw.method = v.choice(f.get('method'), 'passwords.method', ['auto', 'SHA512', 'YESCRYPT'] as const, pw.method);
}

function sshdSection(v: Validator, node: YamlNode | null, config: Config): void {
  const f = v.fields(node, 'sshd', ['enabled', 'permit_root_login', 'use_dns', 'settings']);
  const s = config.sshd;
  s.enabled = v.bool(f.get('enabled'), 'sshd.enabled', s.enabled);
  s.permitRootLogin = v.choice(f.get('permit_root_login'), 'sshd.permit_root_login', ['auto', 'prohibit-password', 'no'] as const, s.permitRootLogin);
  s.useDns = v.bool(f.get('use_dns'), 'sshd.use_dns', s.useDns);
  const settings = f.get('settings');
  if (settings === undefined) return;
  if (!isMap(settings)) {
    v.at(settings, 'sshd.settings must be a mapping of sshd_config keywords to values');
    return;
  }
  for (const pair of settings.items as Pair<YamlNode, YamlNode | null>[]) {
    const keyword = isScalar(pair.key) ? String(pair.key.value) : '';
    if (!/^[A-Za-z][A-Za-z0-9]*$/.test(keyword)) {
      v.at(pair.key, `sshd.settings: "${keyword}" is not an sshd_config keyword`);
      continue;
    }
    if (RESERVED_SSHD_KEYWORDS.has(keyword.toLowerCase())) {
      v.at(pair.key, `sshd.settings: ${keyword} is managed by imprint (password logins stay off; use permit_root_login / use_dns)`);
      continue;
    }
    const raw = isScalar(pair.value) ? pair.value.value : undefined;
    const value = typeof raw === 'boolean' ? (raw ? 'yes' : 'no') : typeof raw === 'number' ? String(raw) : raw;
    if (typeof value !== 'string' || value === '' || /[\0-\x1f\x7f]/.test(value)) {
      v.at(pair.value ?? pair.key, `sshd.settings.${keyword} must be a single-line value`);
      continue;
    }
    s.settings[keyword] = value;
  }
}

function defaultUserSection(v: Validator, node: YamlNode | null, config: Config): void {
  const f = v.fields(node, 'default_user', ['name', 'groups', 'shell', 'sudo', 'gecos']);
  if (!isMap(node)) return;
  const name = v.str(f.get('name'), 'default_user.name', userName);
  if (!f.has('name')) v.at(node, 'default_user.name is required');
  const shell = v.str(f.get('shell'), 'default_user.shell', (s) => (s.startsWith('/') ? null : 'must be an absolute path'));
  const gecos = v.str(f.get('gecos'), 'default_user.gecos', (s) => (s.includes(':') ? 'must not contain ":"' : null));
  const groups = v.strList(f.get('groups'), 'default_user.groups', (s) => (/^[a-z_][a-z0-9_-]*$/.test(s) ? null : `"${s}" is not a valid group name`));
  const sudoNode = f.get('sudo');
  let sudo: string | false = 'ALL=(ALL) NOPASSWD:ALL';
  if (isScalar(sudoNode) && sudoNode.value === false) sudo = false;
  else if (sudoNode !== undefined) {
    sudo = v.str(sudoNode, 'default_user.sudo', (s) => (/^[^\s=]+=/.test(s) ? null : 'must be a sudoers rule such as "ALL=(ALL) NOPASSWD:ALL", or false')) ?? sudo;
  }
  if (name !== undefined) {
    config.defaultUser = { name, groups: groups ?? ['adm', 'sudo'], shell: shell ?? '/bin/bash', gecos: gecos ?? 'Default user (imprint)', sudo };
  }
}

const SECTIONS: Record<string, (v: Validator, node: YamlNode | null, config: Config) => void> = {
  host_keys: hostKeysSection,
  passwords: passwordsSection,
  sshd: sshdSection,
  default_user: defaultUserSection,
};

/** Parses and validates config text. Throws ConfigError listing every problem as file:line:col. */
export function parseConfig(text: string, file: string): Config {
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false, uniqueKeys: true });
  const config = defaultConfig();
  config.source = file;
  const problems = doc.errors.map((e) => {
    const pos = e.linePos?.[0] ?? lines.linePos(e.pos[0]);
    return `${file}:${pos.line}:${pos.col}: ${e.message.split('\n')[0]}`;
  });
  if (problems.length > 0) throw new ConfigError(problems);
  if (doc.contents === null || (isScalar(doc.contents) && doc.contents.value === null)) return config;
  const v = new Validator(file, lines);
  const top = v.fields(doc.contents as YamlNode, 'the config', Object.keys(SECTIONS));
  for (const [key, node] of top) SECTIONS[key]?.(v, node, config);
  if (v.problems.length > 0) throw new ConfigError(v.problems);
  return config;
}
