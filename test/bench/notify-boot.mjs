// A first boot as systemd sees it (issue 12): `imprint boot --root COPY --metadata-url URL` run
// with NOTIFY_SOCKET set, timed from process start to READY=1, to the launch key written, to
// exit; with its CPU time (user+sys of imprint and every child) and peak RSS. Quiet and under a
// CPU load this benchmark makes itself, interleaved with the previous release built from git and
// with the floor. As root, after `npm run build`:
//
//   node test/bench/notify-boot.mjs [--imprint PATH] [--baseline COMMIT [--baseline-kind bundle|binary] | --baseline-path PATH]
//                                   [--rounds N] [--keys default|fast|both] [--json FILE]
//
//   --imprint PATH     the imprint under test: a bundle (*.cjs/*.js, run with this node) or an
//                      executable (the single binary). Default: dist/imprint.cjs of this checkout.
//   --baseline COMMIT  the previous release (default 8d6e01b): its dist/imprint.cjs is built
//                      once from a `git archive` export in a mkdtemp dir (removed afterwards) and
//                      cached in /var/cache/imprint-test/bench-baseline-<commit>/.
//   --baseline-kind K  bundle (default) or binary: the single executable (`npm run build:binary`,
//                      about 35 s once; then cached in .../bench-baseline-<commit>-binary/).
//                      Compare like with like: a binary under test with --baseline-kind binary.
//   --baseline-path P  a baseline build to use instead (bundle or binary).
//   --rounds N         timed rounds (default 5; each round runs every variant quiet and loaded).
//   --keys             default (the default): imprint's default host key types (ed25519, ecdsa,
//                      rsa 3072), as a real first boot; fast: ed25519+ecdsa only (no RSA prime
//                      search, so CPU and exit time are steadier); both: the two sets, interleaved.
//
// Variants, each in a fresh `cp -a` of the demo image (agent/demo/image.ts), with
// COPY/etc/imprint/imprint.yaml = `default_user: {name: debian}` (+ the key types):
//   a  the imprint under test      b  the baseline      c  the floor (test/bench/floor-boot.sh)
// Each run goes through test/bench/notify-run.py, which binds the NOTIFY_SOCKET (Python: Node has
// no AF_UNIX datagram sockets), watches ~debian/.ssh/authorized_keys with inotify, and reaps the
// process with wait4 for its rusage. Every round runs all variants quiet, then all under load (or
// the other way round, alternating), the order of the variants rotating. Load = 2 busy `sh` loops
// per CPU (nproc), started for the loaded half of the round and killed by PID after it.
//
// Prints medians and paired ratios (per round a/b, a/c, median of the ratios) for each phase,
// the issue-12 targets with PASS/MISS, the load average and the commits. Exits non-zero only when
// a run went wrong (non-zero exit, no READY, keys not new, accounts not locked, no launch key).
import { execFileSync, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { access, chmod, copyFile, mkdir, mkdtemp, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { cpus, tmpdir } from 'node:os';
import path from 'node:path';
import {
  ALL_KEYS, FAST_KEYS, NODE, REPO, buildTemplate, exec, expectLaunchKey, expectLocked, expectNewKeys, fmt, freshCopy,
  loadavg, machine, makeLaunchKey, makeScratch, median, removeScratchSync, startEmulator,
} from './lib.mjs';

const RUNNER = path.join(REPO, 'test/bench/notify-run.py');
const FLOOR = path.join(REPO, 'test/bench/floor-boot.sh');
const CACHE = process.env.IMPRINT_ROOTFS_CACHE ?? '/var/cache/imprint-test';
const USER_CONFIG = 'default_user: {name: debian}\n';
const FAST_CONFIG = `${USER_CONFIG}host_keys: {types: [ed25519, ecdsa]}\n`;
const HOME = 'home/debian';

// ---------------------------------------------------------------------------------------------
// Arguments

function parseArgs(argv) {
  const o = { imprint: path.join(REPO, 'dist/imprint.cjs'), baseline: '8d6e01b', baselineKind: 'bundle', baselinePath: null, rounds: 5, keys: 'default', json: null };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const v = () => {
      if (i + 1 >= argv.length) throw new Error(`${a} needs a value`);
      return argv[++i];
    };
    if (a === '--imprint') o.imprint = path.resolve(v());
    else if (a === '--baseline') o.baseline = v();
    else if (a === '--baseline-path') o.baselinePath = path.resolve(v());
    else if (a === '--baseline-kind') o.baselineKind = v();
    else if (a === '--rounds') o.rounds = Number(v());
    else if (a === '--keys') o.keys = v();
    else if (a === '--json') o.json = path.resolve(v());
    else throw new Error(`unknown argument ${a} (see the comment at the top of ${path.relative(process.cwd(), new URL(import.meta.url).pathname)})`);
  }
  if (!Number.isInteger(o.rounds) || o.rounds < 1) throw new Error('--rounds must be a positive integer');
  if (!['bundle', 'binary'].includes(o.baselineKind)) throw new Error('--baseline-kind must be bundle or binary');
  if (!['default', 'fast', 'both'].includes(o.keys)) throw new Error('--keys must be default, fast or both');
  return o;
}

/** argv prefix that runs an imprint build: node for a bundle, the file itself for a binary. */
const commandOf = (file) => (/\.(c?js|mjs)$/.test(file) ? [NODE, file] : [file]);

const git = (args) => execFileSync('git', ['-C', REPO, ...args], { encoding: 'utf8' }).trim();

/** The commit a build at `file` was made from, when it is this checkout's dist/ (else "?"). */
function describeBuild(file) {
  if (path.dirname(file) === path.join(REPO, 'dist')) {
    const dirty = git(['status', '--porcelain', '--untracked-files=no', '--', 'agent', 'packaging', 'package.json']) ? ' + uncommitted changes' : '';
    return `${git(['rev-parse', '--short=7', 'HEAD'])}${dirty} (${path.relative(REPO, file)} of ${REPO}; built ${new Date(execFileSync('stat', ['-c', '%Y', file], { encoding: 'utf8' }).trim() * 1000).toISOString()})`;
  }
  return file;
}

/**
 * The baseline bundle for `commit`, built once from a `git archive` export (a mkdtemp dir
 * removed afterwards, this checkout's node_modules linked in) and cached under CACHE.
 */
async function baselineBuild(commit, kind) {
  const full = git(['rev-parse', '--verify', `${commit}^{commit}`]);
  const short = full.slice(0, 7);
  const dir = path.join(CACHE, `bench-baseline-${short}${kind === 'binary' ? '-binary' : ''}`);
  const files = kind === 'binary' ? ['imprint-linux-x64'] : ['imprint.cjs', 'imprint-vendor.cjs'];
  const cli = path.join(dir, files[0]);
  if (files.every((f) => existsSync(path.join(dir, f)))) return { cli, commit: short, note: `cached in ${dir}` };
  const work = await mkdtemp(path.join(tmpdir(), `imprint-bench-baseline-${short}-`));
  try {
    process.stderr.write(`building the baseline ${short} in ${work} ...\n`);
    execFileSync('sh', ['-c', 'git -C "$1" archive "$2" | tar -x -C "$3"', 'sh', REPO, full, work]);
    const { realpath, symlink } = await import('node:fs/promises');
    await symlink(await realpath(path.join(REPO, 'node_modules')), path.join(work, 'node_modules'));
    await exec(NODE, [kind === 'binary' ? 'packaging/build-binary.mjs' : 'packaging/bundle.mjs'], { cwd: work });
    await mkdir(CACHE, { recursive: true });
    const tmp = await mkdtemp(`${dir}.tmp-`);
    for (const f of files) await copyFile(path.join(work, 'dist', f), path.join(tmp, f));
    if (kind === 'binary') await chmod(path.join(tmp, files[0]), 0o755);
    await rm(dir, { recursive: true, force: true });
    await rename(tmp, dir);
  } finally {
    if (path.basename(work).startsWith('imprint-bench-baseline-')) await rm(work, { recursive: true, force: true });
  }
  return { cli, commit: short, note: `built from git archive ${short} into ${dir}` };
}

// ---------------------------------------------------------------------------------------------
// The CPU load: 2 busy loops per CPU, started and killed by PID.

const burners = new Set();
function startLoad() {
  const n = 2 * cpus().length;
  for (let i = 0; i < n; i++) {
    const child = spawn('sh', ['-c', 'while :; do :; done'], { stdio: 'ignore' });
    burners.add(child.pid);
  }
}
function stopLoad() {
  for (const pid of burners) {
    try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ }
  }
  burners.clear();
}
process.on('exit', stopLoad);

// ---------------------------------------------------------------------------------------------
// One run

let sockSeq = 0;
async function runOnce(variant, copyDir, keyLine, emu, scratch) {
  const socket = path.join(scratch, `notify-${++sockSeq}.sock`);
  const needle = keyLine.split(/\s+/)[1];
  const argv = variant.argv(copyDir, emu.url);
  const { stdout } = await exec('python3', [RUNNER, '--socket', socket, '--watch', path.join(copyDir, HOME, '.ssh/authorized_keys'), '--needle', needle, '--', ...argv]);
  const r = JSON.parse(stdout);
  if (r.exitCode !== 0) throw new Error(`${variant.label}: exit ${r.exitCode}: ${r.stderr.trim().split('\n').slice(-5).join('\n    ')}`);
  if (r.readyMs === null) throw new Error(`${variant.label}: no READY=1 arrived (notifications: ${JSON.stringify(r.notifications)})`);
  return r;
}

// ---------------------------------------------------------------------------------------------

async function main() {
  const o = parseArgs(process.argv.slice(2));
  if (process.getuid?.() !== 0) throw new Error('run as root: imprint boot and the floor change owners in the trees');
  await access(o.imprint).catch(() => { throw new Error(`${o.imprint} is missing: run "npm run build" first (or give --imprint)`); });
  const started = Date.now();
  const base = o.baselinePath ? { cli: o.baselinePath, commit: '?', note: 'given with --baseline-path' } : await baselineBuild(o.baseline, o.baselineKind);
  const scratch = await makeScratch();
  // Executables run from copies made here, both alike: a binary just written by its build has
  // its pages in the page cache in a shape (large folios) that maps ~25 MiB more of the file
  // into every process than a copy does (ru_maxrss 78 vs 53 MiB for `version`, same bytes).
  const runnable = async (file, name) => {
    if (commandOf(file).length === 2) return file;
    const copy = path.join(scratch, name);
    await copyFile(file, copy);
    await chmod(copy, 0o755);
    return copy;
  };
  const underTest = await runnable(o.imprint, 'imprint-under-test');
  const baselineRun = await runnable(base.cli, 'imprint-baseline');
  const template = await buildTemplate();
  const keyLine = await makeLaunchKey();
  // The emulator of the imprint under test (loopback only, port 0).
  const emu = await startEmulator(keyLine, { command: commandOf(underTest) });

  const keySets = o.keys === 'both' ? ['default', 'fast'] : [o.keys];
  const variants = [];
  for (const ks of keySets) {
    const config = ks === 'fast' ? FAST_CONFIG : USER_CONFIG;
    const keys = ks === 'fast' ? FAST_KEYS : ALL_KEYS;
    const imprintVariant = (id, label, file) => ({
      id: `${id}-${ks}`, kind: id, keySet: ks, label, config, keys,
      argv: (dir, url) => [...commandOf(file), 'boot', '--root', dir, '--metadata-url', url],
    });
    variants.push(imprintVariant('a', 'imprint under test', underTest));
    variants.push(imprintVariant('b', 'baseline', baselineRun));
    variants.push({
      id: `c-${ks}`, kind: 'c', keySet: ks, label: 'floor', config, keys,
      argv: (dir, url) => ['bash', FLOOR, dir, url, ks === 'fast' ? 'ed25519,ecdsa' : 'ed25519,ecdsa,rsa'],
    });
  }
  const conditions = ['quiet', 'loaded'];
  // samples[condition][variant id] = array over rounds of results (same index = same round)
  const samples = Object.fromEntries(conditions.map((c) => [c, Object.fromEntries(variants.map((v) => [v.id, []]))]));
  const host = await machine();
  const loadBefore = (await readFile('/proc/loadavg', 'utf8')).split(' ').slice(0, 3).join(' ');
  const total = o.rounds + 1;
  try {
    for (let round = 0; round < total; round++) {
      const warmup = round === 0;
      const order = round % 2 === 0 ? conditions : [...conditions].reverse();
      for (const cond of order) {
        process.stderr.write(`\r${warmup ? 'warm-up round' : `round ${round}/${o.rounds}`} ${cond}      `);
        const vs = variants.map((_, i) => variants[(i + round) % variants.length]);
        // Copies first, outside the timed part and before the load starts.
        const dirs = [];
        for (const v of vs) dirs.push(await freshCopy(template, v.config));
        if (cond === 'loaded') {
          startLoad();
          await new Promise((r) => setTimeout(r, 300));
        }
        try {
          for (const [i, v] of vs.entries()) {
            const r = await runOnce(v, dirs[i], keyLine, emu, scratch);
            if (!warmup) samples[cond][v.id].push(r);
          }
        } finally {
          if (cond === 'loaded') stopLoad();
        }
        for (const [i, v] of vs.entries()) {
          const what = `${v.label} (${v.keySet} keys, ${cond})`;
          await expectNewKeys(dirs[i], v.keys, template, what);
          await expectLocked(dirs[i], ['root', 'debian'], what);
          await expectLaunchKey(dirs[i], HOME, keyLine, what);
          await rm(dirs[i], { recursive: true, force: true });
        }
      }
    }
  } finally {
    stopLoad();
    await emu.stop();
  }
  process.stderr.write('\n');
  const loadAfter = (await readFile('/proc/loadavg', 'utf8')).split(' ').slice(0, 3).join(' ');
  report(o, base, host, samples, variants, keySets, loadBefore, loadAfter, started);
  if (o.json) await writeFile(o.json, `${JSON.stringify({ options: o, baseline: base, machine: host, load: [loadBefore, loadAfter], samples }, null, 2)}\n`);
}

// ---------------------------------------------------------------------------------------------
// Report

const PHASES = [
  ['readyMs', 'start → READY=1', 'ms'],
  ['keyMs', 'start → launch key in authorized_keys', 'ms'],
  ['keyAfterReady', 'READY → key written', 'ms'],
  ['exitMs', 'start → exit', 'ms'],
  ['cpuMs', 'CPU user+sys (process tree)', 'ms'],
  ['maxRssKiB', 'peak RSS (ru_maxrss), largest process', 'KiB'],
  ['peakRssAnonKiB', 'peak RssAnon of imprint (sampled)', 'KiB'],
];
const value = (r, k) => (k === 'keyAfterReady' ? r.keyMs - r.readyMs : r[k]);
const ratioText = (xs) => (xs.length ? median(xs).toFixed(2) : '—');

function report(o, base, host, samples, variants, keySets, loadBefore, loadAfter, started) {
  const out = [];
  const mib = (kib) => (kib / 1024).toFixed(1);
  out.push(`First boot as systemd sees it (NOTIFY_SOCKET), \`imprint boot --root COPY --metadata-url URL\`: ${o.rounds} rounds (+1 warm-up), each variant quiet and under load`);
  out.push('');
  out.push(`- imprint under test (a): ${describeBuild(o.imprint)}`);
  out.push(`- baseline (b): ${base.commit} — ${base.cli} (${base.note})`);
  out.push(`- floor (c): bash test/bench/floor-boot.sh COPY URL TYPES (ssh-keygen ed25519 ‖ ecdsa, one sshd -T, shadow lines locked in place, READY via systemd-notify, key by curl, rsa after READY when in TYPES)`);
  out.push(`- machine: ${host.nproc} CPUs, ${host.cpu}, Linux ${host.kernel}, node ${host.node}, ${host.openssh}`);
  out.push(`- load average (1/5/15 min): ${loadBefore} before, ${loadAfter} after; "loaded" = ${2 * cpus().length} busy sh loops (2 per CPU) during those runs`);
  out.push(`- command: node test/bench/notify-boot.mjs ${process.argv.slice(2).join(' ')}`.trimEnd());
  out.push('');
  const verdicts = [];
  for (const ks of keySets) {
    const id = (kind) => `${kind}-${ks}`;
    out.push(`### Key types: ${ks === 'fast' ? 'ed25519, ecdsa' : 'imprint default (ed25519, ecdsa, rsa 3072)'}`);
    out.push('');
    for (const cond of ['quiet', 'loaded']) {
      const A = samples[cond][id('a')];
      const B = samples[cond][id('b')];
      const C = samples[cond][id('c')];
      out.push(`${cond}: medians (ms; RSS MiB) and paired ratios (median over rounds of a/b, a/c)`);
      out.push('');
      out.push('| phase | a: under test | b: baseline | c: floor | a/b | a/c | b/c |');
      out.push('|---|---:|---:|---:|---:|---:|---:|');
      for (const [k, label, unit] of PHASES) {
        const col = (rs) => {
          const xs = rs.map((r) => value(r, k)).filter((x) => Number.isFinite(x));
          if (!xs.length) return '—';
          return unit === 'KiB' ? mib(median(xs)) : fmt(median(xs));
        };
        const ratios = (xs, ys) => xs.map((r, i) => value(r, k) / value(ys[i], k)).filter((x) => Number.isFinite(x) && x > 0);
        out.push(`| ${label} | ${col(A)} | ${col(B)} | ${col(C)} | ${ratioText(ratios(A, B))} | ${ratioText(ratios(A, C))} | ${ratioText(ratios(B, C))} |`);
      }
      const orphans = (rs) => {
        const names = new Map();
        for (const n of rs.flatMap((r) => r.orphans)) names.set(n, (names.get(n) ?? 0) + 1);
        return names.size ? [...names].map(([n, c]) => `${c} ${n}`).join(', ') : 'none';
      };
      const notes = (rs) => median(rs.map((r) => r.notifications.length));
      out.push('');
      out.push(`notifications per boot (median): a ${notes(A)}, b ${notes(B)}, c ${notes(C)}. Descendants orphaned during the run (re-parented to the runner, their CPU counted; all ${A.length} runs): a ${orphans(A)}; b ${orphans(B)}`);
      out.push('');
    }
    // Targets (issue 12), from this key set.
    const pr = (cond, k) => {
      const A = samples[cond][id('a')];
      const B = samples[cond][id('b')];
      return median(A.map((r, i) => value(r, k) / value(B[i], k)));
    };
    const med = (cond, kind, k) => median(samples[cond][id(kind)].map((r) => value(r, k)));
    const rows = [
      [`time to READY, quiet: a/b = ${pr('quiet', 'readyMs').toFixed(2)}`, '≤ 0.65', pr('quiet', 'readyMs') <= 0.65],
      [`time to READY, loaded: a/b = ${pr('loaded', 'readyMs').toFixed(2)}`, '≤ 0.65', pr('loaded', 'readyMs') <= 0.65],
      [`key written after READY, quiet: ${fmt(med('quiet', 'a', 'keyAfterReady'))} ms`, '≤ +50 ms', med('quiet', 'a', 'keyAfterReady') <= 50],
      [`CPU time, quiet: a/b = ${pr('quiet', 'cpuMs').toFixed(2)}`, '≤ 0.6', pr('quiet', 'cpuMs') <= 0.6],
      [`CPU time, loaded: a/b = ${pr('loaded', 'cpuMs').toFixed(2)}`, '≤ 0.6', pr('loaded', 'cpuMs') <= 0.6],
      [`peak RSS (ru_maxrss of the largest process, max over all runs of a): ${mib(Math.max(...[...samples.quiet[id('a')], ...samples.loaded[id('a')]].map((r) => r.maxRssKiB)))} MiB`, '≤ 70 MiB',
        Math.max(...[...samples.quiet[id('a')], ...samples.loaded[id('a')]].map((r) => r.maxRssKiB)) <= 70 * 1024],
    ];
    out.push(`Issue 12 targets (${ks} key types; a = under test, b = baseline, paired ratios):`);
    out.push('');
    out.push('| measured | target | |');
    out.push('|---|---|---|');
    for (const [what, target, ok] of rows) {
      out.push(`| ${what} | ${target} | ${ok ? 'PASS' : 'MISS'} |`);
      verdicts.push(ok);
    }
    out.push('');
  }
  out.push('How measured: notify-run.py (python3) forks the command with NOTIFY_SOCKET set to a datagram socket it');
  out.push('bound; times are CLOCK_MONOTONIC from just before the fork. READY = arrival of the datagram with READY=1;');
  out.push('key = first inotify event after which authorized_keys holds the launch key; exit = the pidfd of the');
  out.push('direct child becoming readable. CPU = user+sys from wait4() of the direct child, which includes every');
  out.push('descendant reaped below it (the runner is a child subreaper, so orphans are waited for and added).');
  out.push('Peak RSS = wait4 ru_maxrss: the largest single process in the tree (the Node process, not a sum), file-backed');
  out.push('pages (the mapped executable) included; RssAnon = the direct child\'s anonymous memory, sampled every 20 ms.');
  out.push('Executables (single binaries) run from copies in the scratch dir, so a and b map their files alike.');
  out.push(`Benchmark wall time: ${((Date.now() - started) / 1000).toFixed(0)} s.`);
  process.stdout.write(`${out.join('\n')}\n`);
}

try {
  await main();
} catch (err) {
  stopLoad();
  process.stderr.write(`\nbenchmark error: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exitCode = 1;
} finally {
  removeScratchSync();
}
