// Where the wall time of `imprint boot --root` goes: runs it N times on fresh copies of the demo
// image with test/bench/trace-preload.cjs preloaded (it records node's hand-over, the bundle's
// load, every child process and the exit), and prints the median of each segment.
//
//   npm run build && node test/bench/boot-timeline.mjs [--all-keys] [--runs N] [--metadata-url URL | --emulate]
//
// Default key types: ed25519+ecdsa (RSA's random prime search would swamp everything else);
// --all-keys uses imprint's defaults (ed25519, ecdsa, rsa 3072). The preload adds ~1 ms.
// --metadata-url URL times the full boot (both phases) against that metadata service (give a
// loopback `imprint emulate`); --emulate starts one on 127.0.0.1 with a launch key made for the
// run, and checks the key reaches ~debian/.ssh/authorized_keys. Either adds
// `default_user: {name: debian}` to the tree's imprint.yaml, as test/bench/boot-full.mjs does.
import { access, readFile, rm } from 'node:fs/promises';
import path from 'node:path';
import {
  ALL_KEYS, CLI, FAST_CONFIG, FAST_KEYS, NODE, REPO, buildTemplate, exec, expectLaunchKey, expectNewKeys, fmt, freshCopy,
  loadavg, machine, makeLaunchKey, makeScratch, median, removeScratchSync, startEmulator, timed,
} from './lib.mjs';

const PRELOAD = path.join(REPO, 'test/bench/trace-preload.cjs');
const argv = process.argv.slice(2);
const allKeys = argv.includes('--all-keys');
const emulate = argv.includes('--emulate');
const runsAt = argv.indexOf('--runs');
const urlAt = argv.indexOf('--metadata-url');
const RUNS = runsAt >= 0 ? Number(argv[runsAt + 1]) : 15;
const givenUrl = urlAt >= 0 ? argv[urlAt + 1] : null;
const valueAt = new Set([runsAt, urlAt].filter((i) => i >= 0).map((i) => i + 1));
if (!Number.isInteger(RUNS) || RUNS < 1 || (urlAt >= 0 && !/^https?:\/\/./.test(givenUrl ?? '')) || (emulate && urlAt >= 0)
  || argv.some((a, i) => !['--all-keys', '--runs', '--metadata-url', '--emulate'].includes(a) && !valueAt.has(i))) {
  console.error('usage: node test/bench/boot-timeline.mjs [--all-keys] [--runs N] [--metadata-url URL | --emulate]');
  process.exit(2);
}
const network = emulate || givenUrl !== null;

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
  // A gap between children is cut further at the preload's marks inside it (the vendor bundle's
  // compile, the metadata client's connections).
  const marks = [...(trace.marks ?? [])].sort((a, b) => a.t - b.t);
  const gap = (name, from, to, until) => {
    const inside = marks.filter((m) => m.t >= from && m.t < to);
    if (inside.length === 0) return out.push([name, to - from]);
    out.push([`${name}, to ${inside[0].name}`, inside[0].t - from]);
    inside.forEach((m, i) => out.push([`  ${m.name} → ${inside[i + 1]?.name ?? until}`, (inside[i + 1]?.t ?? to) - m.t]));
  };
  let at = trace.bundleEnd;
  let n = 0;
  for (const g of groups) {
    gap(`imprint JS + fs ${n === 0 ? 'before the first child' : `after child group ${n}`}`, at, g.start, `child group ${n + 1}`);
    out.push([`child group ${++n}: ${g.names.join(' ‖ ')}`, g.end - g.start]);
    at = g.end;
  }
  gap('imprint JS + fs after the last child, to the exit event', at, trace.exit, 'the exit event');
  return out;
}

let emu = null;

/**
 * The same lifetime in phases whose names do not depend on how the children overlapped (the
 * engine runs tasks side by side, so the fine segments above take several shapes).
 */
function phases(trace) {
  const mark = (prefix) => trace.marks?.find((m) => m.name.startsWith(prefix))?.t ?? null;
  const vendorStart = mark('vendor bundle: compile start');
  const vendorEnd = mark('vendor bundle: compiled');
  const connect = mark('net.connect #1');
  const netStart = vendorStart ?? connect;
  const keygens = trace.children.filter((c) => path.basename(c.argv[0]) === 'ssh-keygen');
  const local = trace.children.filter((c) => netStart === null || c.start < netStart);
  const firstChild = Math.min(...local.map((c) => c.start));
  const keygenEnd = Math.max(...keygens.map((c) => c.end));
  const lastLocal = Math.max(...local.map((c) => c.end));
  const out = [
    ['node bootstrap (process start → first JS)', trace.bootstrap],
    ['find, read, compile and run dist/imprint.cjs', trace.bundleEnd - trace.bootstrap],
    ['local phase: JS + fs before the first child (config, identity, state, plan)', firstChild - trace.bundleEnd],
    ['local phase: first child → last ssh-keygen done (other tasks run alongside)', keygenEnd - firstChild],
    ['local phase: last ssh-keygen done → last local child done (sshd -T, usermod…)', Math.max(0, lastLocal - keygenEnd)],
  ];
  if (netStart === null) {
    out.push(['last child → exit event (writes, state)', trace.exit - Math.max(lastLocal, keygenEnd)]);
    return out;
  }
  out.push(['last local child → network phase starts (state writes, plan)', netStart - Math.max(lastLocal, keygenEnd)]);
  if (vendorStart !== null) out.push(['network: compile + run dist/imprint-vendor.cjs (undici…)', vendorEnd - vendorStart]);
  if (connect !== null) {
    out.push(['network: client set-up → first net.connect', connect - (vendorEnd ?? netStart)]);
    const last = trace.lastOutput !== null && trace.lastOutput > connect ? trace.lastOutput : null;
    if (last === null) out.push(['network: first net.connect → exit event (requests, authorized_keys, state)', trace.exit - connect]);
    else {
      out.push(['network: first net.connect → last console line (requests, authorized_keys)', last - connect]);
      out.push(['last console line → exit event (state file; V8 draining background work)', trace.exit - last]);
    }
  } else out.push(['network: → exit event', trace.exit - (vendorEnd ?? netStart)]);
  return out;
}

async function main() {
  if (process.getuid?.() !== 0) throw new Error('run as root');
  await access(CLI).catch(() => { throw new Error(`${CLI} is missing: npm run build`); });
  await makeScratch();
  const template = await buildTemplate();
  const host = await machine();
  const keys = allKeys ? ALL_KEYS : FAST_KEYS;
  const config = `${network ? 'default_user: {name: debian}\n' : ''}${allKeys ? '' : FAST_CONFIG}` || undefined;
  const keyLine = emulate ? await makeLaunchKey() : null;
  emu = emulate ? await startEmulator(keyLine) : null;
  const url = emu?.url ?? givenUrl;
  const loadBefore = await loadavg();
  const runs = [];
  for (let i = 0; i <= RUNS; i++) {
    const dir = await freshCopy(template, config);
    const traceFile = `${dir}.trace.json`;
    try {
      const wall = await timed(() => exec(NODE, ['-r', PRELOAD, CLI, 'boot', '--root', dir, ...(url ? ['--metadata-url', url] : [])], { env: { ...process.env, IMPRINT_TRACE_OUT: traceFile } }));
      await expectNewKeys(dir, keys, template, 'imprint boot');
      if (keyLine) await expectLaunchKey(dir, 'home/debian', keyLine, 'imprint boot');
      const trace = JSON.parse(await readFile(traceFile, 'utf8'));
      if (i > 0) runs.push({ wall, segments: segments(trace), phases: phases(trace), children: trace.children }); // run 0 warms up
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
  lines.push(`imprint boot --root COPY${url ? ` --metadata-url ${emu ? 'URL (imprint emulate on loopback)' : url}` : ''}, ${allKeys ? 'default key types (ed25519, ecdsa, rsa 3072)' : 'host_keys.types [ed25519, ecdsa]'}: median of ${common.length} run(s)${common.length < runs.length ? ` (${runs.length - common.length} with another shape left out)` : ''}`);
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
  // The shape-independent phases, over every run. With RSA and a metadata service, RSA's
  // ssh-keygen overlaps the network phase, and these phases would not add up: left out.
  if (!(allKeys && network)) {
    lines.push(`Phases, median of all ${runs.length} run(s):`);
    lines.push('');
    lines.push('| phase | median ms |');
    lines.push('|---|---:|');
    let phaseSum = 0;
    runs[0].phases.forEach(([name], i) => {
      const m = median(runs.map((r) => r.phases[i][1]));
      phaseSum += m;
      lines.push(`| ${name} | ${fmt(m)} |`);
    });
    const reaped = median(runs.map((r) => r.wall - r.phases.reduce((a, [, t]) => a + t, 0)));
    lines.push(`| exit event → reaped by the parent | ${fmt(reaped)} |`);
    lines.push(`| sum of the medians | ${fmt(phaseSum + reaped)} |`);
    lines.push(`| median wall time | ${fmt(median(runs.map((r) => r.wall)))} |`);
    lines.push('');
  }
  // Each kind of child on its own: how long it ran, and how long spawn() blocked imprint's thread.
  const kinds = new Map();
  for (const r of runs) {
    for (const c of r.children) {
      const k = kinds.get(childName(c.argv)) ?? { dur: [], block: [], count: 0 };
      k.dur.push(c.end - c.start);
      k.block.push(c.spawned - c.start);
      k.count++;
      kinds.set(childName(c.argv), k);
    }
  }
  lines.push(`Child processes, all ${runs.length} run(s):`);
  lines.push('');
  lines.push('| child process | runs per boot | median ms each | spawn() blocks the event loop, median ms |');
  lines.push('|---|---:|---:|---:|');
  for (const [name, k] of kinds) lines.push(`| ${name} | ${(k.count / runs.length).toFixed(0)} | ${fmt(median(k.dur))} | ${fmt(median(k.block))} |`);
  process.stdout.write(`${lines.join('\n')}\n`);
}

try {
  await main();
} catch (err) {
  process.stderr.write(`error: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exitCode = 1;
} finally {
  await emu?.stop().catch(() => undefined);
  removeScratchSync();
}
