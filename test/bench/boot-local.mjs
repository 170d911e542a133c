// Benchmark of the local phase of `imprint boot --root` (issue 2):
//
//   npm run bench        (= npm run build && node test/bench/boot-local.mjs)
//
// Target: the local phase adds no more than 50 ms to the time ssh-keygen itself needs for the
// configured key types. Measured, not asserted: this exits non-zero only when something
// failed (a run that did not exit 0, a tree without new keys), never on a target miss.
//
// Every timed run gets a fresh `cp -a` copy of one demo image tree (agent/demo/image.ts),
// made before its timer starts. Rounds are interleaved, and the order inside each round is
// rotated, so drift (thermal, page cache, a noisy neighbour) hits every measurement alike.
//
// Environment:
//   BENCH_ROUNDS=N      timed rounds (default 20; fewer than 10 is a smoke test, not a result)
//   BENCH_JSON=FILE     also write every sample (ms) and the machine to FILE
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { rmSync } from 'node:fs';
import { access, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { cpus, tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const CLI = path.join(REPO, 'dist/imprint.cjs');
const GUIDE = path.join(REPO, 'test/bench/guide-style.sh');
const NODE = process.execPath;
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 20);
const WARMUP_ROUNDS = 1;
const TARGET_MS = 50;

// imprint's defaults (agent/config.ts): ed25519, ecdsa 256, rsa 3072.
const ALL_KEYS = [
  { type: 'ed25519', args: [] },
  { type: 'ecdsa', args: ['-b', '256'] },
  { type: 'rsa', args: ['-b', '3072'] },
];
const FAST_KEYS = ALL_KEYS.filter((k) => k.type !== 'rsa');
const FAST_CONFIG = 'host_keys:\n  types: [ed25519, ecdsa]\n';

if (!Number.isInteger(ROUNDS) || ROUNDS < 1) {
  console.error(`BENCH_ROUNDS must be a positive integer, not ${process.env.BENCH_ROUNDS}`);
  process.exit(2);
}

// ---------------------------------------------------------------------------------------------
// Scratch space: one mkdtemp dir under TMPDIR holds the template and every copy; it is removed
// at the end, on failure, and on SIGINT/SIGTERM/SIGHUP (after the running children are stopped).

let base = null;
const children = new Set();
function removeBaseSync() {
  for (const child of children) child.kill('SIGTERM');
  if (base && path.basename(base).startsWith('imprint-bench-')) rmSync(base, { recursive: true, force: true });
  base = null;
}
for (const [signal, code] of [['SIGINT', 130], ['SIGTERM', 143], ['SIGHUP', 129]]) {
  process.on(signal, () => {
    removeBaseSync();
    process.exit(code);
  });
}

// ---------------------------------------------------------------------------------------------
// Child processes: argument arrays only, never a shell string.

function exec(file, args, opts = {}) {
  return new Promise((resolve, reject) => {
    const child = execFile(file, args, { maxBuffer: 16 * 1024 * 1024, ...opts }, (err, stdout, stderr) => {
      children.delete(child);
      if (err) {
        const detail = String(stderr || stdout || '').trim().split('\n').slice(-5).join('\n    ');
        reject(new Error(`${[file, ...args].join(' ')} failed (${err.code ?? err.signal ?? err.message})${detail ? `:\n    ${detail}` : ''}`));
      } else resolve({ stdout, stderr });
    });
    children.add(child);
  });
}

/** Wall time in ms of fn(), which starts child processes and resolves when all have exited. */
async function timed(fn) {
  const start = process.hrtime.bigint();
  await fn();
  return Number(process.hrtime.bigint() - start) / 1e6;
}

// ---------------------------------------------------------------------------------------------
// Trees and checks

let copySeq = 0;
async function freshCopy(template, config) {
  const dir = path.join(base, `copy-${++copySeq}`);
  await exec('cp', ['-a', '--', template, dir]);
  if (config !== undefined) {
    await mkdir(path.join(dir, 'etc/imprint'), { recursive: true });
    await writeFile(path.join(dir, 'etc/imprint/imprint.yaml'), config);
  }
  return dir;
}

/** The SHA256 fingerprint of a .pub file, as `ssh-keygen -l` prints it. */
async function fingerprint(pubFile) {
  const text = await readFile(pubFile, 'utf8');
  const blob = text.trim().split(/\s+/)[1];
  if (!blob) throw new Error(`${pubFile}: not a public key`);
  return `SHA256:${createHash('sha256').update(Buffer.from(blob, 'base64')).digest('base64').replace(/=+$/, '')}`;
}

async function expectNewKeys(dir, keys, template, what) {
  for (const { type } of keys) {
    const pub = path.join(dir, `etc/ssh/ssh_host_${type}_key.pub`);
    const fp = await fingerprint(pub).catch((e) => { throw new Error(`${what}: ${e.message}`); });
    const old = template.fingerprints.get(type);
    if (fp === old) throw new Error(`${what}: ${pub} still holds the image's key ${old}`);
  }
}

async function expectLocked(dir, accounts, what) {
  const shadow = await readFile(path.join(dir, 'etc/shadow'), 'utf8');
  for (const name of accounts) {
    const line = shadow.split('\n').find((l) => l.startsWith(`${name}:`));
    if (!line?.split(':')[1]?.startsWith('!')) throw new Error(`${what}: ${name} is not locked in ${dir}/etc/shadow`);
  }
}

// ---------------------------------------------------------------------------------------------
// The measurements. Each has an untimed prepare, the timed run, and an untimed check.

function imprintBoot(id, label, keys, config) {
  return {
    id, label,
    command: `node dist/imprint.cjs boot --root COPY${config ? '   (COPY/etc/imprint/imprint.yaml: host_keys: {types: [ed25519, ecdsa]})' : ''}`,
    prepare: (t) => freshCopy(t.dir, config),
    run: (dir) => exec(NODE, [CLI, 'boot', '--root', dir]),
    check: async (dir, t) => {
      await expectNewKeys(dir, keys, t, label);
      await expectLocked(dir, ['root', 'debian'], label);
      await access(path.join(dir, 'etc/ssh/sshd_config.d/00-imprint.conf'));
    },
  };
}

function bareKeygen(id, label, keys) {
  const file = (dir, type) => path.join(dir, `etc/ssh/.bench-new-${type}`);
  return {
    id, label,
    command: `${keys.map((k) => `ssh-keygen -q -t ${k.type}${k.args.length ? ` ${k.args.join(' ')}` : ''} -N '' -C root@demo-image -f COPY/etc/ssh/.bench-new-${k.type}`).join(' & ')}; wait`,
    prepare: (t) => freshCopy(t.dir),
    // The same argv imprint gives ssh-keygen (agent/os/ssh-keygen.ts), all started at once.
    run: (dir) => Promise.all(keys.map((k) => exec('ssh-keygen', ['-q', '-t', k.type, ...k.args, '-N', '', '-C', 'root@demo-image', '-f', file(dir, k.type)]))),
    check: async (dir) => {
      for (const k of keys) await fingerprint(`${file(dir, k.type)}.pub`);
    },
  };
}

const MEASUREMENTS = [
  imprintBoot('A', 'imprint boot (ed25519+ecdsa+rsa3072)', ALL_KEYS),
  bareKeygen('B', 'ssh-keygen x3 in parallel (the floor)', ALL_KEYS),
  {
    id: 'C', label: 'guide-style.sh (ssh-keygen -A, passwd/usermod -L, sed)',
    command: 'bash test/bench/guide-style.sh COPY',
    prepare: (t) => freshCopy(t.dir),
    run: (dir) => exec('bash', [GUIDE, dir]),
    check: async (dir, t) => {
      await expectNewKeys(dir, ALL_KEYS, t, 'guide-style.sh');
      await expectLocked(dir, ['root', 'debian'], 'guide-style.sh');
    },
  },
  imprintBoot('A2', 'imprint boot (ed25519+ecdsa)', FAST_KEYS, FAST_CONFIG),
  bareKeygen('B2', 'ssh-keygen x2 in parallel (the floor)', FAST_KEYS),
  {
    id: 'V', label: 'imprint version (process start floor)',
    command: 'node dist/imprint.cjs version',
    prepare: async () => null,
    run: () => exec(NODE, [CLI, 'version']),
    check: async () => undefined,
  },
  {
    id: 'N', label: 'node -e 0 (bare node start)',
    command: 'node -e 0',
    prepare: async () => null,
    run: () => exec(NODE, ['-e', '0']),
    check: async () => undefined,
  },
];

// ---------------------------------------------------------------------------------------------
// Statistics

function sorted(xs) { return [...xs].sort((a, b) => a - b); }
function median(xs) {
  const s = sorted(xs);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}
/** Nearest-rank percentile. */
function pct(xs, p) {
  const s = sorted(xs);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))];
}
function stats(xs) {
  return { n: xs.length, median: median(xs), min: Math.min(...xs), p90: pct(xs, 90), max: Math.max(...xs) };
}
const ms = (x) => `${x.toFixed(1)}`;
const signed = (x) => `${x >= 0 ? '+' : ''}${x.toFixed(1)}`;

// ---------------------------------------------------------------------------------------------
// Machine

async function machine() {
  const cpuinfo = await readFile('/proc/cpuinfo', 'utf8').catch(() => '');
  const model = /^model name\s*:\s*(.+)$/m.exec(cpuinfo)?.[1]?.trim() ?? cpus()[0]?.model ?? 'unknown';
  const nproc = (await exec('nproc', []).catch(() => ({ stdout: String(cpus().length) }))).stdout.trim();
  const ssh = await exec('ssh', ['-V']).then((r) => (r.stderr || r.stdout).trim(), () => 'unknown');
  const kernel = (await exec('uname', ['-r']).catch(() => ({ stdout: 'unknown' }))).stdout.trim();
  const fs = (await exec('findmnt', ['-n', '-o', 'FSTYPE', '-T', base]).catch(() => exec('stat', ['-f', '-c', '%T', base])).catch(() => ({ stdout: 'unknown' }))).stdout.trim();
  return { nproc, cpu: model, node: process.version, openssh: ssh, kernel, tmp: `${path.dirname(base)} (${fs})` };
}

// ---------------------------------------------------------------------------------------------

async function buildTemplate() {
  const dir = path.join(base, 'template');
  await exec(NODE, ['--import', 'tsx', '-e', "import('./agent/demo/image.ts').then((m) => m.buildDemoImage(process.argv[1]))", dir], { cwd: REPO });
  const fingerprints = new Map();
  for (const { type } of ALL_KEYS) fingerprints.set(type, await fingerprint(path.join(dir, `etc/ssh/ssh_host_${type}_key.pub`)));
  return { dir, fingerprints };
}

async function main() {
  if (process.getuid?.() !== 0) throw new Error('run as root: imprint boot, chpasswd and usermod --root need it');
  await access(CLI).catch(() => { throw new Error(`${CLI} is missing: run "npm run bench" (it builds first)`); });
  base = await mkdtemp(path.join(tmpdir(), 'imprint-bench-'));
  const started = Date.now();

  const template = await buildTemplate();
  const host = await machine();
  const samples = Object.fromEntries(MEASUREMENTS.map((m) => [m.id, []]));
  const total = WARMUP_ROUNDS + ROUNDS;
  if (ROUNDS < 10) process.stderr.write(`warning: BENCH_ROUNDS=${ROUNDS} is below 10: a smoke test, not a result\n`);

  for (let round = 0; round < total; round++) {
    const warmup = round < WARMUP_ROUNDS;
    process.stderr.write(`\r${warmup ? 'warm-up round' : `round ${round - WARMUP_ROUNDS + 1}/${ROUNDS}`}   `);
    // Rotate the order each round: no measurement always runs right after the same other one.
    const order = MEASUREMENTS.map((_, i) => MEASUREMENTS[(i + round) % MEASUREMENTS.length]);
    for (const m of order) {
      const dir = await m.prepare(template);
      try {
        const t = await timed(() => m.run(dir));
        await m.check(dir, template);
        if (!warmup) samples[m.id].push(t);
      } finally {
        if (dir) await rm(dir, { recursive: true, force: true });
      }
    }
  }
  process.stderr.write('\n');

  const s = Object.fromEntries(Object.entries(samples).map(([id, xs]) => [id, stats(xs)]));
  const out = [];
  out.push(`Local phase of \`imprint boot --root\`: ${ROUNDS} interleaved rounds (+${WARMUP_ROUNDS} warm-up), wall ms per run`);
  out.push('');
  out.push(`- machine: ${host.nproc} CPUs (nproc), ${host.cpu}, Linux ${host.kernel}`);
  out.push(`- node ${host.node}, ${host.openssh}`);
  out.push(`- trees: fresh \`cp -a\` of the demo image per run, under ${host.tmp}`);
  out.push('- command: `npm run bench` (= `npm run build && node test/bench/boot-local.mjs`)');
  out.push('');
  out.push('| | measurement | median | min | p90 | max |');
  out.push('|---|---|---:|---:|---:|---:|');
  for (const m of MEASUREMENTS) {
    const x = s[m.id];
    out.push(`| ${m.id} | ${m.label} | ${ms(x.median)} | ${ms(x.min)} | ${ms(x.p90)} | ${ms(x.max)} |`);
  }
  out.push('');
  out.push('| ratio (medians) | |');
  out.push('|---|---:|');
  out.push(`| A/B imprint / bare ssh-keygen | ${(s.A.median / s.B.median).toFixed(2)} |`);
  out.push(`| C/B guide script / bare ssh-keygen | ${(s.C.median / s.B.median).toFixed(2)} |`);
  out.push(`| A/C imprint / guide script | ${(s.A.median / s.C.median).toFixed(2)} |`);
  out.push(`| A2/B2 imprint / bare ssh-keygen (no RSA) | ${(s.A2.median / s.B2.median).toFixed(2)} |`);
  out.push('');
  out.push(`| imprint's overhead over bare ssh-keygen (ms) | median | min | p90 | target ≤ ${TARGET_MS} ms |`);
  out.push('|---|---:|---:|---:|---|');
  const verdicts = [];
  for (const [a, b, label] of [['A', 'B', 'ed25519+ecdsa+rsa3072 (A − B)'], ['A2', 'B2', 'ed25519+ecdsa (A2 − B2)']]) {
    const over = { median: s[a].median - s[b].median, min: s[a].min - s[b].min, p90: s[a].p90 - s[b].p90 };
    const met = over.median <= TARGET_MS;
    verdicts.push(met);
    out.push(`| ${label} | ${signed(over.median)} | ${signed(over.min)} | ${signed(over.p90)} | ${met ? 'met' : 'NOT met'} |`);
  }
  out.push('');
  out.push('| process start (ms, medians) | |');
  out.push('|---|---:|');
  out.push(`| node -e 0 (N) | ${ms(s.N.median)} |`);
  out.push(`| loading the bundle: V − N | ${signed(s.V.median - s.N.median)} |`);
  out.push(`| imprint's work beyond process start and ssh-keygen: (A2 − B2) − V | ${signed(s.A2.median - s.B2.median - s.V.median)} |`);
  out.push('');
  out.push('Commands (COPY = a fresh copy of the demo image):');
  out.push('');
  for (const m of MEASUREMENTS) out.push(`- ${m.id}: \`${m.command}\``);
  out.push('');
  out.push(`Target (imprint's overhead, process start included, ≤ ${TARGET_MS} ms over bare ssh-keygen, medians): ${verdicts.every(Boolean) ? 'met' : 'NOT met'}.`);
  out.push(`Benchmark wall time: ${((Date.now() - started) / 1000).toFixed(0)} s.`);
  process.stdout.write(`${out.join('\n')}\n`);

  if (process.env.BENCH_JSON) {
    await writeFile(process.env.BENCH_JSON, `${JSON.stringify({ machine: host, rounds: ROUNDS, stats: s, samples }, null, 2)}\n`);
  }
}

try {
  await main();
} catch (err) {
  process.stderr.write(`\nbenchmark error: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exitCode = 1;
} finally {
  removeBaseSync();
}
