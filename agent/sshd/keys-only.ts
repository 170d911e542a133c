import type { Config } from '../config.js';
import { ImprintError } from '../os/errors.js';
import { readTreeText } from '../os/files.js';
import type { RootTree } from '../os/root.js';
import { SshdRejected, specText, sshdOracle, type ConnectionSpec, type SshdAnswers, type SshdOracle } from '../os/sshd-oracle.js';
import { parseAccountFile, passwdEntries, type PasswdEntry } from '../parsers/accounts.js';
import {
  commentLine, directiveLine, firstArg, firstMatchIndex, printSshdConfig, withValue, type SshdConfig, type SshdLine,
} from '../parsers/sshd-config.js';
import { expandIncludePattern, loadConfigSet, MAIN_CONFIG, type ConfigSet } from './config-set.js';
import { connectionSpecs, matchBlocks, relevantUsers } from './contexts.js';
import { aliasesOf, desiredSettings, normalValue, permitRootLogin, type Setting } from './desired.js';
import { stageCandidates } from './staging.js';

// Keys-only sshd, decided and proved by the image's own sshd (os/sshd-oracle.ts).
// Where sshd_config includes sshd_config.d, imprint writes its own drop-in that sshd reads
// first; lines read before it that disagree (in sshd_config above the Include, or an earlier
// drop-in) are edited in place. Without the Include, sshd_config itself is edited. Inside Match
// blocks (in any file, indented or not, however deep the Include) every line that would turn
// password, keyboard-interactive or empty-password logins back on, or let root log in with a
// password, is edited in place with a marker. Every candidate is checked by sshd before it
// replaces anything; an operator's extra setting that sshd rejects is left out (the core
// keys-only settings still land) and reported at its place in imprint.yaml. Afterwards sshd is
// asked about every login context (`sshd -T -C`, one per account and Match block) and any
// context that still takes a password fails the task, naming the line responsible.

export const DROP_IN = '/etc/ssh/sshd_config.d/00-imprint.conf';

export interface SshdPlan {
  mode: 'drop-in' | 'in-place';
  /** In-tree path → new content, for every file that changes. */
  candidates: Map<string, string>;
  /** Human lines: what changes and why. */
  changes: string[];
  /** The lines written for each setting (to tie sshd's "file line N" messages to a setting). */
  written: { file: string; line: number; setting: Setting }[];
}

function dropInText(settings: Setting[]): string {
  return [
    '# Written by imprint at first boot: keys-only SSH for this instance.',
    '# sshd keeps the first value it reads, and this file is read first.',
    '# Change /etc/imprint/imprint.yaml rather than this file.',
    ...settings.map((s) => `${s.keyword} ${s.value}`),
    '',
  ].join('\n');
}
const DROP_IN_HEADER_LINES = 3;

/** The value a Match-block line must get instead of its own, or null when it is already safe. */
export function matchLineFix(key: string, value: string, config: Config): string | null {
  if (['passwordauthentication', 'kbdinteractiveauthentication', 'challengeresponseauthentication', 'permitemptypasswords'].includes(key)) {
    return value === 'no' ? null : 'no';
  }
  if (key === 'permitrootlogin' && value === 'yes') {
    const wanted = permitRootLogin(config);
    return wanted === 'no' ? 'no' : 'prohibit-password';
  }
  return null;
}

async function includesDropInDir(root: RootTree, set: ConfigSet): Promise<boolean> {
  for (const site of set.includes.filter((s) => s.file === MAIN_CONFIG && s.global)) {
    for (const pattern of site.patterns) {
      if ((await expandIncludePattern(root, pattern, [DROP_IN])).includes(DROP_IN)) return true;
    }
  }
  return false;
}

function insertMissing(lines: SshdLine[], missing: Setting[], written: Map<SshdLine, Setting>): void {
  if (missing.length === 0) return;
  // Global settings must come before the first Match block to apply to every connection.
  const at = firstMatchIndex({ file: '', lines, finalNewline: true });
  const added = missing.map((s) => {
    const line = directiveLine(s.keyword, s.value);
    written.set(line, s);
    return line;
  });
  lines.splice(at, 0, commentLine('imprint: keys-only SSH (added at first boot)'), ...added);
}

/** Works out every file change that makes the settings the ones sshd keeps, in every context. */
export async function planSshdConfig(root: RootTree, config: Config, settings: Setting[]): Promise<SshdPlan> {
  const current = await loadConfigSet(root);
  const dropInMode = await includesDropInDir(root, current);
  const candidates = new Map<string, string>();
  const changes: string[] = [];
  const written: SshdPlan['written'] = [];

  if (dropInMode) {
    const text = dropInText(settings);
    settings.forEach((s, i) => written.push({ file: DROP_IN, line: DROP_IN_HEADER_LINES + i + 1, setting: s }));
    if ((await readTreeText(root, DROP_IN)) !== text) {
      candidates.set(DROP_IN, text);
      changes.push(`write ${DROP_IN}: ${settings.map((s) => `${s.keyword} ${s.value}`).join(', ')}`);
    }
  }
  const set = await loadConfigSet(root, candidates);
  const edits = new Map<string, Map<number, { value: string; setting?: Setting }>>();
  const edit = (file: string, index: number, value: string, setting?: Setting): void => {
    const fileEdits = edits.get(file) ?? new Map<number, { value: string; setting?: Setting }>();
    fileEdits.set(index, { value, setting });
    edits.set(file, fileEdits);
  };
  const missing: Setting[] = [];
  for (const s of settings) {
    const keys = aliasesOf(s.keyword.toLowerCase());
    const first = set.order.find((r) => r.global && r.line.kind === 'directive' && keys.includes(r.line.key));
    if (!first) {
      missing.push(s);
      continue;
    }
    if (first.file === DROP_IN && dropInMode) continue;
    if (normalValue(firstArg(first.line)) === normalValue(s.value)) continue;
    edit(first.file, first.index, s.value, s);
    changes.push(`${first.file}:${first.index + 1}: "${first.line.raw.trim()}" → ${s.value} (read before imprint's setting)`);
  }
  for (const r of set.order) {
    if (r.global || r.line.kind !== 'directive') continue;
    const fix = matchLineFix(r.line.key, firstArg(r.line), config);
    if (fix === null || edits.get(r.file)?.has(r.index)) continue;
    edit(r.file, r.index, fix);
    changes.push(`${r.file}:${r.index + 1}: "${r.line.raw.trim()}" → ${fix} (inside a Match block: it would apply to the connections it matches)`);
  }

  const lineOf = new Map<SshdLine, Setting>();
  const finish = (file: string, config: SshdConfig, lines: SshdLine[], finalNewline = config.finalNewline): void => {
    candidates.set(file, printSshdConfig({ ...config, lines, finalNewline }));
    lines.forEach((l, i) => {
      const s = lineOf.get(l);
      if (s) written.push({ file, line: i + 1, setting: s });
    });
  };
  for (const [file, fileEdits] of edits) {
    const config = set.files.get(file) as SshdConfig;
    const lines: SshdLine[] = [];
    config.lines.forEach((line, i) => {
      const e = fileEdits.get(i);
      if (e === undefined) {
        lines.push(line);
        return;
      }
      const edited = withValue(line, e.value);
      if (e.setting) lineOf.set(edited, e.setting);
      const marker = commentLine(`imprint: was "${line.raw.trim()}"`, line.inMatch);
      lines.push({ ...marker, raw: `${/^[ \t]*/.exec(line.raw)?.[0] ?? ''}${marker.raw}` }, edited);
    });
    if (file === MAIN_CONFIG && !dropInMode) insertMissing(lines, missing, lineOf);
    finish(file, config, lines);
  }
  if (!dropInMode && missing.length > 0 && !edits.has(MAIN_CONFIG)) {
    const main = set.files.get(MAIN_CONFIG) as SshdConfig;
    const lines = [...main.lines];
    insertMissing(lines, missing, lineOf);
    finish(MAIN_CONFIG, main, lines, true);
  }
  if (!dropInMode) for (const s of missing) changes.push(`${MAIN_CONFIG}: add ${s.keyword} ${s.value}`);
  return { mode: dropInMode ? 'drop-in' : 'in-place', candidates, changes, written };
}

/** sshd -T on the candidate configuration (files not written yet), for the given connections. */
export async function checkCandidates(root: RootTree, oracle: SshdOracle, candidates: ReadonlyMap<string, string>, specs: (ConnectionSpec | null)[], throwawayKey: boolean): Promise<SshdAnswers> {
  const set = await loadConfigSet(root, candidates);
  const staged = stageCandidates(set, candidates, oracle.stageDir);
  try {
    return await oracle.effective({ config: staged.config, files: staged.files, specs, throwawayKey });
  } catch (err) {
    if (err instanceof SshdRejected) throw new SshdRejected(staged.unstage(err.sshdMessage));
    throw err;
  }
}

export interface RejectedSetting {
  setting: Setting;
  /** "imprint.yaml:line:col: sshd rejects Keyword value: why" */
  problem: string;
}

export interface SettledPlan {
  plan: SshdPlan;
  /** The settings that will be applied (core, and the extras sshd accepts). */
  settings: Setting[];
  rejected: RejectedSetting[];
  /** sshd -T runs the checks took (one per login context of each candidate checked). */
  runs: number;
  /** Processes started for them (one sandbox per candidate checked). */
  starts: number;
  /**
   * sshd's proof on the candidate files as checked (every login context, in the same run as the
   * check), when there are candidates; files written byte for byte as checked need no other.
   */
  proof?: KeysOnlyProof;
}

/** sshd's messages about one file line ("<file> line <n>: ..."), or null when it names none. */
function messagesAbout(message: string, file: string, line: number): string | null {
  const parts = message.split(' / ').map((p) => p.trim());
  const prefix = new RegExp(`^${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:? line ${line}:\\s*`);
  const about = parts.filter((p) => prefix.test(p)).map((p) => p.replace(prefix, ''));
  return about.length > 0 ? about.join('; ') : null;
}

/**
 * Plans the change and has sshd check it, leaving out the operator's extra settings that sshd
 * rejects (each reported at its place in imprint.yaml). Throws when sshd rejects even the core.
 */
export async function settlePlan(root: RootTree, config: Config, oracle: SshdOracle, throwawayKey: boolean): Promise<SettledPlan> {
  let settings = desiredSettings(config);
  const rejected: RejectedSetting[] = [];
  let runs = 0;
  let starts = 0;
  for (;;) {
    const plan = await planSshdConfig(root, config, settings);
    if (plan.candidates.size === 0) return { plan, settings, rejected, runs, starts };
    try {
      // The check and the proof in one sandbox: sshd -T without -C, then with -C per context.
      const proof = await proveKeysOnly(root, oracle, { throwawayKey, candidates: plan.candidates });
      return { plan, settings, rejected, runs: runs + proof.runs, starts: starts + proof.starts, proof };
    } catch (err) {
      runs += 1;
      starts += 1;
      if (!(err instanceof SshdRejected)) throw err;
      const extras = settings.filter((s) => s.from !== undefined);
      const named = plan.written.filter((w) => w.setting.from !== undefined).map((w) => ({ w, why: messagesAbout(err.sshdMessage, w.file, w.line) })).filter((x) => x.why !== null);
      if (extras.length === 0) throw new ImprintError(`sshd rejected the new configuration; the old one is kept: ${err.sshdMessage}`);
      const culprits = named.length > 0 ? named.map((x) => ({ setting: x.w.setting, why: x.why as string })) : extras.map((s) => ({ setting: s, why: err.sshdMessage }));
      for (const c of culprits) {
        if (rejected.some((r) => r.setting === c.setting)) continue;
        rejected.push({ setting: c.setting, problem: `${c.setting.from}: sshd rejects ${c.setting.keyword} ${c.setting.value}: ${c.why}` });
      }
      settings = settings.filter((s) => !culprits.some((c) => c.setting === s));
    }
  }
}

/**
 * sshd's verdict on the configured settings for this tree: one "file:line:col: sshd rejects ..."
 * problem per extra setting it rejects (empty when it accepts them all). For `imprint config check`.
 */
export async function sshdSettingsVerdict(root: RootTree, config: Config, oracle?: SshdOracle): Promise<string[]> {
  return (await settlePlan(root, config, oracle ?? (await sshdOracle(root)), true)).rejected.map((r) => r.problem);
}

export interface KeysOnlyProof {
  /** `sshd -T` without -C: the global settings. */
  global: Map<string, string[]>;
  contexts: ConnectionSpec[];
  /** Contexts that still take a password, with the lines responsible. */
  failures: string[];
  runs: number;
  starts: number;
  throwawayKey: boolean;
}

async function loginAccounts(root: RootTree): Promise<PasswdEntry[]> {
  try {
    return passwdEntries(parseAccountFile((await readTreeText(root, '/etc/passwd')) ?? '', 'passwd', '/etc/passwd'));
  } catch {
    // An /etc/passwd imprint cannot read whole: root and sshd's plain contexts still get proved.
    return [];
  }
}

const PASSWORD_KEYS: [string, (v: string) => boolean][] = [
  ['passwordauthentication', (v) => v !== 'no'],
  ['kbdinteractiveauthentication', (v) => v !== 'no'],
  ['permitemptypasswords', (v) => v !== 'no'],
];

/** Asks sshd about every login context of the configuration as it is on disk. */
export async function proveKeysOnly(root: RootTree, oracle: SshdOracle, opts: { throwawayKey?: boolean; candidates?: ReadonlyMap<string, string> } = {}): Promise<KeysOnlyProof> {
  const set = await loadConfigSet(root, opts.candidates);
  const blocks = matchBlocks(set);
  const contexts = connectionSpecs(blocks, relevantUsers(blocks, await loginAccounts(root)));
  const specs: (ConnectionSpec | null)[] = [null, ...contexts];
  const answers = opts.candidates
    ? await checkCandidates(root, oracle, opts.candidates, specs, opts.throwawayKey ?? false)
    : await oracle.effective({ specs, throwawayKey: opts.throwawayKey });
  const failures: string[] = [];
  contexts.forEach((spec, i) => {
    const got = answers.answers[i + 1] as Map<string, string[]>;
    const open: string[] = [];
    for (const [key, bad] of PASSWORD_KEYS) {
      const v = (got.get(key)?.[0] ?? '').toLowerCase();
      if (bad(v)) open.push(`${key} ${v}`);
    }
    if (spec.user === 'root' && (got.get('permitrootlogin')?.[0] ?? '') === 'yes' && open.length > 0) open.push('permitrootlogin yes');
    if (open.length === 0) return;
    const keys = open.map((o) => o.split(' ')[0] as string).flatMap((k) => aliasesOf(k));
    const culprits = set.order.filter((r) => r.line.kind === 'directive' && keys.includes(r.line.key) && firstArg(r.line) !== 'no')
      .map((r) => `${r.file}:${r.index + 1} (${r.line.raw.trim()})`);
    failures.push(`${specText(spec)}: ${open.join(', ')}${culprits.length > 0 ? `; set by ${culprits.join(', ')}` : ' (sshd\'s default: no line sets it)'}`);
  });
  return { global: answers.answers[0] as Map<string, string[]>, contexts, failures, runs: answers.runs, starts: answers.starts, throwawayKey: answers.throwawayKey };
}
