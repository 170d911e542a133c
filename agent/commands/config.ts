import { isMap, isScalar, LineCounter, parseDocument, type Node as YamlNode, type Pair } from 'yaml';
import type { CliArgs } from '../cli/args.js';
import { loadConfigLayers, readConfigLayers, type ConfigLayer } from '../cli/load-config.js';
import { ConfigError, type Config } from '../config.js';
import type { RootTree } from '../os/root.js';
import { statTree } from '../os/files.js';
import { MAIN_SSHD_CONFIG } from '../os/sshd-oracle.js';
import { sshdSettingsVerdict } from '../sshd/keys-only.js';
import { checkRoot } from './boot.js';

// `imprint config check` validates the config (the main file and its drop-ins) and then runs
// further checks on the valid result; `imprint config show` prints the effective config with
// where each value came from. Exit 2 on any problem, as boot does for a bad config.

/** A check beyond the file's own rules (sshd's verdict on sshd.settings...). */
export interface ConfigCheck {
  name: string;
  /** Problems found ([] = fine); each one line, ideally "file:line:col: message". */
  run(root: RootTree, config: Config): Promise<string[]>;
}

/**
 * Run in order on a config that parsed. sshd's verdict: the extra sshd.settings through the
 * image's own sshd (sandboxed, as boot checks them), so a keyword sshd rejects is caught here
 * and not at the first boot of every instance.
 */
export const CONFIG_CHECKS: ConfigCheck[] = [
  {
    name: 'sshd',
    run: async (root, config) => {
      const extras = config.sshd.enabled && Object.keys(config.sshd.settings).length > 0;
      if (!extras || (await statTree(root, MAIN_SSHD_CONFIG)) === null) return [];
      return sshdSettingsVerdict(root, config);
    },
  },
];

/** "FILE:LINE:COL: message", then the line and a caret under the column, as compilers do. */
export function withCaret(problem: string, layers: readonly ConfigLayer[]): string {
  const layer = layers.find((l) => problem.startsWith(`${l.file}:`));
  const m = layer ? /^:(\d+):(\d+): /.exec(problem.slice(layer.file.length)) : null;
  if (!layer || !m) return problem;
  const line = layer.text.split('\n')[Number(m[1]) - 1];
  if (line === undefined) return problem;
  const before = Array.from(line).slice(0, Number(m[2]) - 1).map((c) => (c === '\t' ? '\t' : ' ')).join('');
  return `${problem}\n  ${line}\n  ${before}^`;
}

const seconds = (ms: number): string => (ms % 1000 === 0 ? `${ms / 1000}s` : `${ms}ms`);
const size = (bytes: number): string => (bytes % (1024 * 1024) === 0 ? `${bytes / 1024 / 1024}MiB` : bytes % 1024 === 0 ? `${bytes / 1024}KiB` : `${bytes}`);

/** The config as the file spells it (snake_case keys, durations and sizes with their units). */
export function effectiveConfig(c: Config): Record<string, unknown> {
  return {
    coexist: c.coexist,
    host_keys: { enabled: c.hostKeys.enabled, types: c.hostKeys.types, rsa_bits: c.hostKeys.rsaBits, ecdsa_bits: c.hostKeys.ecdsaBits },
    passwords: { enabled: c.passwords.enabled, accounts: c.passwords.accounts, exclude: c.passwords.exclude, method: c.passwords.method },
    sshd: { enabled: c.sshd.enabled, permit_root_login: c.sshd.permitRootLogin, use_dns: c.sshd.useDns, settings: c.sshd.settings },
    default_user: c.defaultUser === null ? null : { name: c.defaultUser.name, groups: c.defaultUser.groups, shell: c.defaultUser.shell, gecos: c.defaultUser.gecos, sudo: c.defaultUser.sudo },
    metadata: {
      sources: c.metadata.sources, url: c.metadata.url, deadline: seconds(c.metadata.deadlineMs), request_timeout: seconds(c.metadata.requestTimeoutMs),
      imdsv1: c.metadata.imdsv1, max_body: size(c.metadata.maxBodyBytes),
    },
    authorized_keys: { enabled: c.authorizedKeys.enabled, user: c.authorizedKeys.user, allow_options: c.authorizedKeys.allowOptions },
    product_codes: { expected: c.productCodes.expected, source: c.productCodes.source, on_mismatch: c.productCodes.onMismatch, units: c.productCodes.units, certificate: c.productCodes.certificate },
  };
}

/** "section.key" (and "sshd.settings.Keyword") → "file:line" of the last file that set it. */
export function origins(layers: readonly ConfigLayer[]): Map<string, string> {
  const out = new Map<string, string>();
  for (const layer of layers) {
    const lines = new LineCounter();
    const doc = parseDocument(layer.text, { lineCounter: lines });
    const visit = (node: YamlNode | null | undefined, prefix: string, depth: number): void => {
      if (!isMap(node)) return;
      for (const pair of node.items as Pair<YamlNode, YamlNode | null>[]) {
        if (!isScalar(pair.key)) continue;
        const key = `${prefix}${String(pair.key.value)}`;
        out.set(key, `${layer.file}:${lines.linePos(pair.key.range?.[0] ?? 0).line}`);
        // Sections, and sshd.settings below them; a whole default_user is one value.
        if (depth === 0 && key !== 'default_user') visit(pair.value, `${key}.`, 1);
        if (key === 'sshd.settings') visit(pair.value, `${key}.`, 2);
      }
    };
    visit(doc.contents as YamlNode | null, '', 0);
  }
  return out;
}

/** A value as YAML: plain when YAML reads it back as the same string, else quoted. */
const scalar = (v: unknown): string => (typeof v === 'string' && /^[A-Za-z0-9_./:@()=+,-]+$/.test(v) && !/^(true|false|null|yes|no|on|off|y|n|~|[-+.\d][\d.e+-]*)$/i.test(v) ? v : JSON.stringify(v));

export function renderShow(config: Config, layers: readonly ConfigLayer[]): string {
  const from = origins(layers);
  const rows: [string, string][] = [];
  // default_user is one value: its fields come from where the section is (or are defaults).
  const where = (key: string): string => from.get(key.startsWith('default_user.') ? 'default_user' : key) ?? 'default';
  for (const [section, value] of Object.entries(effectiveConfig(config))) {
    if (value === null || typeof value !== 'object') {
      rows.push([`${section}: ${value === null ? 'null' : scalar(value)}`, where(section)]);
      continue;
    }
    rows.push([`${section}:`, '']);
    for (const [key, v] of Object.entries(value as Record<string, unknown>)) {
      if (key === 'settings' && typeof v === 'object' && v !== null && !Array.isArray(v)) {
        const entries = Object.entries(v as Record<string, string>);
        rows.push([`  settings:${entries.length === 0 ? ' {}' : ''}`, entries.length === 0 ? where('sshd.settings') : '']);
        for (const [kw, val] of entries) rows.push([`    ${kw}: ${scalar(val)}`, where(`sshd.settings.${kw}`)]);
        continue;
      }
      rows.push([`  ${key}: ${Array.isArray(v) ? `[${v.map(scalar).join(', ')}]` : scalar(v)}`, where(`${section}.${key}`)]);
    }
  }
  const width = Math.min(48, Math.max(...rows.map(([text]) => text.length)));
  const files = layers.length === 0 ? '# no config file: the built-in defaults' : `# from: ${layers.map((l) => l.file).join(', ')} (later files win)`;
  return `${files}\n${rows.map(([text, origin]) => (origin ? `${text.padEnd(width)}  # ${origin}` : text)).join('\n')}\n`;
}

export async function configCommand(args: CliArgs): Promise<number> {
  const root = await checkRoot(args.root);
  let loaded;
  try {
    loaded = await loadConfigLayers(root, args.config);
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    // Read again, unvalidated, only to quote the offending lines.
    const shown = await readConfigLayers(root, args.config).catch(() => []);
    if (args.json) process.stdout.write(`${JSON.stringify({ command: 'config', action: args.action, ok: false, exitCode: 2, errors: err.problems }, null, 2)}\n`);
    for (const p of err.problems) process.stderr.write(`imprint: ${withCaret(p, shown)}\n`);
    return 2;
  }
  const { config, layers } = loaded;
  if (args.action === 'show') {
    const from = Object.fromEntries(origins(layers));
    process.stdout.write(args.json ? `${JSON.stringify({ command: 'config', action: 'show', files: layers.map((l) => l.file), config: effectiveConfig(config), origins: from }, null, 2)}\n` : renderShow(config, layers));
    return 0;
  }
  const problems: string[] = [];
  for (const check of CONFIG_CHECKS) {
    try {
      problems.push(...(await check.run(root, config)));
    } catch (err) {
      problems.push(`${check.name}: could not check: ${err instanceof Error ? err.message : String(err)}`);
    }
  }
  const files = layers.length === 0 ? 'no config file (the built-in defaults)' : layers.map((l) => l.file).join(', ');
  if (args.json) process.stdout.write(`${JSON.stringify({ command: 'config', action: 'check', ok: problems.length === 0, exitCode: problems.length === 0 ? 0 : 2, files: layers.map((l) => l.file), errors: problems }, null, 2)}\n`);
  for (const p of problems) process.stderr.write(`imprint: ${withCaret(p, layers)}\n`);
  if (problems.length > 0) return 2;
  if (!args.json) process.stdout.write(`config OK: ${files}\n`);
  return 0;
}
