import { ensureTreeDir, readTreeText, writeTreeFileAtomic } from '../os/files.js';
import type { RootTree } from '../os/root.js';
import { VERSION } from '../version.js';
import type { BootReport } from './report.js';

// The boot report kept on disk, for `imprint status` and for automation that cannot read the
// journal: /run/imprint/report.json is this boot's (gone at reboot, so "no report" means "not
// run this boot"), /var/lib/imprint/last-boot.json the last finished boot's, kept. Both follow
// packaging/schema/boot-report.schema.json; formatVersion changes when a field changes meaning
// or goes away (new fields do not change it).

export const REPORT_FORMAT_VERSION = 1;
export const RUN_DIR = '/run/imprint';
export const RUN_REPORT = `${RUN_DIR}/report.json`;
export const LAST_BOOT_REPORT = '/var/lib/imprint/last-boot.json';

/** Written when a boot starts, replaced by the finished report when it ends. */
export interface RunningReport {
  formatVersion: number;
  command: 'boot';
  version: string;
  status: 'running';
  startedAt: string;
  /** The boot's process, so a report left by a killed run is recognised as interrupted. */
  pid: number;
}

export interface FinishedReport extends BootReport {
  formatVersion: number;
  startedAt: string;
  finishedAt: string;
  pid: number;
  /** An error that stopped the boot outside any task (the tasks then say nothing). */
  error?: string;
}

export type SavedReport = RunningReport | FinishedReport;

/** Readable by every local user (like cloud-init's status.json): it holds no secret. */
const OWN = { mode: 0o644, uid: 0, gid: 0 } as const;

async function save(root: RootTree, inTree: string, report: SavedReport): Promise<void> {
  const dir = inTree.slice(0, inTree.lastIndexOf('/'));
  // Parents an image lacks (a bare tree without /var) get the usual 0755; only the own dir is tighter.
  await ensureTreeDir(root, dir.slice(0, dir.lastIndexOf('/')), 0o755);
  await ensureTreeDir(root, dir, dir === RUN_DIR ? 0o755 : 0o700);
  await writeTreeFileAtomic(root, inTree, `${JSON.stringify(report, null, 2)}\n`, OWN);
}

export async function saveRunning(root: RootTree, startedAt: Date): Promise<void> {
  await save(root, RUN_REPORT, { formatVersion: REPORT_FORMAT_VERSION, command: 'boot', version: VERSION, status: 'running', startedAt: startedAt.toISOString(), pid: process.pid });
}

export function finished(report: BootReport, startedAt: Date, error?: string): FinishedReport {
  return { formatVersion: REPORT_FORMAT_VERSION, ...report, startedAt: startedAt.toISOString(), finishedAt: new Date().toISOString(), pid: process.pid, ...(error === undefined ? {} : { error }) };
}

/** This boot's report first, then the kept copy: a reader of /run sees it complete first. */
export async function saveFinished(root: RootTree, report: FinishedReport): Promise<void> {
  await save(root, RUN_REPORT, report);
  await save(root, LAST_BOOT_REPORT, report);
}

export interface LoadedReport {
  report: SavedReport | null;
  /** Why the file could not be used (unreadable, not JSON, another format). */
  problem: string | null;
}

function isSavedReport(value: unknown): value is SavedReport {
  if (typeof value !== 'object' || value === null) return false;
  const v = value as Record<string, unknown>;
  if (v.command !== 'boot' || typeof v.startedAt !== 'string' || typeof v.status !== 'string') return false;
  return v.status === 'running' || (Array.isArray(v.tasks) && typeof v.finishedAt === 'string');
}

export async function loadReport(root: RootTree, inTree: string): Promise<LoadedReport> {
  let text: string | null;
  try {
    text = await readTreeText(root, inTree);
  } catch (err) {
    return { report: null, problem: `${inTree} is unreadable (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})` };
  }
  if (text === null) return { report: null, problem: null };
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return { report: null, problem: `${inTree} is not JSON (a boot killed while writing it cannot leave that: the file was edited?)` };
  }
  const format = (parsed as { formatVersion?: unknown } | null)?.formatVersion;
  if (format !== REPORT_FORMAT_VERSION) return { report: null, problem: `${inTree} has format version ${String(format)}; this imprint reads ${REPORT_FORMAT_VERSION}` };
  if (!isSavedReport(parsed)) return { report: null, problem: `${inTree} is not a boot report` };
  return { report: parsed, problem: null };
}
