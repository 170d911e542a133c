import type { AuditContext } from './context.js';

// What an audit check is and what it reports. A check has one id, the highest severity it can
// report, and the guideline(s) it comes from (a file of shared/seeds and its section). Every
// finding carries its own severity (at most the check's) and one piece of evidence: where it
// was seen (an in-tree path, or a /proc file on a live system), the line when there is one,
// and the value — never a secret (password hashes, private key material are never put here;
// the runner redacts anything that looks like one as a last line of defence).

export const SEVERITIES = ['info', 'low', 'medium', 'high', 'critical'] as const;
export type Severity = (typeof SEVERITIES)[number];

export function severityRank(severity: Severity): number {
  return SEVERITIES.indexOf(severity);
}

export function isSeverity(text: string): text is Severity {
  return (SEVERITIES as readonly string[]).includes(text);
}

export interface Evidence {
  /** An absolute path inside the audited tree (or /proc/... on a live system). */
  path: string;
  /** 1-based line number, or null when the evidence is a whole file, a link or an absence. */
  line: number | null;
  /** What was seen there: a setting, a line, a fingerprint. Redacted and bounded. */
  value: string;
}

export type FactValue = string | number | boolean | null;

export interface Finding {
  severity: Severity;
  /** One sentence for a person. */
  message: string;
  evidence: Evidence;
  /** Machine-readable details (user, fingerprint, port, program...), for --json consumers. */
  facts?: Record<string, FactValue>;
}

export interface Guideline {
  /** A file of shared/seeds, e.g. "outscale-cleanup-public-omis.txt". */
  source: string;
  /** The section or line of that guideline the check implements. */
  section: string;
}

/** Thrown by a check that does not apply here (a live-only check on --root, sshd not installed). */
export class CheckSkipped extends Error {
  constructor(readonly reason: string) {
    super(reason);
    this.name = 'CheckSkipped';
  }
}

export interface Check {
  id: string;
  title: string;
  /** The highest severity this check reports. */
  severity: Severity;
  guidelines: Guideline[];
  /** Only meaningful on a live system (running processes, sockets): skipped with --root. */
  liveOnly?: boolean;
  run(ctx: AuditContext): Promise<Finding[]>;
}

export type CheckStatus = 'ok' | 'findings' | 'skipped' | 'error';

export interface CheckResult {
  id: string;
  title: string;
  severity: Severity;
  guidelines: Guideline[];
  status: CheckStatus;
  /** Why the check was skipped or failed to run; null otherwise. */
  detail: string | null;
  /** True when a finding is at or above --fail-on, or the check could not run and could have. */
  failed: boolean;
  durationMs: number;
  findings: Finding[];
}

export interface AuditReport {
  format: 'imprint-audit/1';
  version: string;
  /** The audited tree: "/" on a live system. */
  root: string;
  live: boolean;
  startedAt: string;
  durationMs: number;
  failOn: Severity;
  result: 'pass' | 'fail';
  exitCode: 0 | 1;
  summary: {
    checks: number;
    ok: number;
    withFindings: number;
    skipped: number;
    errors: number;
    failed: number;
    findings: Record<Severity, number>;
  };
  checks: CheckResult[];
}
