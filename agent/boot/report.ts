import type { Console } from '../os/console.js';
import type { TaskPhase } from './task.js';

export type TaskStatus = 'done' | 'unchanged' | 'skipped' | 'failed' | 'planned';

export interface TaskReport {
  task: string;
  phase: TaskPhase;
  status: TaskStatus;
  /** One line per action taken (or, with --dry-run, planned). */
  actions: string[];
  warnings: string[];
  error?: string;
  durationMs: number;
  /** Task-specific facts for machines: fingerprints, locked accounts, effective sshd settings. */
  details: Record<string, unknown>;
}

export interface MetadataReport {
  source: string | null;
  instanceId: string | null;
  protocol: string | null;
  rejected: string[];
  error: string | null;
  /** The platform spoken to (null: the configured sources in order) and how it was chosen. */
  platform: { name: string | null; why: string } | null;
}

export interface BootReport {
  command: 'boot';
  version: string;
  root: string;
  dryRun: boolean;
  instance: { id: string; source: string; previous: string | null };
  metadata: MetadataReport | null;
  tasks: TaskReport[];
  status: 'ok' | 'failed';
  exitCode: 0 | 1;
  /** Set when imprint did nothing on purpose (cloud-init runs here, imprint=disabled). */
  stoodAside?: string;
}

/** What a task uses to say what it did; every call is also one console line. */
export class TaskRecorder {
  readonly report: TaskReport;

  constructor(task: string, phase: TaskPhase, private readonly out: Console) {
    this.report = { task, phase, status: 'done', actions: [], warnings: [], durationMs: 0, details: {} };
  }

  action(message: string): void {
    this.report.actions.push(message);
    this.out.info(this.report.task, message);
  }

  warn(message: string): void {
    this.report.warnings.push(message);
    this.out.warn(this.report.task, message);
  }

  verbose(message: string): void {
    this.out.detail(this.report.task, message);
  }

  detail(key: string, value: unknown): void {
    this.report.details[key] = value;
  }

  block(lines: string[]): void {
    this.out.block(lines);
  }
}
