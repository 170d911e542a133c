import type { CliArgs } from '../cli/args.js';
import { kernelCommandLine } from '../os/boot-environment.js';
import type { RootTree } from '../os/root.js';
import { bootProcessRuns, imprintUnitState, type UnitState } from '../os/unit-state.js';
import { delay } from '../metadata/deadline.js';
import { LAST_BOOT_REPORT, REPORT_FORMAT_VERSION, RUN_REPORT, loadReport, type FinishedReport, type SavedReport } from '../boot/saved-report.js';
import { checkRoot } from './boot.js';

// `imprint status`: what imprint did on this boot, from the saved report (and, on a live
// system, from systemd while no report exists yet). --wait polls until the boot has finished:
// for Packer and scripts that must not log in before the launch key is in place.

export type State = 'done' | 'done-with-warnings' | 'failed' | 'interrupted' | 'running' | 'stood-aside' | 'disabled' | 'not-run';

/** Exit status per state (documented in `imprint status --help` and imprint(8)). */
export const STATUS_EXIT: Record<State, number> = {
  done: 0,
  'done-with-warnings': 2,
  failed: 1,
  interrupted: 1,
  running: 4,
  'stood-aside': 3,
  disabled: 3,
  'not-run': 3,
};

export interface Status {
  formatVersion: number;
  state: State;
  exitCode: number;
  /** One line: why, in words. */
  summary: string;
  /** When the state began (the boot's start or end), if known. */
  since: string | null;
  /** This boot's saved report (packaging/schema/boot-report.schema.json), or null. */
  report: SavedReport | null;
  /** The last finished boot's, when this boot has none. */
  lastBoot: FinishedReport | null;
  /** What systemd said (live system only). */
  unit: UnitState | null;
  /** Files that exist but could not be read as reports. */
  problems: string[];
}

function warningsOf(report: FinishedReport): string[] {
  const fromTasks = report.tasks.flatMap((t) => t.warnings.map((w) => `${t.task}: ${w}`));
  const fromMetadata = report.metadata?.error && report.status === 'ok' ? [`metadata: ${report.metadata.error}`] : [];
  return [...fromTasks, ...fromMetadata];
}

/** The state a finished report describes. */
export function finishedState(report: FinishedReport): { state: State; summary: string } {
  if (report.stoodAside) return { state: 'stood-aside', summary: report.stoodAside };
  if (report.status === 'failed') {
    const failed = report.tasks.filter((t) => t.status === 'failed');
    const what = failed.length > 0 ? failed.map((t) => `${t.task} (${t.error ?? 'failed'})`).join(', ') : (report.error ?? 'the boot stopped');
    return { state: 'failed', summary: `failed: ${what}; the rest is done, and the next boot retries what failed` };
  }
  const warnings = warningsOf(report);
  if (warnings.length > 0) return { state: 'done-with-warnings', summary: `done, with ${warnings.length} warning(s)` };
  return { state: 'done', summary: 'done' };
}

export async function readStatus(root: RootTree): Promise<Status> {
  const problems: string[] = [];
  const current = await loadReport(root, RUN_REPORT);
  if (current.problem) problems.push(current.problem);
  // The kept copy only when this boot has none (it is root's alone: /var/lib/imprint is 0700).
  const last = current.report ? { report: null, problem: null } : await loadReport(root, LAST_BOOT_REPORT);
  if (last.problem) problems.push(last.problem);
  const lastBoot = last.report && last.report.status !== 'running' ? last.report : null;
  const unit = root.isLive ? await imprintUnitState() : null;
  const base = { formatVersion: REPORT_FORMAT_VERSION, report: current.report, lastBoot: current.report ? null : lastBoot, unit, problems };
  const make = (state: State, summary: string, since: string | null): Status => ({ ...base, state, exitCode: STATUS_EXIT[state], summary, since });

  const report = current.report;
  if (report?.status === 'running') {
    if (await bootProcessRuns(report.pid)) return make('running', `running (pid ${report.pid})`, report.startedAt);
    return make('interrupted', `the boot (pid ${report.pid}) ended without finishing its report (killed, or the machine stopped); the next boot redoes what was not done`, report.startedAt);
  }
  if (report) {
    const { state, summary } = finishedState(report);
    return make(state, summary, report.finishedAt);
  }
  if ((await kernelCommandLine(root)).includes('imprint=disabled') || unit?.conditionResult === 'no') {
    return make('disabled', 'imprint=disabled is on the kernel command line', null);
  }
  if (unit && (unit.activeState === 'activating' || unit.activeState === 'reloading')) return make('running', 'imprint.service is starting', null);
  if (unit && unit.activeState === 'failed') return make('failed', `imprint.service failed (${unit.result}) without a report: see journalctl -u imprint`, null);
  if (unit && (unit.unitFileState === 'disabled' || unit.unitFileState === 'masked') && unit.activeState === 'inactive') {
    return make('disabled', `imprint.service is ${unit.unitFileState}`, null);
  }
  return make('not-run', `not run on this boot${lastBoot ? ` (last boot: ${finishedState(lastBoot).summary}, ${lastBoot.finishedAt})` : ''}`, null);
}

/** States that may still change on this boot: --wait waits through them. */
const UNSETTLED: readonly State[] = ['running', 'not-run'];

const seconds = (ms: number): string => `${(ms / 1000).toFixed(ms < 10_000 ? 1 : 0)} s`;

export function renderStatus(status: Status, long: boolean): string {
  const lines = [`status: ${status.state}`, `  ${status.summary}`];
  const r = status.report && status.report.status !== 'running' ? status.report : null;
  if (status.since) lines.push(`since: ${status.since}`);
  if (r) {
    const took = Date.parse(r.finishedAt) - Date.parse(r.startedAt);
    lines.push(`boot: imprint ${r.version}, ${seconds(took)}, instance ${r.instance.id || '(none)'}${r.instance.previous ? ` (was ${r.instance.previous})` : ''}`);
    if (r.metadata) lines.push(`metadata: ${r.metadata.source ?? 'none'}${r.metadata.protocol ? ` (${r.metadata.protocol})` : ''}${r.metadata.error ? `: ${r.metadata.error}` : ''}`);
    if (long) {
      const width = Math.max(4, ...r.tasks.map((t) => t.task.length));
      for (const t of r.tasks) {
        lines.push(`  ${t.task.padEnd(width)}  ${t.status.padEnd(9)}  ${seconds(t.durationMs)}`);
        if (t.error) lines.push(`    error: ${t.error}${t.status === 'failed' ? ' (retried at the next boot)' : ''}`);
        for (const w of t.warnings) lines.push(`    warning: ${w}`);
        for (const a of t.actions) lines.push(`    ${a}`);
      }
      if (r.error) lines.push(`  error: ${r.error}`);
    } else {
      for (const w of warningsOf(r)) lines.push(`warning: ${w}`);
    }
  }
  for (const p of status.problems) lines.push(`problem: ${p}`);
  if (long && status.unit) lines.push(`unit: imprint.service ${status.unit.activeState} (${status.unit.subState}), result ${status.unit.result}, ${status.unit.unitFileState}`);
  if (status.state === 'failed' || status.state === 'interrupted') lines.push('more: imprint status --long; journalctl -u imprint; /var/lib/imprint/last-boot.json');
  return `${lines.join('\n')}\n`;
}

export async function statusCommand(args: CliArgs): Promise<number> {
  const root = await checkRoot(args.root);
  let status = await readStatus(root);
  while (args.wait && UNSETTLED.includes(status.state)) {
    await delay(POLL_MS);
    status = await readStatus(root);
  }
  process.stdout.write(args.json ? `${JSON.stringify(status, null, 2)}\n` : renderStatus(status, args.long));
  return status.exitCode;
}

const POLL_MS = 250;
