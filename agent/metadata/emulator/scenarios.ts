import { didYouMean } from '../../config.js';

// Fault scenarios of `imprint emulate`. Each one is a row in SCENARIOS (name, argument, help);
// `behaviour()` folds the chosen rows into the plain settings the request handler reads, so
// a scenario is tested by what the server does, not by branches scattered through it.

export type Scenario =
  | { name: 'imdsv1-only' }
  | { name: 'imdsv1-only-405' }
  | { name: 'ignore-put'; body: 'html' | 'empty' }
  | { name: 'imdsv2-only' }
  | { name: 'disabled' }
  | { name: 'slow'; ms: number }
  | { name: 'flaky'; count: number }
  | { name: 'token-expiry'; gets: number }
  | { name: 'oversized'; bytes: number }
  | { name: 'invalid-keys' }
  | { name: 'duplicate-keys' }
  | { name: 'unreachable-after'; requests: number }
  | { name: 'token-no-ttl' }
  | { name: 'malformed-token' }
  | { name: 'many-keys'; count: number }
  | { name: 'repeated-index'; count: number }
  | { name: 'slow-key'; ms: number };

export type ScenarioName = Scenario['name'];

/** How the token PUT and the token header are treated; exactly one applies. */
export type TokenMode = 'v1-and-v2' | 'v1-only-404' | 'v1-only-405' | 'ignore-put' | 'v2-only';

export interface Behaviour {
  tokenMode: TokenMode;
  /** The catch-all page a PUT-ignoring front end sends for the token path. */
  ignoredPutBody: 'html' | 'empty';
  disabled: boolean;
  delayMs: number;
  /** Requests 1..N are answered 503. */
  flaky: number;
  /** GETs a token may serve before it is refused; null = until its TTL runs out. */
  tokenGets: number | null;
  oversizedBytes: number | null;
  invalidKeys: boolean;
  duplicateKeys: boolean;
  /** Requests after the Nth get their connection closed without an answer. */
  closeAfter: number | null;
  /** Whether token answers carry the TTL header (some IMDSv2 services leave it out). */
  ttlHeader: boolean;
  /** The token PUT answers 200 with a TTL header and a body that is not a token. */
  malformedToken: boolean;
  /** Extra generated keys served after the configured ones. */
  extraKeys: number;
  /** The public-keys/ listing names index 0 this many times. */
  repeatedIndex: number | null;
  /** Extra delay of the first key's openssh-key answer. */
  slowKeyMs: number;
}

interface Row {
  help: string;
  /** The argument's meaning for help ("MS"), its range, and how it lands in the Scenario. */
  arg?: { label: string; min: number; max: number; build(n: number): Scenario };
  /** An optional word argument instead of a number. */
  word?: { label: string; choices: readonly string[]; build(w: string | undefined): Scenario };
  /** Scenarios of one group exclude each other. */
  group?: 'token' | 'token-answer';
  apply(b: Behaviour, s: Scenario): void;
}

const MAX_OVERSIZED = 64 * 1024 * 1024;

export const SCENARIOS: Record<ScenarioName, Row> = {
  'imdsv1-only': {
    help: 'no IMDSv2: the token PUT answers 404 (as older services do); token headers are ignored',
    group: 'token',
    apply: (b) => { b.tokenMode = 'v1-only-404'; },
  },
  'imdsv1-only-405': {
    help: 'no IMDSv2: the token PUT answers 405 Method Not Allowed; token headers are ignored',
    group: 'token',
    apply: (b) => { b.tokenMode = 'v1-only-405'; },
  },
  'ignore-put': {
    help: 'a front end that ignores the method: the token PUT gets 200 with a catch-all page ' +
      '(html, or an empty body with =empty) and no TTL header, i.e. not a token; other PUTs are ' +
      'served like GETs and token headers are ignored',
    group: 'token',
    word: { label: 'html|empty', choices: ['html', 'empty'], build: (w) => ({ name: 'ignore-put', body: w === 'empty' ? 'empty' : 'html' }) },
    apply: (b, s) => {
      b.tokenMode = 'ignore-put';
      if (s.name === 'ignore-put') b.ignoredPutBody = s.body;
    },
  },
  'imdsv2-only': {
    help: 'IMDSv2 required: a GET without a token answers 401',
    group: 'token',
    apply: (b) => { b.tokenMode = 'v2-only'; },
  },
  disabled: {
    help: 'the metadata service is turned off: every request answers 403',
    apply: (b) => { b.disabled = true; },
  },
  slow: {
    help: 'every answer is delayed by MS milliseconds',
    arg: { label: 'MS', min: 0, max: 600_000, build: (ms) => ({ name: 'slow', ms }) },
    apply: (b, s) => { if (s.name === 'slow') b.delayMs = s.ms; },
  },
  flaky: {
    help: 'the first N requests of any kind answer 503, then the service works',
    arg: { label: 'N', min: 1, max: 1_000_000, build: (count) => ({ name: 'flaky', count }) },
    apply: (b, s) => { if (s.name === 'flaky') b.flaky = s.count; },
  },
  'token-expiry': {
    help: 'each token stops working after N GETs (401), so the client must fetch a new one',
    arg: { label: 'N', min: 1, max: 1_000_000, build: (gets) => ({ name: 'token-expiry', gets }) },
    apply: (b, s) => { if (s.name === 'token-expiry') b.tokenGets = s.gets; },
  },
  oversized: {
    help: `the instance-id answer is BYTES long (at most ${MAX_OVERSIZED})`,
    arg: { label: 'BYTES', min: 1, max: MAX_OVERSIZED, build: (bytes) => ({ name: 'oversized', bytes }) },
    apply: (b, s) => { if (s.name === 'oversized') b.oversizedBytes = s.bytes; },
  },
  'invalid-keys': {
    help: 'extra public keys that must be rejected: bad base64, truncated base64, wrong inner ' +
      'type, environment="LD_PRELOAD=..." options, a second key injected after CR LF and after LF, control ' +
      'characters, a 100 KiB line',
    apply: (b) => { b.invalidKeys = true; },
  },
  'duplicate-keys': {
    help: 'the first key is served again under one more index',
    apply: (b) => { b.duplicateKeys = true; },
  },
  'unreachable-after': {
    help: 'after N requests, every connection is closed without an answer',
    arg: { label: 'N', min: 0, max: 1_000_000, build: (requests) => ({ name: 'unreachable-after', requests }) },
    apply: (b, s) => { if (s.name === 'unreachable-after') b.closeAfter = s.requests; },
  },
  'token-no-ttl': {
    help: 'an IMDSv2 service that does not echo the TTL header on the token answer (nor on ' +
      'GETs); combine with imdsv2-only for a service that also requires the token',
    group: 'token-answer',
    apply: (b) => { b.ttlHeader = false; },
  },
  'malformed-token': {
    help: 'the token PUT answers 200 with a TTL header but a body that is not a token (JSON ' +
      'around it); GETs without a token still work unless imdsv2-only is given',
    group: 'token-answer',
    apply: (b) => { b.malformedToken = true; },
  },
  'many-keys': {
    help: 'N more generated ed25519 keys (key-gen-I) after the configured ones, in the ' +
      'public-keys/ listing',
    arg: { label: 'N', min: 1, max: 100_000, build: (count) => ({ name: 'many-keys', count }) },
    apply: (b, s) => { if (s.name === 'many-keys') b.extraKeys = s.count; },
  },
  'repeated-index': {
    help: 'the public-keys/ listing names index 0 N times (the first key; one is served if ' +
      'none is configured)',
    arg: { label: 'N', min: 1, max: 100_000, build: (count) => ({ name: 'repeated-index', count }) },
    apply: (b, s) => { if (s.name === 'repeated-index') b.repeatedIndex = s.count; },
  },
  'slow-key': {
    help: 'the first key\'s openssh-key answer (public-keys/0) is delayed by MS milliseconds; ' +
      'every other answer is prompt',
    arg: { label: 'MS', min: 0, max: 600_000, build: (ms) => ({ name: 'slow-key', ms }) },
    apply: (b, s) => { if (s.name === 'slow-key') b.slowKeyMs = s.ms; },
  },
};

const NAMES = Object.keys(SCENARIOS) as ScenarioName[];

export class ScenarioError extends Error {}

/** "slow=250", "imdsv2-only", "ignore-put=empty" → a Scenario; throws ScenarioError otherwise. */
export function parseScenario(text: string): Scenario {
  const eq = text.indexOf('=');
  const name = eq < 0 ? text : text.slice(0, eq);
  const value = eq < 0 ? undefined : text.slice(eq + 1);
  if (!(NAMES as string[]).includes(name)) {
    throw new ScenarioError(`unknown scenario "${name}"${didYouMean(name, NAMES)}; known: ${NAMES.join(', ')}`);
  }
  const row = SCENARIOS[name as ScenarioName];
  if (row.arg) {
    const { label, min, max } = row.arg;
    if (value === undefined || !/^\d{1,10}$/.test(value)) throw new ScenarioError(`scenario ${name} needs a number: ${name}=${label}`);
    const n = Number.parseInt(value, 10);
    if (n < min || n > max) throw new ScenarioError(`scenario ${name}: ${label} must be between ${min} and ${max}, not ${n}`);
    return row.arg.build(n);
  }
  if (row.word) {
    if (value !== undefined && !row.word.choices.includes(value)) throw new ScenarioError(`scenario ${name} takes ${row.word.choices.join(' or ')}, not "${value}"`);
    return row.word.build(value);
  }
  if (value !== undefined) throw new ScenarioError(`scenario ${name} takes no argument`);
  return { name } as Scenario;
}

export function scenarioLabel(s: Scenario): string {
  switch (s.name) {
    case 'slow': return `slow=${s.ms}`;
    case 'flaky': return `flaky=${s.count}`;
    case 'token-expiry': return `token-expiry=${s.gets}`;
    case 'oversized': return `oversized=${s.bytes}`;
    case 'unreachable-after': return `unreachable-after=${s.requests}`;
    case 'many-keys': return `many-keys=${s.count}`;
    case 'repeated-index': return `repeated-index=${s.count}`;
    case 'slow-key': return `slow-key=${s.ms}`;
    case 'ignore-put': return s.body === 'html' ? 'ignore-put' : `ignore-put=${s.body}`;
    default: return s.name;
  }
}

/** Folds scenarios into settings; throws ScenarioError on repeats and on conflicting token modes. */
export function behaviour(scenarios: readonly Scenario[]): Behaviour {
  const b: Behaviour = {
    tokenMode: 'v1-and-v2', ignoredPutBody: 'html', disabled: false, delayMs: 0, flaky: 0,
    tokenGets: null, oversizedBytes: null, invalidKeys: false, duplicateKeys: false, closeAfter: null,
    ttlHeader: true, malformedToken: false, extraKeys: 0, repeatedIndex: null, slowKeyMs: 0,
  };
  const seen = new Set<ScenarioName>();
  let tokenScenario: ScenarioName | undefined;
  let tokenAnswerScenario: ScenarioName | undefined;
  for (const s of scenarios) {
    const row = SCENARIOS[s.name];
    if (seen.has(s.name)) throw new ScenarioError(`scenario ${s.name} is given twice`);
    seen.add(s.name);
    if (row.group === 'token') {
      if (tokenScenario) throw new ScenarioError(`scenarios ${tokenScenario} and ${s.name} contradict each other`);
      tokenScenario = s.name;
    }
    if (row.group === 'token-answer') {
      if (tokenAnswerScenario) throw new ScenarioError(`scenarios ${tokenAnswerScenario} and ${s.name} contradict each other`);
      tokenAnswerScenario = s.name;
    }
    row.apply(b, s);
  }
  return b;
}

/** Help lines, one per scenario, for `imprint emulate --help`. */
export function scenarioHelp(indent: string, width: number): string[] {
  const lines: string[] = [];
  for (const name of NAMES) {
    const row = SCENARIOS[name];
    const head = row.arg ? `${name}=${row.arg.label}` : row.word ? `${name}[=${row.word.label}]` : name;
    const words = row.help.split(' ');
    let line = `${indent}${head.padEnd(26)}`;
    const pad = ' '.repeat(indent.length + 26);
    for (const w of words) {
      if (line.length + w.length + 1 > width && line.trim() !== head) {
        lines.push(line.trimEnd());
        line = pad;
      }
      line += `${w} `;
    }
    lines.push(line.trimEnd());
  }
  return lines;
}
