import path from 'node:path';
import { unlink } from 'node:fs/promises';
import type { Task, TaskContext } from '../boot/task.js';
import type { TaskRecorder } from '../boot/report.js';
import { ImprintError } from '../os/errors.js';
import { readTreeText, shredTreeFile, statTree, writeTreeFileAtomic, listTreeDir } from '../os/files.js';
import { sshdRunner, type SshdRunner } from '../os/sshd.js';
import {
  commentLine, directiveLine, firstMatchIndex, parseEffectiveConfig, printSshdConfig, withValue, type SshdConfig, type SshdLine,
} from '../parsers/sshd-config.js';
import { expandIncludePattern, loadConfigSet, MAIN_CONFIG, type ConfigSet } from '../sshd/config-set.js';
import { aliasesOf, desiredSettings, normalValue, type Setting } from '../sshd/desired.js';

// Keys-only sshd. Where sshd_config includes sshd_config.d, imprint writes its own drop-in
// that sshd reads first; lines read before it that disagree (in sshd_config above the Include,
// or an earlier drop-in) are edited in place. Without the Include, sshd_config itself is edited,
// keeping comments and unrelated lines. Every candidate is checked with the right sshd
// (`sshd -T`, which parses and validates like -t) before it replaces anything; after the
// replacement the real files are checked again and rolled back if sshd rejects them.

export const DROP_IN = '/etc/ssh/sshd_config.d/00-imprint.conf';
const CHECK_PREFIX = '.imprint-check-';

export interface SshdPlan {
  mode: 'drop-in' | 'in-place';
  /** In-tree path → new content, for every file that changes. */
  candidates: Map<string, string>;
  /** Human lines: what changes and why. */
  changes: string[];
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

/** Works out every file change that makes the desired settings the ones sshd keeps. */
export async function planSshdConfig(ctx: TaskContext): Promise<SshdPlan> {
  const settings = desiredSettings(ctx.config);
  const current = await loadConfigSet(ctx.root);
  const dropInMode = await includesDropInDir(ctx, current);
  const candidates = new Map<string, string>();
  const changes: string[] = [];

  if (dropInMode) {
    const text = dropInText(settings);
    if ((await readTreeText(ctx.root, DROP_IN)) !== text) {
      candidates.set(DROP_IN, text);
      changes.push(`write ${DROP_IN}: ${settings.map((s) => `${s.keyword} ${s.value}`).join(', ')}`);
    }
  }
  const set = await loadConfigSet(ctx.root, candidates);
  const edits = new Map<string, Map<number, string>>();
  const missing: Setting[] = [];
  for (const s of settings) {
    const keys = aliasesOf(s.keyword.toLowerCase());
    const first = set.order.find((r) => r.global && r.line.kind === 'directive' && keys.includes(r.line.key));
    if (!first) {
      missing.push(s);
      continue;
    }
    if (first.file === DROP_IN && dropInMode) continue;
    if (normalValue(first.line.value) === normalValue(s.value)) continue;
    const fileEdits = edits.get(first.file) ?? new Map<number, string>();
    fileEdits.set(first.index, s.value);
    edits.set(first.file, fileEdits);
    changes.push(`${first.file}:${first.index + 1}: "${first.line.raw.trim()}" → ${s.value} (read before imprint's setting)`);
  }

  for (const [file, fileEdits] of edits) {
    const config = set.files.get(file) as SshdConfig;
    const lines: SshdLine[] = [];
    config.lines.forEach((line, i) => {
      const value = fileEdits.get(i);
      if (value === undefined) lines.push(line);
      else lines.push(commentLine(`imprint: was "${line.raw.trim()}"`, line.inMatch), withValue(line, value));
    });
    if (file === MAIN_CONFIG && !dropInMode) insertMissing(lines, missing);
    candidates.set(file, printSshdConfig({ ...config, lines }));
  }
  if (!dropInMode && missing.length > 0 && !edits.has(MAIN_CONFIG)) {
    const main = set.files.get(MAIN_CONFIG) as SshdConfig;
    const lines = [...main.lines];
    insertMissing(lines, missing);
    candidates.set(MAIN_CONFIG, printSshdConfig({ ...main, lines, finalNewline: true }));
  }
  if (!dropInMode) for (const s of missing) changes.push(`${MAIN_CONFIG}: add ${s.keyword} ${s.value}`);
  return { mode: dropInMode ? 'drop-in' : 'in-place', candidates, changes };
}

function insertMissing(lines: SshdLine[], missing: Setting[]): void {
  if (missing.length === 0) return;
  // Global settings must come before the first Match block to apply to every connection.
  const at = firstMatchIndex({ file: '', lines, finalNewline: true });
  lines.splice(at, 0, commentLine('imprint: keys-only SSH (added at first boot)'), ...missing.map((s) => directiveLine(s.keyword, s.value)));
}

async function includesDropInDir(ctx: TaskContext, set: ConfigSet): Promise<boolean> {
  for (const site of set.includes.filter((s) => s.file === MAIN_CONFIG && s.global)) {
    for (const pattern of site.patterns) {
      if ((await expandIncludePattern(ctx.root, pattern, [DROP_IN])).includes(DROP_IN)) return true;
    }
  }
  return false;
}

function quote(p: string): string {
  return /\s/.test(p) ? `"${p}"` : p;
}

function stagedPath(file: string): string {
  return `${path.posix.dirname(file)}/${CHECK_PREFIX}${path.posix.basename(file)}`;
}

/**
 * Checks candidates before they replace anything: each is written under a hidden name (which
 * no `*.conf` glob matches), and a staged sshd_config names them explicitly in its Includes.
 */
async function checkCandidates(ctx: TaskContext, runner: SshdRunner, candidates: Map<string, string>): Promise<Map<string, string[]>> {
  const set = await loadConfigSet(ctx.root, candidates);
  const main = set.files.get(MAIN_CONFIG) as SshdConfig;
  for (const file of candidates.keys()) {
    if (file === MAIN_CONFIG) continue;
    const direct = set.includes.some((s) => s.file === MAIN_CONFIG && s.matches.includes(file));
    if (!direct) throw new ImprintError(`${file} is included from a nested Include; imprint cannot check an edit there`);
  }
  const lines = main.lines.map((line, i) => {
    const site = set.includes.find((s) => s.file === MAIN_CONFIG && s.index === i);
    if (!site || !site.matches.some((m) => candidates.has(m))) return line;
    const files = site.matches.map((m) => (candidates.has(m) ? stagedPath(m) : m));
    // An Include whose glob now matches nothing must stay valid: name the glob itself.
    return withValue(line, files.length > 0 ? files.map(quote).join(' ') : line.value);
  });
  const staged = new Map<string, string>();
  for (const [file, text] of candidates) if (file !== MAIN_CONFIG) staged.set(stagedPath(file), text);
  staged.set(stagedPath(MAIN_CONFIG), printSshdConfig({ ...main, lines }));
  try {
    for (const [file, text] of staged) await writeTreeFileAtomic(ctx.root, file, text, { mode: 0o600, uid: 0, gid: 0 });
    return parseEffectiveConfig(await runner.effective(stagedPath(MAIN_CONFIG)));
  } finally {
    for (const file of staged.keys()) await unlink(ctx.root.path(file)).catch(() => undefined);
  }
}

/** Removes check files a killed run may have left behind. */
async function removeStaleChecks(ctx: TaskContext): Promise<void> {
  for (const dir of ['/etc/ssh', '/etc/ssh/sshd_config.d']) {
    for (const name of await listTreeDir(ctx.root, dir)) {
      if (name.startsWith(CHECK_PREFIX)) await unlink(ctx.root.path(`${dir}/${name}`)).catch(() => undefined);
    }
  }
}

function unmet(settings: Setting[], effective: Map<string, string[]>): string[] {
  const problems: string[] = [];
  for (const s of settings.filter((x) => x.required)) {
    const got = effective.get(s.keyword.toLowerCase())?.[0];
    if (got === undefined || normalValue(got) !== normalValue(s.value)) problems.push(`${s.keyword} is ${got ?? 'unset'}, not ${s.value}`);
  }
  return problems;
}

const REPORTED = ['passwordauthentication', 'kbdinteractiveauthentication', 'permitrootlogin', 'pubkeyauthentication', 'permitemptypasswords', 'usedns', 'usepam', 'authenticationmethods', 'port', 'hostkey', 'authorizedkeysfile'];

export const sshdConfigTask: Task = {
  name: 'sshd-config',
  phase: 'local',
  after: ['host-keys'],

  disabledBecause: (config) => (config.sshd.enabled ? null : 'sshd.enabled is false'),

  async plan(ctx) {
    if ((await statTree(ctx.root, MAIN_CONFIG)) === null) return [`skip: no ${MAIN_CONFIG} (sshd is not installed)`];
    const plan = await planSshdConfig(ctx);
    if (plan.changes.length === 0) return ['no change: sshd already keeps the keys-only settings'];
    return [`mode: ${plan.mode}`, ...plan.changes.map((c) => `would ${c}`), 'would check the result with sshd -T before replacing anything'];
  },

  async run(ctx: TaskContext, rec: TaskRecorder) {
    if ((await statTree(ctx.root, MAIN_CONFIG)) === null) {
      rec.action(`no ${MAIN_CONFIG}: sshd is not installed, nothing to harden`);
      return 'skipped';
    }
    await removeStaleChecks(ctx);
    const runner = await sshdRunner(ctx.root);
    const settings = desiredSettings(ctx.config);
    const plan = await planSshdConfig(ctx);
    rec.verbose(`checking with sshd in ${runner.mode} mode`);

    let effectiveText: string;
    if (plan.candidates.size > 0) {
      try {
        await checkCandidates(ctx, runner, plan.candidates);
      } catch (err) {
        throw new ImprintError(`sshd rejected the new configuration; the old one is kept: ${(err as Error).message}`);
      }
      const previous = new Map<string, { text: string | null; mode: number; uid: number; gid: number }>();
      for (const file of plan.candidates.keys()) {
        const info = await statTree(ctx.root, file);
        previous.set(file, { text: await readTreeText(ctx.root, file), mode: info ? info.mode & 0o7777 : 0o644, uid: info?.uid ?? 0, gid: info?.gid ?? 0 });
      }
      for (const [file, text] of plan.candidates) {
        const old = previous.get(file);
        await writeTreeFileAtomic(ctx.root, file, text, { mode: old?.mode ?? 0o644, uid: old?.uid ?? 0, gid: old?.gid ?? 0 });
      }
      for (const change of plan.changes) rec.action(change);
      try {
        // The real files, read the way sshd will read them: the proof, and the effective settings.
        effectiveText = await runner.effective(MAIN_CONFIG);
      } catch (err) {
        for (const [file, old] of previous) {
          if (old.text === null) await shredTreeFile(ctx.root, file);
          else await writeTreeFileAtomic(ctx.root, file, old.text, old);
        }
        throw new ImprintError(`sshd rejected the written configuration; rolled back to the old files: ${(err as Error).message}`);
      }
    } else {
      rec.action('sshd already keeps the keys-only settings; no file changed');
      effectiveText = await runner.effective(MAIN_CONFIG);
    }

    const effective = parseEffectiveConfig(effectiveText);
    const summary = Object.fromEntries(REPORTED.filter((k) => effective.has(k)).map((k) => [k, (effective.get(k) as string[]).join(', ')]));
    rec.detail('mode', plan.mode);
    rec.detail('checkedWith', runner.mode);
    rec.detail('effective', summary);
    rec.action(`effective: ${['passwordauthentication', 'kbdinteractiveauthentication', 'pubkeyauthentication', 'permitrootlogin', 'permitemptypasswords'].map((k) => `${k} ${summary[k] ?? '?'}`).join(', ')}`);
    const problems = unmet(settings, effective);
    if (problems.length > 0) throw new ImprintError(`sshd does not keep keys-only settings: ${problems.join('; ')}`);
    return undefined;
  },
};
