// Benchmark of `imprint seal --root` and `imprint audit --root` on the Debian 12 rootfs
// (issue 5), with `virt-sysprep` on the same tree for comparison when asked for.
//
// Usage (as root, after `npm run build`):
//   node test/bench/seal-audit.mjs
//
// What it does: each run gets a fresh `tar --numeric-owner -xpf` of the cached rootfs tarball
// (test/support/debian-rootfs.sh prints its path) in its own directory under one mkdtemp
// scratch directory, made before its timer starts and removed right after the run. The scratch
// directory is under $TMPDIR, or /dev/shm when TMPDIR is unset (tmpfs: the unpack is fast and
// the disk's cache state does not enter the numbers). Each timed command runs under
// `/usr/bin/time -f '%e %M %x' -o FILE`, which reports the peak RSS (the largest max RSS of
// any process in the command's tree, as wait4 reports it); wall time is measured here, from
// spawn to exit. Rounds are interleaved (S A AS N …) and the order rotates each round; one
// warm-up round is discarded.
//
// Measurements:
//   S   node dist/imprint.cjs seal --root COPY               (fresh copy, default operations)
//   SD  node dist/imprint.cjs seal --root COPY --dry-run     (fresh copy)
//   A   node dist/imprint.cjs audit --root COPY --json       (fresh, unsealed copy)
//   AS  the same audit on a copy sealed just before (outside the timer)
//   N   node -e 0                                            (process-start floor)
//   V   virt-sysprep -a IMAGE (only with BENCH_VIRT_SYSPREP=1): IMAGE is a raw ext4 image made
//       with `mkfs.ext4 -d COPY` outside the timer; LIBGUESTFS_BACKEND=direct and
//       LIBGUESTFS_BACKEND_SETTINGS=force_tcg unless set; killed after BENCH_VIRT_TIMEOUT s
//       (default 300), which is then reported, not counted as a sample.
//
// Checks (a failed check fails the benchmark): seal exits 0 and afterwards no ssh_host_* key is
// left, /etc/machine-id is empty and root/debian
// are locked. Audit exits 0 or 1 (1 = findings at or above "high") with a JSON report whose
// exitCode matches and that has no check in error; the unsealed copy must fail it (exit 1).
// The dry run exits 0 and leaves the host keys.
//
// Env: BENCH_ROUNDS=N (default 7), BENCH_JSON=FILE (every sample and the machine),
//      BENCH_VIRT_SYSPREP=1, BENCH_VIRT_TIMEOUT=SECONDS.
import { spawn } from 'node:child_process';
import { readdir, readFile, rm, mkdir, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import {
  CLI, NODE, REPO, exec, expectLocked, fmt, loadavg, machine, makeScratch, removeScratchSync, stats,
} from './lib.mjs';

if (!process.env.TMPDIR) process.env.TMPDIR = '/dev/shm';
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 7);
const WITH_VIRT = process.env.BENCH_VIRT_SYSPREP === '1';
const VIRT_TIMEOUT = Number(process.env.BENCH_VIRT_TIMEOUT ?? 300);
if (!Number.isInteger(ROUNDS) || ROUNDS < 1) throw new Error('BENCH_ROUNDS must be a positive integer');
if (process.getuid?.() !== 0) {
  console.error('seal-audit: run as root (the rootfs has root-owned files and device nodes)');
  process.exit(2);
}

let scratch;
let tarball;
let seq = 0;

async function unpack() {
  const dir = path.join(scratch, `copy-${++seq}`);
  await mkdir(dir);
  await exec('tar', ['--numeric-owner', '-xpf', tarball, '-C', dir]);
  return dir;
}

/**
 * Runs argv under /usr/bin/time; resolves { ms, rssKiB, code, stdout, stderr, timedOut }.
 * Never through a shell. A timeout kills the process group (the child started it).
 */
function measure(argv, { env, timeoutS } = {}) {
  const timeFile = path.join(scratch, `time-${++seq}`);
  return new Promise((resolve, reject) => {
    const start = process.hrtime.bigint();
    const child = spawn('/usr/bin/time', ['-f', '%e %M %x', '-o', timeFile, ...argv], {
      stdio: ['ignore', 'pipe', 'pipe'], env: env ?? process.env, detached: timeoutS !== undefined,
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d) => { stdout += d; });
    child.stderr.setEncoding('utf8').on('data', (d) => { stderr = (stderr + d).slice(-20000); });
    let timedOut = false;
    const timer = timeoutS === undefined ? null : setTimeout(() => {
      timedOut = true;
      try { process.kill(-child.pid, 'SIGKILL'); } catch { /* gone */ }
    }, timeoutS * 1000);
    child.on('error', reject);
    child.on('close', async (code, signal) => {
      if (timer) clearTimeout(timer);
      const ms = Number(process.hrtime.bigint() - start) / 1e6;
      const text = await readFile(timeFile, 'utf8').catch(() => '');
      await rm(timeFile, { force: true });
      const last = text.trim().split('\n').pop() ?? '';
      const [, rss, exit] = last.split(' ');
      resolve({ ms, rssKiB: Number(rss), code: exit === undefined ? (code ?? signal) : Number(exit), stdout, stderr, timedOut, timeText: text });
    });
  });
}

async function hostKeys(dir) {
  return (await readdir(path.join(dir, 'etc/ssh'))).filter((f) => f.startsWith('ssh_host_'));
}

function checkAudit(r, what) {
  if (r.code !== 0 && r.code !== 1) throw new Error(`${what}: audit exited ${r.code}: ${r.stderr.trim().split('\n').slice(-5).join(' | ')}`);
  const report = JSON.parse(r.stdout);
  if (report.format !== 'imprint-audit/1' || report.exitCode !== r.code) throw new Error(`${what}: report format ${report.format}, exitCode ${report.exitCode} vs ${r.code}`);
  if (report.summary.errors !== 0) throw new Error(`${what}: ${report.summary.errors} checks in error`);
  return report;
}

async function checkSealed(dir, r, what) {
  if (r.code !== 0) throw new Error(`${what}: seal exited ${r.code}: ${r.stderr.trim().split('\n').slice(-5).join(' | ')}`);
  const left = await hostKeys(dir);
  if (left.length) throw new Error(`${what}: host keys left: ${left.join(', ')}`);
  if ((await stat(path.join(dir, 'etc/machine-id'))).size !== 0) throw new Error(`${what}: /etc/machine-id not empty`);
  await expectLocked(dir, ['root', 'debian'], what);
}

const MEASUREMENTS = [
  {
    id: 'S', label: 'imprint seal --root COPY',
    prepare: unpack,
    run: (dir) => measure([NODE, CLI, 'seal', '--root', dir]),
    check: (dir, r) => checkSealed(dir, r, 'S'),
  },
  {
    id: 'SD', label: 'imprint seal --root COPY --dry-run',
    prepare: unpack,
    run: (dir) => measure([NODE, CLI, 'seal', '--root', dir, '--dry-run']),
    check: async (dir, r) => {
      if (r.code !== 0) throw new Error(`SD: seal --dry-run exited ${r.code}`);
      if ((await hostKeys(dir)).length === 0) throw new Error('SD: the dry run removed the host keys');
    },
  },
  {
    id: 'A', label: 'imprint audit --root COPY --json (unsealed)',
    prepare: unpack,
    run: (dir) => measure([NODE, CLI, 'audit', '--root', dir, '--json']),
    check: (dir, r) => { const rep = checkAudit(r, 'A'); if (rep.exitCode !== 1) throw new Error('A: the unsealed image passed the audit'); },
  },
  {
    id: 'AS', label: 'imprint audit --root COPY --json (sealed)',
    prepare: async () => {
      const dir = await unpack();
      await exec(NODE, [CLI, 'seal', '--root', dir]);
      return dir;
    },
    run: (dir) => measure([NODE, CLI, 'audit', '--root', dir, '--json']),
    check: (dir, r) => { checkAudit(r, 'AS'); },
  },
  {
    id: 'N', label: 'node -e 0 (process-start floor)',
    prepare: async () => null,
    run: () => measure([NODE, '-e', '0']),
    check: (dir, r) => { if (r.code !== 0) throw new Error(`N: exited ${r.code}`); },
  },
];

const virtEnv = {
  ...process.env,
  LIBGUESTFS_BACKEND: process.env.LIBGUESTFS_BACKEND ?? 'direct',
  LIBGUESTFS_BACKEND_SETTINGS: process.env.LIBGUESTFS_BACKEND_SETTINGS ?? 'force_tcg',
};
if (WITH_VIRT) {
  MEASUREMENTS.push({
    id: 'V', label: 'virt-sysprep -a IMAGE (TCG)',
    prepare: async () => {
      const dir = await unpack();
      const image = `${dir}.img`;
      await exec('mkfs.ext4', ['-q', '-F', '-L', 'rootfs', '-d', dir, image, '1G']);
      await rm(dir, { recursive: true, force: true });
      return image;
    },
    run: (image) => measure(['virt-sysprep', '-a', image], { env: virtEnv, timeoutS: VIRT_TIMEOUT }),
    check: (image, r) => {
      if (r.timedOut) return 'timeout';
      if (r.code !== 0) throw new Error(`V: virt-sysprep exited ${r.code}: ${r.stderr.trim().split('\n').slice(-8).join(' | ')}`);
      return undefined;
    },
  });
}

async function main() {
  tarball = (await exec('bash', [path.join(REPO, 'test/support/debian-rootfs.sh')])).stdout.trim().split('\n').pop();
  scratch = await makeScratch();
  const host = await machine();
  const tarSize = (await stat(tarball)).size;
  const loadBefore = await loadavg();
  const samples = Object.fromEntries(MEASUREMENTS.map((m) => [m.id, { ms: [], rssKiB: [] }]));
  const timeouts = Object.fromEntries(MEASUREMENTS.map((m) => [m.id, 0]));
  const started = Date.now();
  for (let round = 0; round <= ROUNDS; round++) {
    const order = MEASUREMENTS.map((_, i) => MEASUREMENTS[(i + round) % MEASUREMENTS.length]);
    for (const m of order) {
      const dir = await m.prepare();
      try {
        const r = await m.run(dir);
        const outcome = await m.check(dir, r);
        if (round === 0) continue; // warm-up
        if (outcome === 'timeout') { timeouts[m.id]++; continue; }
        samples[m.id].ms.push(r.ms);
        samples[m.id].rssKiB.push(r.rssKiB);
      } finally {
        if (dir) await rm(dir, { recursive: true, force: true });
      }
    }
    process.stderr.write(`seal-audit: round ${round}${round === 0 ? ' (warm-up)' : ''} done, load ${await loadavg()}\n`);
  }
  const loadAfter = await loadavg();
  const out = [];
  out.push(`seal-audit: ${ROUNDS} rounds + 1 warm-up, ${((Date.now() - started) / 1000).toFixed(0)} s`);
  out.push(`- machine: ${host.nproc} CPUs (nproc), ${host.cpu}, Linux ${host.kernel}, node ${host.node}`);
  out.push(`- scratch: ${host.tmp.replace(/\n/g, ', ')}; rootfs ${tarball} (${(tarSize / 2 ** 20).toFixed(0)} MiB)`);
  out.push(`- load average (1 min) ${loadBefore} before, ${loadAfter} after`);
  out.push('');
  out.push('| | measurement | n | median wall ms | min | p90 | max | median peak RSS MiB | max peak RSS MiB |');
  out.push('|---|---|---:|---:|---:|---:|---:|---:|---:|');
  const s = {};
  for (const m of MEASUREMENTS) {
    const x = samples[m.id];
    if (!x.ms.length) {
      out.push(`| ${m.id} | ${m.label} | 0 | — | — | — | — | — | — |${timeouts[m.id] ? ` (${timeouts[m.id]} timed out after ${VIRT_TIMEOUT} s)` : ''}`);
      continue;
    }
    const t = stats(x.ms);
    const r = stats(x.rssKiB.map((k) => k / 1024));
    s[m.id] = { wall: t, rss: r };
    out.push(`| ${m.id} | ${m.label} | ${t.n} | ${fmt(t.median)} | ${fmt(t.min)} | ${fmt(t.p90)} | ${fmt(t.max)} | ${fmt(r.median)} | ${fmt(r.max)} |${timeouts[m.id] ? ` (+${timeouts[m.id]} timed out)` : ''}`);
  }
  console.log(out.join('\n'));
  if (process.env.BENCH_JSON) {
    await writeFile(process.env.BENCH_JSON, `${JSON.stringify({ machine: host, tarball, load: [loadBefore, loadAfter], rounds: ROUNDS, stats: s, samples, timeouts }, null, 2)}\n`);
  }
}

try {
  await main();
} catch (e) {
  console.error(`seal-audit: FAILED: ${e.message}`);
  process.exitCode = 1;
} finally {
  removeScratchSync();
}
