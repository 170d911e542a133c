import { isMap, isScalar, isSeq, LineCounter, parseDocument, type Node as YamlNode, type Pair } from 'yaml';
import { didYouMean, Validator } from './config/validator.js';

export { didYouMean, levenshtein } from './config/validator.js';
import type { HostKeyType } from './os/ssh-keygen.js';
import { PLATFORM_NAMES, type PlatformName } from './metadata/platforms/names.js';
import { splitZone } from './os/zoned-url.js';

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

export type MetadataSourceName = 'nocloud' | 'config-drive' | 'ec2';
export const METADATA_SOURCES: readonly MetadataSourceName[] = ['nocloud', 'config-drive', 'ec2'];
export const DEFAULT_METADATA_URL = 'http://169.254.169.254';

export interface MetadataConfig {
  /** Tried in this order; local seeds first, so a lab without a metadata service does not wait. */
  sources: MetadataSourceName[];
  url: string;
  deadlineMs: number;
  requestTimeoutMs: number;
  imdsv1: 'auto' | 'never';
  maxBodyBytes: number;
  /** The platform whose dialect is spoken; auto: detected from local signals (DMI, labels). */
  platform: 'auto' | PlatformName;
  /** Users the platform names for keys (GCE user:key, Azure adminUsername): created, only if they exist, or never. */
  platformUsers: 'create' | 'existing' | 'forbid';
  /** Take the platform's host name where the image has none of its own. */
  hostname: boolean;
}

export interface AuthorizedKeysConfig {
  enabled: boolean;
  /** The account whose ~/.ssh/authorized_keys gets the launch keys; 'auto' = default user, else root. */
  user: string | 'auto';
  /** Keep options (command=, from=...) that metadata puts before a key. Off: they are dropped. */
  allowOptions: boolean;
}

export interface ProductCodesConfig {
  /** Empty: no check. */
  expected: string[];
  source: 'metadata' | 'identity-document';
  onMismatch: 'warn' | 'fail' | 'stop-units';
  units: string[];
  /** PEM file (in the tree) of the region certificate that must have signed the identity document. */
  certificate: string | null;
}

/** First-boot disk and package work (late phase, after sshd is up). */
export type EphemeralFsChoice = 'ext4' | 'xfs' | 'btrfs' | 'swap' | 'none';
export interface DiskWorkConfig {
  growRoot: { enabled: boolean };
  /** Swap areas are switched off, zeroed, re-made with their UUID and label, switched on. */
  swap: { clear: boolean };
  /** null: no device named, nothing wiped (a device is never guessed). */
  ephemeralDisk: { device: string | null; filesystem: EphemeralFsChoice; label: string | null };
  packages: { upgrade: boolean; timeoutMs: number };
}

export interface Config extends DiskWorkConfig {
  /** The file the config came from, or null when the built-in defaults are used. */
  source: string | null;
  /** With cloud-init installed and enabled: leave the job to it, or do it anyway. */
  coexist: 'stand-aside' | 'take-over';
  hostKeys: { enabled: boolean; types: HostKeyType[] | 'auto'; rsaBits: number; ecdsaBits: number };
  passwords: { enabled: boolean; accounts: string[] | 'auto'; exclude: string[]; method: CryptChoice };
  /** settingsAt: where each extra setting stands in the config file ("file:line:col"), for sshd's verdict. */
  sshd: { enabled: boolean; permitRootLogin: PermitRootLogin; useDns: boolean; settings: Record<string, string>; settingsAt?: Record<string, string> };
  defaultUser: DefaultUser | null;
  metadata: MetadataConfig;
  authorizedKeys: AuthorizedKeysConfig;
  productCodes: ProductCodesConfig;
}

export function defaultConfig(): Config {
  return {
    source: null,
    coexist: 'stand-aside',
    hostKeys: { enabled: true, types: 'auto', rsaBits: 3072, ecdsaBits: 256 },
    passwords: { enabled: true, accounts: 'auto', exclude: [], method: 'auto' },
    sshd: { enabled: true, permitRootLogin: 'auto', useDns: false, settings: {} },
    defaultUser: null,
    metadata: { sources: [...METADATA_SOURCES], url: DEFAULT_METADATA_URL, deadlineMs: 120_000, requestTimeoutMs: 2_000, imdsv1: 'auto', maxBodyBytes: 64 * 1024, platform: 'auto', platformUsers: 'create', hostname: true },
    authorizedKeys: { enabled: true, user: 'auto', allowOptions: false },
    productCodes: { expected: [], source: 'metadata', onMismatch: 'warn', units: [], certificate: null },
    growRoot: { enabled: true },
    swap: { clear: false },
    ephemeralDisk: { device: null, filesystem: 'ext4', label: null },
    packages: { upgrade: false, timeoutMs: 20 * 60_000 },
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

export const userName = (s: string): string | null => (USER_NAME.test(s) ? null : `"${s}" is not a valid user name (lower case letters, digits, _ and -, at most 32)`);

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
    s.settingsAt = { ...s.settingsAt, [keyword]: v.where(pair.key) };
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

/** "120s", "500ms", "2m", or a bare number of seconds. */
export function parseDuration(text: string): number | null {
  const m = /^(\d+(?:\.\d+)?)\s*(ms|s|m)?$/.exec(text.trim());
  if (!m) return null;
  const n = Number.parseFloat(m[1] as string);
  return Math.round(n * (m[2] === 'ms' ? 1 : m[2] === 'm' ? 60_000 : 1000));
}

function parseSize(text: string): number | null {
  const m = /^(\d+)\s*(B|KiB|MiB)?$/.exec(text.trim());
  if (!m) return null;
  return Number.parseInt(m[1] as string, 10) * (m[2] === 'MiB' ? 1024 * 1024 : m[2] === 'KiB' ? 1024 : 1);
}

/** An http(s) URL with a host and nothing after the authority (paths are the client's). */
export function metadataUrlProblem(text: string): string | null {
  let url: URL;
  try {
    // A link-local address may carry its interface as RFC 6874's zone: [fe80::a9fe:a9fe%25eth0].
    url = new URL(splitZone(text).url);
  } catch {
    return `"${text}" is not a URL`;
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return 'must be an http:// or https:// URL';
  if (url.username || url.password || url.search || url.hash || (url.pathname !== '/' && url.pathname !== '')) return 'must be scheme://host[:port] only';
  return null;
}

function scalarText(node: YamlNode | null | undefined): string | undefined {
  if (!isScalar(node)) return undefined;
  return typeof node.value === 'number' ? String(node.value) : typeof node.value === 'string' ? node.value : undefined;
}

function metadataSection(v: Validator, node: YamlNode | null, config: Config): void {
  const f = v.fields(node, 'metadata', ['sources', 'url', 'deadline', 'request_timeout', 'imdsv1', 'max_body', 'platform', 'platform_users', 'hostname']);
  const m = config.metadata;
  const sources = v.strList(f.get('sources'), 'metadata.sources', (s) =>
    (METADATA_SOURCES as readonly string[]).includes(s) ? null : `must be one of ${METADATA_SOURCES.join(', ')}, not "${s}"${didYouMean(s, METADATA_SOURCES)}`);
  if (sources) m.sources = [...new Set(sources)] as MetadataSourceName[];
  const url = v.str(f.get('url'), 'metadata.url', metadataUrlProblem);
  if (url !== undefined) m.url = url.replace(/\/$/, '');
  for (const [key, field, min, max] of [['deadline', 'deadlineMs', 1_000, 3_600_000], ['request_timeout', 'requestTimeoutMs', 100, 60_000]] as const) {
    const node = f.get(key);
    if (node === undefined) continue;
    const ms = parseDuration(scalarText(node) ?? '');
    if (ms === null || ms < min || ms > max) v.at(node, `metadata.${key} must be a duration such as "120s" or "500ms" (a bare number is seconds), between ${min} ms and ${max / 1000} s`);
    else m[field] = ms;
  }
  m.imdsv1 = v.choice(f.get('imdsv1'), 'metadata.imdsv1', ['auto', 'never'] as const, m.imdsv1);
  m.platform = v.choice(f.get('platform'), 'metadata.platform', ['auto', ...PLATFORM_NAMES] as const, m.platform);
  m.platformUsers = v.choice(f.get('platform_users'), 'metadata.platform_users', ['create', 'existing', 'forbid'] as const, m.platformUsers);
  m.hostname = v.bool(f.get('hostname'), 'metadata.hostname', m.hostname);
  const maxBody = f.get('max_body');
  if (maxBody !== undefined) {
    const bytes = parseSize(scalarText(maxBody) ?? '');
    if (bytes === null || bytes < 1024 || bytes > 16 * 1024 * 1024) v.at(maxBody, 'metadata.max_body must be a size such as "64KiB", between 1KiB and 16MiB');
    else m.maxBodyBytes = bytes;
  }
}

function authorizedKeysSection(v: Validator, node: YamlNode | null, config: Config): void {
  const f = v.fields(node, 'authorized_keys', ['enabled', 'user', 'allow_options']);
  const a = config.authorizedKeys;
  a.enabled = v.bool(f.get('enabled'), 'authorized_keys.enabled', a.enabled);
  a.user = v.str(f.get('user'), 'authorized_keys.user', (s) => (s === 'auto' ? null : userName(s))) ?? a.user;
  a.allowOptions = v.bool(f.get('allow_options'), 'authorized_keys.allow_options', a.allowOptions);
}

function productCodesSection(v: Validator, node: YamlNode | null, config: Config): void {
  const f = v.fields(node, 'product_codes', ['expected', 'source', 'on_mismatch', 'units', 'certificate']);
  const p = config.productCodes;
  p.expected = v.strList(f.get('expected'), 'product_codes.expected', (s) => (/^[A-Za-z0-9._-]{1,128}$/.test(s) ? null : `"${s}" is not a product code`)) ?? p.expected;
  p.source = v.choice(f.get('source'), 'product_codes.source', ['metadata', 'identity-document'] as const, p.source);
  p.onMismatch = v.choice(f.get('on_mismatch'), 'product_codes.on_mismatch', ['warn', 'fail', 'stop-units'] as const, p.onMismatch);
  p.units = v.strList(f.get('units'), 'product_codes.units', (s) => (/^[A-Za-z0-9:_.@\\-]+\.(service|socket|timer|target|path)$/.test(s) ? null : `"${s}" is not a systemd unit name`)) ?? p.units;
  p.certificate = v.str(f.get('certificate'), 'product_codes.certificate', (s) => (s.startsWith('/') ? null : 'must be an absolute path')) ?? p.certificate;
  if (isMap(node)) {
    if (p.source === 'identity-document' && p.expected.length > 0 && p.certificate === null) v.at(node, 'product_codes.certificate is required with source: identity-document (the region certificate to pin)');
    if (p.onMismatch === 'stop-units' && p.units.length === 0) v.at(node, 'product_codes.units must name the units to stop with on_mismatch: stop-units');
  }
}

function growRootSection(v: Validator, node: YamlNode | null, config: Config): void {
  const f = v.fields(node, 'grow_root', ['enabled']);
  config.growRoot.enabled = v.bool(f.get('enabled'), 'grow_root.enabled', config.growRoot.enabled);
}

function swapSection(v: Validator, node: YamlNode | null, config: Config): void {
  const f = v.fields(node, 'swap', ['clear']);
  config.swap.clear = v.bool(f.get('clear'), 'swap.clear', config.swap.clear);
}

function ephemeralDiskSection(v: Validator, node: YamlNode | null, config: Config): void {
  const f = v.fields(node, 'ephemeral_disk', ['device', 'filesystem', 'label']);
  const e = config.ephemeralDisk;
  e.device = v.str(f.get('device'), 'ephemeral_disk.device', (s) => (/^\/dev\/[A-Za-z0-9._\/-]+$/.test(s) && !s.includes('..') ? null : 'must be a device path such as /dev/vdb')) ?? e.device;
  e.filesystem = v.choice(f.get('filesystem'), 'ephemeral_disk.filesystem', ['ext4', 'xfs', 'btrfs', 'swap', 'none'] as const, e.filesystem);
  e.label = v.str(f.get('label'), 'ephemeral_disk.label', (s) => (/^[A-Za-z0-9._-]{1,12}$/.test(s) ? null : 'must be 1 to 12 letters, digits, ".", "_" or "-"')) ?? e.label;
  if (isMap(node) && e.device === null && (f.has('filesystem') || f.has('label'))) v.at(node, 'ephemeral_disk.device is required: the disk to wipe is named, never guessed');
}

function packagesSection(v: Validator, node: YamlNode | null, config: Config): void {
  const f = v.fields(node, 'packages', ['upgrade', 'timeout']);
  const p = config.packages;
  p.upgrade = v.bool(f.get('upgrade'), 'packages.upgrade', p.upgrade);
  const timeout = f.get('timeout');
  if (timeout === undefined) return;
  const ms = parseDuration(scalarText(timeout) ?? '');
  if (ms === null || ms < 60_000 || ms > 6 * 3_600_000) v.at(timeout, 'packages.timeout must be a duration such as "20m", between 1 m and 360 m');
  else p.timeoutMs = ms;
}

const SECTIONS: Record<string, (v: Validator, node: YamlNode | null, config: Config) => void> = {
  host_keys: hostKeysSection,
  passwords: passwordsSection,
  sshd: sshdSection,
  default_user: defaultUserSection,
  metadata: metadataSection,
  authorized_keys: authorizedKeysSection,
  product_codes: productCodesSection,
  grow_root: growRootSection,
  swap: swapSection,
  ephemeral_disk: ephemeralDiskSection,
  packages: packagesSection,
};

/** Each key of a section → the section, for "rsa_bits belongs under host_keys" hints. */
export const SECTION_KEYS: Record<string, readonly string[]> = {
  host_keys: ['enabled', 'types', 'rsa_bits', 'ecdsa_bits'],
  passwords: ['enabled', 'accounts', 'exclude', 'method'],
  sshd: ['enabled', 'permit_root_login', 'use_dns', 'settings'],
  default_user: ['name', 'groups', 'shell', 'sudo', 'gecos'],
  metadata: ['sources', 'url', 'deadline', 'request_timeout', 'imdsv1', 'max_body', 'platform', 'platform_users', 'hostname'],
  authorized_keys: ['enabled', 'user', 'allow_options'],
  product_codes: ['expected', 'source', 'on_mismatch', 'units', 'certificate'],
  grow_root: ['enabled'],
  swap: ['clear'],
  ephemeral_disk: ['device', 'filesystem', 'label'],
  packages: ['upgrade', 'timeout'],
};

/**
 * Parses and validates config text. Throws ConfigError listing every problem as file:line:col.
 * With `base` (the config so far, for drop-ins), the file's values apply on top of it.
 */
export function parseConfig(text: string, file: string, base?: Config): Config {
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false, uniqueKeys: true });
  const config = base ? structuredClone(base) : defaultConfig();
  config.source = file;
  const problems = doc.errors.map((e) => {
    const pos = e.linePos?.[0] ?? lines.linePos(e.pos[0]);
    return `${file}:${pos.line}:${pos.col}: ${e.message.split('\n')[0]}`;
  });
  if (problems.length > 0) throw new ConfigError(problems);
  if (doc.contents === null || (isScalar(doc.contents) && doc.contents.value === null)) return config;
  const v = new Validator(file, lines, SECTION_KEYS);
  const top = v.fields(doc.contents as YamlNode, 'the config', [...Object.keys(SECTIONS), 'coexist']);
  for (const [key, node] of top) {
    if (key === 'coexist') config.coexist = v.choice(node, 'coexist', ['stand-aside', 'take-over'] as const, config.coexist);
    else SECTIONS[key]?.(v, node, config);
  }
  if (v.problems.length > 0) throw new ConfigError(v.problems);
  return config;
}
