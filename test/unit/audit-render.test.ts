import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import fc from 'fast-check';
import { renderJson, renderJunit, renderTable, xmlEscape } from '../../agent/audit/render.js';
import { CHECKS } from '../../agent/audit/registry.js';
import { runAudit } from '../../agent/audit/run.js';
import { CheckSkipped, SEVERITIES, severityRank, type AuditReport, type Check, type Finding, type Severity } from '../../agent/audit/types.js';
import { RootTree } from '../../agent/os/root.js';
import { parseXml, validateSchema, type XmlElement } from '../support/audit-formats.js';

// The runner and the three renderings, on synthetic checks: severities and exit codes by
// --fail-on, redaction, the JSON schema, well-formed JUnit XML whatever the findings hold.

const SCHEMA = JSON.parse(await readFile(new URL('../../packaging/schema/audit-report.schema.json', import.meta.url), 'utf8')) as Record<string, never>;
const GUIDE = [{ source: 'outscale-cleanup-public-omis.txt', section: 'test' }];

function check(id: string, severity: Severity, run: Check['run'], liveOnly = false): Check {
  return { id, title: `title of ${id}`, severity, guidelines: GUIDE, run, ...(liveOnly ? { liveOnly } : {}) };
}

const f = (severity: Severity, message: string, value = 'v', line: number | null = 1): Finding => ({ severity, message, evidence: { path: '/etc/x', line, value } });

const NASTY = 'a <b> & "c" \'d\' ]]> \u0000\u0001\u001b[31m \ud800 end\u202e';

const SYNTHETIC: Check[] = [
  check('t.ok', 'high', async () => []),
  check('t.findings', 'critical', async () => [f('info', 'i'), f('low', 'l'), f('critical', 'c', NASTY, 3), f('medium', NASTY, NASTY, null)]),
  check('t.clamped', 'low', async () => [f('critical', 'over the ceiling')]),
  check('t.skipped', 'high', async () => {
    throw new CheckSkipped('not here');
  }),
  check('t.error-high', 'high', async () => {
    throw new Error(`boom ${NASTY}`);
  }),
  check('t.error-info', 'info', async () => {
    throw new Error('small boom');
  }),
  check('t.live', 'high', async () => [f('high', 'never run offline')], true),
  check('t.secret', 'medium', async () => [f('medium', 'hash $6$saltsalt$abcdefghijklmnopqrstuvwxyz0123 in a message', 'password=hunter2 and $y$j9T$abcdefghijklmnop$QzY3lMEiU4Tqswuvs54VCA9')]),
];

function children(e: XmlElement, name: string): XmlElement[] {
  return e.children.filter((c) => c.name === name);
}

describe('audit: runner and renderings', () => {
  let dir: string;
  let root: RootTree;
  before(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'imprint-audit-render-'));
    root = new RootTree(dir);
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  const audit = (failOn: Severity, checks: Check[] = SYNTHETIC): Promise<AuditReport> => runAudit(root, { failOn, checks });

  it('records status, skips live-only checks offline, turns throws into errors, and clamps to the ceiling', async () => {
    const r = await audit('high');
    const by = (id: string) => r.checks.find((c) => c.id === id);
    assert.equal(by('t.ok')?.status, 'ok');
    assert.equal(by('t.findings')?.status, 'findings');
    assert.deepEqual(by('t.findings')?.findings.map((x) => x.severity), ['critical', 'medium', 'low', 'info'], 'most severe first');
    assert.equal(by('t.clamped')?.findings[0]?.severity, 'low');
    assert.equal(by('t.skipped')?.status, 'skipped');
    assert.equal(by('t.skipped')?.detail, 'not here');
    assert.equal(by('t.live')?.status, 'skipped');
    assert.equal(by('t.error-high')?.status, 'error');
    assert.equal(by('t.error-high')?.failed, true, 'could not look for high problems: a failure at --fail-on high');
    assert.equal(by('t.error-info')?.failed, false);
    assert.deepEqual(r.summary, { checks: 8, ok: 1, withFindings: 3, skipped: 2, errors: 2, failed: 2, findings: { info: 1, low: 2, medium: 2, high: 0, critical: 1 } });
  });

  it('exits 1 exactly when a finding is at or above --fail-on, or a check for such problems could not run', async () => {
    for (const failOn of SEVERITIES) {
      const r = await audit(failOn);
      const expected = r.checks.some((c) => c.findings.some((x) => severityRank(x.severity) >= severityRank(failOn)) || (c.status === 'error' && severityRank(c.severity) >= severityRank(failOn)));
      assert.equal(r.exitCode, expected ? 1 : 0, failOn);
      assert.equal(r.result, expected ? 'fail' : 'pass');
    }
    assert.equal((await audit('critical', [check('a', 'high', async () => [f('high', 'x')])])).exitCode, 0);
    assert.equal((await audit('high', [check('a', 'high', async () => [f('high', 'x')])])).exitCode, 1);
    assert.equal((await audit('info', [check('a', 'high', async () => [])])).exitCode, 0);
  });

  it('never lets a hash or a secret assignment through, in messages, values or details', async () => {
    const out = renderJson(await audit('high'));
    assert.doesNotMatch(out, /\$6\$saltsalt|\$y\$j9T|hunter2/);
    assert.match(out, /\[password hash hidden\]/);
  });

  it('--json: the report validates against the published schema', async () => {
    const report = JSON.parse(renderJson(await audit('medium'))) as unknown;
    assert.deepEqual(validateSchema(SCHEMA, report), []);
  });

  it('the schema check itself rejects what the schema forbids', async () => {
    const good = JSON.parse(renderJson(await audit('medium'))) as Record<string, unknown> & { checks: Record<string, unknown>[] };
    const broken: [string, (r: typeof good) => void][] = [
      ['missing field', (r) => { delete (r as Record<string, unknown>).failOn; }],
      ['bad severity', (r) => { r.failOn = 'severe'; }],
      ['extra field', (r) => { (r as Record<string, unknown>).extra = 1; }],
      ['relative evidence path', (r) => { ((r.checks[1] as { findings: { evidence: { path: string } }[] }).findings[0] as { evidence: { path: string } }).evidence.path = 'etc/x'; }],
      ['line 0', (r) => { ((r.checks[1] as { findings: { evidence: { line: number } }[] }).findings[0] as { evidence: { line: number } }).evidence.line = 0; }],
      ['bad status', (r) => { (r.checks[0] as { status: string }).status = 'passed'; }],
      ['fact of a wrong type', (r) => { ((r.checks[1] as { findings: { facts?: unknown }[] }).findings[0] as { facts?: unknown }).facts = { a: [1] }; }],
      ['no guideline', (r) => { (r.checks[0] as { guidelines: unknown[] }).guidelines = []; }],
    ];
    for (const [what, mutate] of broken) {
      const copy = JSON.parse(JSON.stringify(good)) as typeof good;
      mutate(copy);
      assert.notDeepEqual(validateSchema(SCHEMA, copy), [], what);
    }
  });

  it('--junit: well-formed XML with one testcase per check, failures, errors and skips where they belong', async () => {
    const r = await audit('medium');
    const doc = parseXml(renderJunit(r));
    assert.equal(doc.name, 'testsuites');
    const suites = children(doc, 'testsuite');
    assert.equal(suites.length, 1);
    const suite = suites[0] as XmlElement;
    const cases = children(suite, 'testcase');
    assert.deepEqual(cases.map((c) => c.attributes.name), r.checks.map((c) => c.id));
    const failing = cases.filter((c) => children(c, 'failure').length > 0).map((c) => c.attributes.name);
    assert.deepEqual(failing, ['t.findings', 't.secret']);
    assert.deepEqual(cases.filter((c) => children(c, 'error').length > 0).map((c) => c.attributes.name), ['t.error-high']);
    assert.deepEqual(cases.filter((c) => children(c, 'skipped').length > 0).map((c) => c.attributes.name), ['t.skipped', 't.error-info', 't.live']);
    assert.equal(suite.attributes.tests, '8');
    assert.equal(suite.attributes.failures, '2');
    assert.equal(suite.attributes.errors, '1');
    assert.equal(suite.attributes.skipped, '3');
    const failure = children(cases[1] as XmlElement, 'failure')[0] as XmlElement;
    assert.equal(failure.attributes.type, 'critical');
    assert.match(failure.text, /\[CRITICAL\] c/);
    assert.match(children(cases[1] as XmlElement, 'system-out')[0]?.text ?? '', /\[LOW\] l/, 'findings below --fail-on go to system-out');
    const props = children(children(suite, 'properties')[0] as XmlElement, 'property');
    assert.deepEqual(Object.fromEntries(props.map((p) => [p.attributes.name, p.attributes.value])).root, dir);
  });

  it('escapes anything a finding may hold into well-formed XML (fast-check)', () => {
    fc.assert(fc.property(fc.string({ unit: 'binary', maxLength: 60 }), (s) => {
      const doc = parseXml(`<a b="${xmlEscape(s)}">${xmlEscape(s)}</a>`);
      assert.equal(doc.attributes.b, doc.text);
    }), { numRuns: 500 });
  });

  it('the table groups findings by severity, most severe first, with evidence under each', async () => {
    const text = renderTable(await audit('high'), false);
    const order = ['CRITICAL', 'MEDIUM', 'LOW', 'INFO'].map((h) => text.indexOf(`\n${h} (`));
    assert.ok(order.every((i) => i > 0), text);
    assert.deepEqual([...order].sort((a, b) => a - b), order);
    assert.match(text, /t\.findings\s+c\n\s+\/etc\/x:3 {2}/);
    assert.match(text, /SKIPPED \(2\)/);
    assert.match(text, /COULD NOT RUN \(2\)/);
    assert.match(text, /FAIL: 2 checks/);
    assert.doesNotMatch(text, /\u001b|\u0000/, 'no raw control characters reach the terminal');
    assert.doesNotMatch(text, /^CHECKS$/m);
    assert.match(renderTable(await audit('high'), true), /^CHECKS$/m);
  });

  it('every registered check has a unique id, a guideline from shared/seeds, and a known severity', () => {
    const ids = CHECKS.map((c) => c.id);
    assert.equal(new Set(ids).size, ids.length);
    for (const c of CHECKS) {
      assert.ok(SEVERITIES.includes(c.severity), c.id);
      assert.ok(c.guidelines.length > 0, c.id);
      for (const g of c.guidelines) assert.match(g.source, /^(outscale-cleanup-public-omis|outscale-baking-omis|egi-vm-image-endorsement|aws-protecting-shared-ami|eucalyptus-instance-best-practices)\.txt$/);
    }
  });
});
