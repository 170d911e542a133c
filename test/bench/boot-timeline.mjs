// Where the wall time of `imprint boot --root` goes: runs it N times on fresh copies of the demo
// image with test/bench/trace-preload.cjs preloaded (it records node's hand-over, the bundle's
// load, every child process and the exit), and prints the median of each segment.
//
//   npm run build && node test/bench/boot-timeline.mjs [--all-keys] [--runs N]
//
// Default key types: ed25519+ecdsa (RSA's random prime search would swamp everything else);
// --all-keys uses imprint's defaults (ed25519, ecdsa, rsa 3072). The preload adds ~1 ms.
import { access, readFile, rm } from 'node:fs/promises';
import path from 'node:path';
import {
  ALL_KEYS, CLI, FAST_CONFIG, FAST_KEYS, NODE, REPO, buildTemplate, exec, expectNewKeys, fmt, freshCopy, loadavg,
  machine, makeScratch, median, removeScratchSync, timed,
} from './lib.mjs';

const PRELOAD = path.join(REPO, 'test/bench/trace-preload.cjs');
const argv = process.argv.slice(2);
const allKeys = argv.includes('--all-keys');
const runsAt = argv.indexOf('--runs');
const RUNS = runsAt >= 0 ? Number(argv[runsAt + 1]) : 15;
if (!Number.isInteger(RUNS) || RUNS < 1 || argv.some((a, i) => !['--all-keys', '--runs'].includes(a) && i !== runsAt + 1)) {
  console.error('usage: node test/bench/boot-timeline.mjs [--all-keys] [--runs N]');
  process.exit(2);
}

/** A short, secret-free name for a child process. */
function childName(argv) {
  const prog = path.basename(argv[0]);
  if (prog === 'ssh-keygen') return `ssh-keygen ${argv[argv.indexOf('-t') + 1]}`;
  if (prog === 'bwrap') return 'sshd -T (bwrap)';
  if (prog === 'chroot') return 'sshd -T (chroot)';
  if (prog === 'sshd') return 'sshd -T';
  if (prog === 'usermod' || prog === 'useradd') return `${prog} ${argv[argv.length - 1]}`;
  return prog;
}

/** Turns one trace into named segments that add up to the process's own lifetime. */
function segments(trace) {
  const out = [];
  out.push(['node bootstrap (process start → first JS)', trace.bootstrap]);
  out.push(['find + read the bundle', trace.bundleStart - trace.bootstrap]);
  out.push(['compile + run the bundle top level', trace.bundleEnd - trace.bundleStart]);
  // Children that overlap run in parallel: one group, one segment.
  const groups = [];
  for (const c of [...trace.children].sort((a, b) => a.start - b.start)) {
    const last = groups[groups.length - 1];
    if (last && c.start < last.end) {
      last.names.push(childName(c.argv));
      last.end = Math.max(last.end, c.end);
    } else groups.push({ names: [childName(c.argv)], start: c.start, end: c.end });
  }
  let at = trace.bundleEnd;
  let n = 0;
  for (const g of groups) {
    out.push([`imprint JS + fs ${n === 0 ? 'before the first child' : `after child group ${n}`}`, g.start - at]);
    out.push([`child group ${++n}: ${g.names.join(' ‖ ')}`, g.end - g.start]);
    at = g.end;
  }
  out.push(['imprint JS + fs after the last child, to the exit event', trace.exit - at]);
  return out;
}

async function main() {
  if (process.getuid?.() !== 0) throw new Error('run as root');
  await access(CLI).catch(() => { throw new Error(`${CLI} is missing: npm run build`); });
  await makeScratch();
  const template = await buildTemplate();
  const host = await machine();
  const keys = allKeys ? ALL_KEYS : FAST_KEYS;
  const config = allKeys ? undefined : FAST_CONFIG;
  const loadBefore = await loadavg();
  const runs = [];
  for (let i = 0; i <= RUNS; i++) {
    const dir = await freshCopy(template, config);
    const traceFile = `${dir}.trace.json`;
    try {
      const wall = await timed(() => exec(NODE, ['-r', PRELOAD, CLI, 'boot', '--root', dir], { env: { ...process.env, IMPRINT_TRACE_OUT: traceFile } }));
      await expectNewKeys(dir, keys, template, 'imprint boot');
      const trace = JSON.parse(await readFile(traceFile, 'utf8'));
      if (i > 0) runs.push({ wall, segments: segments(trace), children: trace.children }); // run 0 warms up
    } finally {
      await rm(dir, { recursive: true, force: true });
      await rm(traceFile, { force: true });
    }
  }
  const loadAfter = await loadavg();

  // Runs whose segments differ (another number of child groups) are reported apart.
  const signature = (r) => r.segments.map(([name]) => name).join('|');
  const bySig = new Map();
  for (const r of runs) bySig.set(signature(r), [...(bySig.get(signature(r)) ?? []), r]);
  const [common] = [...bySig.values()].sort((a, b) => b.length - a.length);
  const lines = [];
  lines.push(`imprint boot --root COPY, ${allKeys ? 'default key types (ed25519, ecdsa, rsa 3072)' : 'host_keys.types [ed25519, ecdsa]'}: median of ${common.length} run(s)${common.length < runs.length ? ` (${runs.length - common.length} with another shape left out)` : ''}`);
  lines.push(`${host.nproc} CPUs, ${host.cpu}, node ${host.node}, ${host.openssh}; load ${loadBefore} → ${loadAfter}`);
  lines.push('');
  lines.push('| segment | median ms |');
  lines.push('|---|---:|');
  const names = common[0].segments.map(([name]) => name);
  let sum = 0;
  names.forEach((name, i) => {
    const m = median(common.map((r) => r.segments[i][1]));
    sum += m;
    lines.push(`| ${name} | ${fmt(m)} |`);
  });
  const exitToReaped = median(common.map((r) => r.wall - r.segments.reduce((a, [, t]) => a + t, 0)));
  lines.push(`| exit event → reaped by the parent (teardown, fork/exec before the time origin) | ${fmt(exitToReaped)} |`);
  lines.push(`| sum of the medians | ${fmt(sum + exitToReaped)} |`);
  lines.push(`| median wall time (as the parent sees it) | ${fmt(median(common.map((r) => r.wall)))} |`);
  lines.push('');
  // Each kind of child on its own: how long it ran, and how long spawn() blocked imprint's thread.
  const kinds = new Map();
  for (const r of common) {
    for (const c of r.children) {
      const k = kinds.get(childName(c.argv)) ?? { dur: [], block: [], count: 0 };
      k.dur.push(c.end - c.start);
      k.block.push(c.spawned - c.start);
      k.count++;
      kinds.set(childName(c.argv), k);
    }
  }
  lines.push('| child process | runs per boot | median ms each | spawn() blocks the event loop, median ms |');
  lines.push('|---|---:|---:|---:|');
  for (const [name, k] of kinds) lines.push(`| ${name} | ${(k.count / common.length).toFixed(0)} | ${fmt(median(k.dur))} | ${fmt(median(k.block))} |`);
  process.stdout.write(`${lines.join('\n')}\n`);
}

try {
  await main();
} catch (err) {
  process.stderr.write(`error: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exitCode = 1;
} finally {
  removeScratchSync();
}
