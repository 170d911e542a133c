import { SEVERITIES, severityRank, type AuditReport, type CheckResult, type Finding, type Severity } from './types.js';

// The report three ways: a table for people (grouped by severity, most severe first), JSON
// (the report object itself, described by packaging/schema/audit-report.schema.json), and JUnit
// XML for CI (one testcase per check; a failure for findings at or above --fail-on).

function where(f: Finding): string {
  return f.evidence.line === null ? f.evidence.path : `${f.evidence.path}:${f.evidence.line}`;
}

function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? '' : 's'}`;
}

export function renderTable(report: AuditReport, verbose: boolean): string {
  const lines: string[] = [];
  const target = report.live ? '/ (live system)' : `${report.root} (offline image)`;
  lines.push(`imprint audit of ${target}: ${plural(report.summary.checks, 'check')} in ${(report.durationMs / 1000).toFixed(1)} s`);
  const all: { check: CheckResult; f: Finding }[] = report.checks.flatMap((c) => c.findings.map((f) => ({ check: c, f })));
  const shown = [...all.map((x) => x.check), ...report.checks.filter((c) => c.status === 'skipped' || c.status === 'error')];
  const width = Math.min(36, Math.max(0, ...shown.map((c) => c.id.length)));
  for (const severity of [...SEVERITIES].reverse()) {
    const group = all.filter((x) => x.f.severity === severity);
    if (group.length === 0) continue;
    lines.push('', `${severity.toUpperCase()} (${group.length})`);
    for (const { check, f } of group) {
      lines.push(`  ${check.id.padEnd(width)}  ${f.message}`);
      lines.push(`  ${' '.repeat(width)}    ${where(f)}  ${f.evidence.value}`);
    }
  }
  if (all.length === 0) lines.push('', 'No findings.');
  const skipped = report.checks.filter((c) => c.status === 'skipped');
  const errors = report.checks.filter((c) => c.status === 'error');
  if (skipped.length > 0) {
    lines.push('', `SKIPPED (${skipped.length})`);
    for (const c of skipped) lines.push(`  ${c.id.padEnd(width)}  ${c.detail ?? ''}`);
  }
  if (errors.length > 0) {
    lines.push('', `COULD NOT RUN (${errors.length})`);
    for (const c of errors) lines.push(`  ${c.id.padEnd(width)}  ${c.detail ?? ''}${c.failed ? ` (counts as a failure: it checks for ${c.severity} problems)` : ''}`);
  }
  if (verbose) {
    lines.push('', 'CHECKS');
    const idWidth = Math.max(...report.checks.map((c) => c.id.length));
    for (const c of report.checks) {
      const status = c.status === 'findings' ? plural(c.findings.length, 'finding') : c.status;
      lines.push(`  ${c.id.padEnd(idWidth)}  ${c.severity.padEnd(8)}  ${status.padEnd(11)}  ${c.title}`);
      for (const g of c.guidelines) lines.push(`  ${' '.repeat(idWidth)}  ${' '.repeat(8)}  ${' '.repeat(11)}  from ${g.source}: ${g.section}`);
    }
  }
  const counts = [...SEVERITIES].reverse().map((s) => `${report.summary.findings[s]} ${s}`).join(', ');
  lines.push('', `Findings: ${counts}. Checks: ${report.summary.ok} ok, ${report.summary.withFindings} with findings, ${report.summary.skipped} skipped, ${report.summary.errors} could not run.`);
  lines.push(report.result === 'pass'
    ? `PASS: nothing at or above ${report.failOn}.`
    : `FAIL: ${plural(report.summary.failed, 'check')} found ${report.failOn} or worse, or could not run (--fail-on ${report.failOn}).`);
  return `${lines.join('\n')}\n`;
}

export function renderJson(report: AuditReport): string {
  return `${JSON.stringify(report, null, 2)}\n`;
}

/** Text fit for XML 1.0: characters XML cannot carry are dropped, the five specials escaped. */
export function xmlEscape(text: string): string {
  return text
    .replace(/[^\x09\x0a\x0d\x20-\ud7ff\ue000-\ufffd\u{10000}-\u{10ffff}]/gu, '')
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
    .replace(/'/g, '&apos;');
}

function findingText(f: Finding): string {
  return `[${f.severity.toUpperCase()}] ${f.message}\n    ${where(f)}  ${f.evidence.value}`;
}

function seconds(ms: number): string {
  return (ms / 1000).toFixed(3);
}

export function renderJunit(report: AuditReport): string {
  const failRank = severityRank(report.failOn);
  const failures = report.checks.filter((c) => c.failed && c.status !== 'error').length;
  const errors = report.checks.filter((c) => c.failed && c.status === 'error').length;
  const skipped = report.checks.filter((c) => c.status === 'skipped' || (c.status === 'error' && !c.failed)).length;
  const a = (name: string, value: string | number): string => ` ${name}="${xmlEscape(String(value))}"`;
  const out: string[] = ['<?xml version="1.0" encoding="UTF-8"?>'];
  const counts = `${a('tests', report.checks.length)}${a('failures', failures)}${a('errors', errors)}${a('skipped', skipped)}${a('time', seconds(report.durationMs))}`;
  out.push(`<testsuites${a('name', 'imprint audit')}${counts}>`);
  out.push(`  <testsuite${a('name', `imprint audit ${report.root}`)}${counts}${a('timestamp', report.startedAt.replace(/\.\d+Z$/, ''))}>`);
  out.push('    <properties>');
  for (const [name, value] of [['root', report.root], ['live', String(report.live)], ['fail-on', report.failOn], ['imprint-version', report.version], ['result', report.result]] as const) {
    out.push(`      <property${a('name', name)}${a('value', value)}/>`);
  }
  out.push('    </properties>');
  for (const c of report.checks) {
    const group = c.id.split('.')[0] ?? c.id;
    out.push(`    <testcase${a('classname', `imprint.audit.${group}`)}${a('name', c.id)}${a('time', seconds(c.durationMs))}>`);
    const above = c.findings.filter((f) => severityRank(f.severity) >= failRank);
    const below = c.findings.filter((f) => severityRank(f.severity) < failRank);
    if (c.status === 'skipped') out.push(`      <skipped${a('message', c.detail ?? 'skipped')}/>`);
    else if (c.status === 'error' && c.failed) out.push(`      <error${a('message', c.detail ?? 'could not run')}${a('type', 'error')}>${xmlEscape(`${c.title}: could not run: ${c.detail ?? ''}`)}</error>`);
    else if (c.status === 'error') out.push(`      <skipped${a('message', `could not run (it checks for ${c.severity} problems, below --fail-on ${report.failOn}): ${c.detail ?? ''}`)}/>`);
    if (above.length > 0) {
      const worst = above.reduce<Severity>((w, f) => (severityRank(f.severity) > severityRank(w) ? f.severity : w), 'info');
      out.push(`      <failure${a('message', `${plural(above.length, 'finding')} at or above ${report.failOn}: ${above[0]?.message ?? ''}`)}${a('type', worst)}>${xmlEscape(above.map(findingText).join('\n'))}</failure>`);
    }
    const text = [`${c.title} (${c.severity})`, ...c.guidelines.map((g) => `from ${g.source}: ${g.section}`), ...below.map(findingText)].join('\n');
    out.push(`      <system-out>${xmlEscape(text)}</system-out>`);
    out.push('    </testcase>');
  }
  out.push('  </testsuite>');
  out.push('</testsuites>');
  return `${out.join('\n')}\n`;
}
