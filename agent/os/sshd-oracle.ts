import { access, constants, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { errorMessage, ImprintError } from './errors.js';
import { run } from './exec.js';
import type { RootTree } from './root.js';
import { runSandboxed, type SandboxFile, type SandboxSpec } from './sandbox.js';
import { resolveInTree, statResolved } from './tree-read.js';
import { parseEffectiveConfig as parseSshdSettings } from '../parsers/sshd-config.js';

// The judge of every sshd decision and claim, for boot and audit alike: the sshd that will
// actually run, asked with `sshd -T` (which parses and validates like -t and prints the
// effective settings), per connection with `-C user=...,host=...,addr=...,laddr=...,lport=...`
// so that Match blocks are evaluated by sshd itself.
//  - live: the instance's own sshd on its own files, run directly (it is the system's).
//  - image-sshd: an offline tree with its own sshd (that version's rules apply), run in the
//    sandbox (os/sandbox.ts) with the tree read-only at /: the image's code gets no privilege
//    over this machine.
//  - host-sshd: a tree without sshd; this machine's sshd in the same sandbox, shown only the
//    host's program directories (read-only) and the tree's /etc/ssh, passwd and group, so that
//    absolute Include and HostKey paths resolve into the tree, never to this machine's files.
// Queries are batched: one sandbox start runs sshd once per connection (a fixed script of the
// image's /bin/sh loops over the specs, passed as arguments). Candidate files that are not
// written yet are copied into the sandbox (or, live, into a private directory under /run) at
// `stageDir`; the caller names them there (sshd/staging.ts) and maps sshd's messages back.

export type SshdMode = 'live' | 'image-sshd' | 'host-sshd';

/** One connection as sshd's -C describes it; sshd needs user, host and addr. */
export interface ConnectionSpec {
  user: string;
  host: string;
  addr: string;
  laddr: string;
  lport: number;
  rdomain?: string;
}

export interface SshdQuery {
  /** The main config (-f); default /etc/ssh/sshd_config. */
  config?: string;
  /** Files to show sshd besides the tree's, at absolute paths under the oracle's stageDir. */
  files?: ReadonlyMap<string, string>;
  /** One answer per entry: null asks for the settings without -C (the global ones). */
  specs: readonly (ConnectionSpec | null)[];
  /** When sshd finds no host key (a sealed image), answer with a throwaway one instead of failing. */
  throwawayKey?: boolean;
}

export interface SshdAnswers {
  /** `sshd -T` settings per spec, keys lower-case; repeated keys keep every value in order. */
  answers: Map<string, string[]>[];
  /** A throwaway host key had to be supplied (the tree has no usable host key). */
  throwawayKey: boolean;
  /** How many sshd processes answered (for the report). */
  runs: number;
  /** How many processes imprint started for them (sandbox or sshd): the cost on the boot's path. */
  starts: number;
}

export interface SshdOracle {
  mode: SshdMode;
  /** Where query files are placed (they must be named under it). */
  stageDir: string;
  /** The version of the sshd that answers (major, minor), from `sshd -V`. */
  version(): Promise<[number, number] | null>;
  /** Throws SshdRejected with sshd's own message when it rejects the configuration. */
  effective(query: SshdQuery): Promise<SshdAnswers>;
}

/** sshd refused the configuration (or failed otherwise); the message is sshd's. */
export class SshdRejected extends ImprintError {
  constructor(readonly sshdMessage: string) {
    super(sshdMessage, 'command');
  }
}

export const MAIN_SSHD_CONFIG = '/etc/ssh/sshd_config';
const SSHD_PATHS = ['/usr/sbin/sshd', '/sbin/sshd'];
const SANDBOX_STAGE = '/run/imprint-check';
const THROWAWAY_KEY = '/run/imprint-throwaway-hostkey';
const SANDBOX_ERR = '/tmp/imprint-sshd-stderr';
const CONTEXT_MARK = '@@imprint-context';
const EXIT_MARK = '@@imprint-exit';

// Runs inside the sandbox only (its /tmp is private). Arguments: sshd, config, host key ("" for
// none), then the specs ("" for no -C). The specs are data, never part of the script.
const BATCH_SCRIPT = [
  'sshd=$1 cfg=$2 hk=$3; shift 3',
  'for spec do',
  `  printf '\\n${CONTEXT_MARK}\\n'`,
  '  set --',
  '  [ -n "$hk" ] && set -- -h "$hk"',
  '  [ -n "$spec" ] && set -- "$@" -C "$spec"',
  `  "$sshd" -T -f "$cfg" "$@" 2>${SANDBOX_ERR}`,
  `  printf '\\n${EXIT_MARK} %s\\n' "$?"`,
  `  cat ${SANDBOX_ERR}`,
  'done',
].join('\n');

export function specText(spec: ConnectionSpec): string {
  const parts = [`user=${spec.user}`, `host=${spec.host}`, `addr=${spec.addr}`, `laddr=${spec.laddr}`, `lport=${spec.lport}`];
  if (spec.rdomain !== undefined) parts.push(`rdomain=${spec.rdomain}`);
  return parts.join(',');
}

/**
 * sshd -T without -C refuses a configuration with Match LocalPort/LocalAddress/RDomain blocks
 * ("... not in connection test specification"); then the settings without -C are asked for a
 * connection that no such block is meant for: an account that does not exist, TEST-NET addresses.
 */
export const NEUTRAL_CONNECTION: ConnectionSpec = { user: 'imprint-no-such-user', host: 'imprint-check.invalid', addr: '192.0.2.10', laddr: '192.0.2.20', lport: 22 };

function needsFullSpec(err: unknown): boolean {
  return /not in connection test specification/i.test(errorMessage(err));
}

/** Runs a query; where sshd insists on a full -C, the spec-less entries are asked for NEUTRAL_CONNECTION. */
async function withFullSpecs(query: SshdQuery, ask: (q: SshdQuery) => Promise<SshdAnswers>): Promise<SshdAnswers> {
  try {
    return await ask(query);
  } catch (err) {
    if (!needsFullSpec(err) || !query.specs.includes(null)) throw err;
  }
  return ask({ ...query, specs: query.specs.map((s) => s ?? NEUTRAL_CONNECTION) });
}

function noHostKeys(message: string): boolean {
  return /no hostkeys available/i.test(message);
}

function withoutKey(settings: Map<string, string[]>, key: string): Map<string, string[]> {
  const keys = (settings.get('hostkey') ?? []).filter((k) => k !== key);
  if (keys.length > 0) settings.set('hostkey', keys);
  else settings.delete('hostkey');
  return settings;
}

async function executable(file: string): Promise<boolean> {
  return access(file, constants.X_OK).then(() => true, () => false);
}

async function firstExecutable(paths: string[]): Promise<string | undefined> {
  for (const p of paths) if (await executable(p)) return p;
  return undefined;
}

/** A fresh ed25519 key pair made by this machine's ssh-keygen in a private temp directory. */
async function throwawayKey(): Promise<Buffer> {
  const scratch = await mkdtemp(path.join(tmpdir(), 'imprint-hostkey-'));
  try {
    const key = path.join(scratch, 'hostkey');
    await run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'imprint throwaway', '-f', key]);
    return await readFile(key);
  } finally {
    await rm(scratch, { recursive: true, force: true });
  }
}

/** Splits the batch script's output into one settings map per spec; throws on the first failure. */
function parseBatch(stdout: string, count: number): Map<string, string[]>[] {
  const chunks = stdout.split(`\n${CONTEXT_MARK}\n`).slice(1);
  if (chunks.length !== count) throw new SshdRejected(`sshd answered ${chunks.length} of ${count} checks`);
  return chunks.map((chunk) => {
    const at = chunk.lastIndexOf(`\n${EXIT_MARK} `);
    if (at === -1) throw new SshdRejected('sshd -T gave no exit status');
    const rest = chunk.slice(at + EXIT_MARK.length + 2);
    const nl = rest.indexOf('\n');
    const code = Number(rest.slice(0, nl === -1 ? undefined : nl));
    const stderr = nl === -1 ? '' : rest.slice(nl + 1).trim();
    if (code !== 0) throw new SshdRejected(stderr.split('\n').slice(-6).join(' / ') || `sshd -T exit status ${code}`);
    return parseSshdSettings(chunk.slice(0, at));
  });
}

function sandboxed(mode: 'image-sshd' | 'host-sshd', sshd: string, base: SandboxSpec): SshdOracle {
  const ask = async (query: SshdQuery, key: Buffer | null): Promise<Map<string, string[]>[]> => {
    const files: SandboxFile[] = [...(query.files ?? new Map<string, string>())].map(([at, data]) => ({ at, data, mode: 0o600 }));
    if (key) files.push({ at: THROWAWAY_KEY, data: key, mode: 0o600 });
    const specs = query.specs.map((s) => (s === null ? '' : specText(s)));
    const spec: SandboxSpec = { ...base, dirs: ['/run/sshd'], files };
    const out = await runSandboxed(spec, '/bin/sh', ['-c', BATCH_SCRIPT, 'imprint-sshd-check', sshd, query.config ?? MAIN_SSHD_CONFIG, key ? THROWAWAY_KEY : '', ...specs]);
    return parseBatch(out.stdout, specs.length);
  };
  return {
    mode,
    stageDir: SANDBOX_STAGE,
    version: async () => {
      const out = await runSandboxed({ ...base, okCodes: [1] }, sshd, ['-V']).catch(() => null);
      return versionIn(`${out?.stderr ?? ''}${out?.stdout ?? ''}`);
    },
    effective: (q) => withFullSpecs(q, async (query) => {
      try {
        return { answers: await ask(query, null), throwawayKey: false, runs: query.specs.length, starts: 1 };
      } catch (err) {
        if (!query.throwawayKey || !noHostKeys(errorMessage(err))) throw err;
      }
      const answers = await ask(query, await throwawayKey());
      return { answers: answers.map((a) => withoutKey(a, THROWAWAY_KEY)), throwawayKey: true, runs: 2 * query.specs.length, starts: 2 };
    }),
  };
}

function versionIn(text: string): [number, number] | null {
  const m = /OpenSSH_(\d+)\.(\d+)/.exec(text);
  return m ? [Number(m[1]), Number(m[2])] : null;
}

/** The live system's sshd, run directly; query files go to a private directory under /run. */
function liveOracle(sshd: string): SshdOracle {
  const stageDir = `/run/imprint-sshd-check.${process.pid}`;
  const once = async (query: SshdQuery, spec: ConnectionSpec | null, key: string | null): Promise<Map<string, string[]>> => {
    const args = ['-T', '-f', query.config ?? MAIN_SSHD_CONFIG];
    if (key) args.push('-h', key);
    if (spec) args.push('-C', specText(spec));
    try {
      return parseSshdSettings((await run(sshd, args)).stdout);
    } catch (err) {
      throw new SshdRejected(errorMessage(err).replace(`${sshd} failed: `, ''));
    }
  };
  const batch = async (query: SshdQuery, key: string | null): Promise<Map<string, string[]>[]> => {
    // sshd refuses to check a config without its privilege-separation directory; on a booted
    // system it belongs there anyway (ssh.service creates the same directory).
    await mkdir('/run/sshd', { recursive: true, mode: 0o755 });
    const out: Map<string, string[]>[] = [];
    for (const spec of query.specs) out.push(await once(query, spec, key));
    return out;
  };
  return {
    mode: 'live',
    stageDir,
    version: async () => {
      const out = await run(sshd, ['-V'], { okCodes: [1] }).catch(() => null);
      return versionIn(`${out?.stderr ?? ''}${out?.stdout ?? ''}`);
    },
    effective: (q) => withFullSpecs(q, async (query) => {
      const staged = [...(query.files ?? new Map<string, string>())];
      if (staged.length > 0) {
        await rm(stageDir, { recursive: true, force: true });
        await mkdir(stageDir, { mode: 0o700 });
      }
      try {
        for (const [file, text] of staged) {
          if (!file.startsWith(`${stageDir}/`)) throw new ImprintError(`internal: ${file} is not under ${stageDir}`);
          await mkdir(path.dirname(file), { recursive: true, mode: 0o700 });
          await writeFile(file, text, { mode: 0o600, flag: 'wx' });
        }
        try {
          return { answers: await batch(query, null), throwawayKey: false, runs: query.specs.length, starts: query.specs.length };
        } catch (err) {
          if (!query.throwawayKey || !noHostKeys(errorMessage(err))) throw err;
        }
        const scratch = await mkdtemp(path.join(tmpdir(), 'imprint-hostkey-'));
        try {
          const key = path.join(scratch, 'hostkey');
          await writeFile(key, await throwawayKey(), { mode: 0o600 });
          const answers = await batch(query, key);
          return { answers: answers.map((a) => withoutKey(a, key)), throwawayKey: true, runs: 2 * query.specs.length, starts: 2 * query.specs.length };
        } finally {
          await rm(scratch, { recursive: true, force: true });
        }
      } finally {
        if (staged.length > 0) await rm(stageDir, { recursive: true, force: true });
      }
    }),
  };
}

/** The host directories this machine's sshd (and /bin/sh) need to run, all read-only. */
const HOST_PROGRAM_DIRS = ['/usr', '/bin', '/sbin', '/lib', '/lib64', '/lib32', '/libx32', '/etc/ld.so.cache', '/etc/ld.so.conf', '/etc/ld.so.conf.d'];

/** The sshd that judges this tree; throws when none can run (no sshd, or no sandbox for a tree). */
export async function sshdOracle(root: RootTree): Promise<SshdOracle> {
  if (root.isLive) {
    const sshd = await firstExecutable(SSHD_PATHS);
    if (!sshd) throw new ImprintError('sshd is not installed: cannot validate sshd_config');
    return liveOracle(sshd);
  }
  for (const candidate of SSHD_PATHS) {
    const info = await statResolved(root, candidate);
    if (info?.isFile() && (info.mode & 0o111) !== 0) return sandboxed('image-sshd', candidate, { root: root.dir });
  }
  const hostSshd = await firstExecutable(SSHD_PATHS);
  if (!hostSshd) throw new ImprintError('the tree has no sshd and neither does this machine: cannot validate sshd_config');
  const binds = HOST_PROGRAM_DIRS.map((d) => ({ from: d, to: d, optional: true }));
  // Resolved inside the tree first: bwrap follows a symlink on this machine, and an image's
  // /etc/ssh → /etc/ssh link must not show sshd this machine's own directory.
  for (const [inTree, required] of [['/etc/ssh', true], ['/etc/passwd', false], ['/etc/group', false]] as const) {
    const resolved = await resolveInTree(root, inTree);
    if (resolved === null && required) throw new ImprintError(`the tree has no ${inTree}`);
    if (resolved !== null) binds.push({ from: root.path(resolved), to: inTree, optional: !required });
  }
  return sandboxed('host-sshd', hostSshd, { roBinds: binds });
}
