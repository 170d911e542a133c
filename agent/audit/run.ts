import type { RootTree } from '../os/root.js';
import { errorMessage } from '../os/errors.js';
import { VERSION } from '../version.js';
import { AuditContext } from './context.js';
import { redact, redactText } from './redact.js';
import { CHECKS } from './registry.js';
import { CheckSkipped, SEVERITIES, severityRank, type AuditReport, type Check, type CheckResult, type Finding, type Severity } from './types.js';

// Runs the checks one after the other on one context (so files are read once) and builds the
// report. A check that throws is an error, not a crash: the others still run. Every finding
// passes through redact() and is held to its check's severity ceiling.

export interface AuditOptions {
  failOn: Severity;
  checks?: readonly Check[];
  now?: Date;
}

function clean(f: Finding, check: Check): Finding {
  const severity = severityRank(f.severity) > severityRank(check.severity) ? check.severity : f.severity;
  const out: Finding = {
    severity,
    message: redactText(f.message),
    evidence: { path: redactText(f.evidence.path), line: f.evidence.line, value: redact(f.evidence.value) },
  };
  if (f.facts) out.facts = Object.fromEntries(Object.entries(f.facts).map(([k, v]) => [k, typeof v === 'string' ? redactText(v) : v]));
  return out;
}

export async function runAudit(root: RootTree, opts: AuditOptions): Promise<AuditReport> {
  const started = opts.now ?? new Date();
  const t0 = performance.now();
  const ctx = new AuditContext(root);
  const failRank = severityRank(opts.failOn);
  const results: CheckResult[] = [];
  for (const check of opts.checks ?? CHECKS) {
    const c0 = performance.now();
    const base = { id: check.id, title: check.title, severity: check.severity, guidelines: check.guidelines };
    try {
      if (check.liveOnly && !root.isLive) throw new CheckSkipped('live system only: an offline tree has nothing running');
      const findings = (await check.run(ctx)).map((f) => clean(f, check))
        .sort((a, b) => severityRank(b.severity) - severityRank(a.severity));
      const failed = findings.some((f) => severityRank(f.severity) >= failRank);
      results.push({ ...base, status: findings.length > 0 ? 'findings' : 'ok', detail: null, failed, durationMs: Math.round(performance.now() - c0), findings });
    } catch (err) {
      const skipped = err instanceof CheckSkipped;
      results.push({
        ...base,
        status: skipped ? 'skipped' : 'error',
        detail: redactText(skipped ? err.reason : errorMessage(err)),
        // A check that could have found something at or above --fail-on but could not run fails:
        // "could not look" must never read as "nothing there".
        failed: !skipped && severityRank(check.severity) >= failRank,
        durationMs: Math.round(performance.now() - c0),
        findings: [],
      });
    }
  }
  const counts = Object.fromEntries(SEVERITIES.map((s) => [s, 0])) as Record<Severity, number>;
  for (const r of results) for (const f of r.findings) counts[f.severity] += 1;
  const failedCount = results.filter((r) => r.failed).length;
  return {
    format: 'imprint-audit/1',
    version: VERSION,
    root: root.dir,
    live: root.isLive,
    startedAt: started.toISOString(),
    durationMs: Math.round(performance.now() - t0),
    failOn: opts.failOn,
    result: failedCount > 0 ? 'fail' : 'pass',
    exitCode: failedCount > 0 ? 1 : 0,
    summary: {
      checks: results.length,
      ok: results.filter((r) => r.status === 'ok').length,
      withFindings: results.filter((r) => r.status === 'findings').length,
      skipped: results.filter((r) => r.status === 'skipped').length,
      errors: results.filter((r) => r.status === 'error').length,
      failed: failedCount,
      findings: counts,
    },
    checks: results,
  };
}
