// Shared by the benchmarks in test/bench: scratch space, child processes, the demo image
// template, fingerprints, statistics, the machine's description. Plain Node ESM.
import { execFile, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { rmSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, stat, writeFile } from 'node:fs/promises';
import { cpus, tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const CLI = path.join(REPO, 'dist/imprint.cjs');
export const NODE = process.execPath;

// imprint's defaults (agent/config.ts): ed25519, ecdsa 256, rsa 3072; `args` as imprint passes them.
export const ALL_KEYS = [
  { type: 'ed25519', args: [] },
  { type: 'ecdsa', args: ['-b', '256'] },
  { type: 'rsa', args: ['-b', '3072'] },
];
export const FAST_KEYS = ALL_KEYS.filter((k) => k.type !== 'rsa');
export const FAST_CONFIG = 'host_keys:\n  types: [ed25519, ecdsa]\n';

// ---------------------------------------------------------------------------------------------
// Scratch space: one mkdtemp dir under TMPDIR holds the template and every copy. It is removed
// by removeScratchSync() (call it in a finally) and on SIGINT/SIGTERM/SIGHUP, after the
// children still running are stopped.

let scratch = null;
const PREFIX = 'imprint-bench-';
const running = new Set();

export async function makeScratch() {
  scratch = await mkdtemp(path.join(tmpdir(), PREFIX));
  return scratch;
}

export function removeScratchSync() {
  for (const child of running) child.kill('SIGTERM');
  if (scratch && path.basename(scratch).startsWith(PREFIX)) rmSync(scratch, { recursive: true, force: true });
  scratch = null;
}

for (const [signal, code] of [['SIGINT', 130], ['SIGTERM', 143], ['SIGHUP', 129]]) {
  process.on(signal, () => {
    removeScratchSync();
    process.exit(code);
  });
}

// ---------------------------------------------------------------------------------------------
// Child processes: argument arrays only, never a shell string. Rejects on a non-zero exit.

export function exec(file, args, opts = {}) {
  return new Promise((resolve, reject) => {
    const child = execFile(file, args, { maxBuffer: 16 * 1024 * 1024, ...opts }, (err, stdout, stderr) => {
      running.delete(child);
      if (err) {
        const detail = String(stderr || stdout || '').trim().split('\n').slice(-5).join('\n    ');
        reject(new Error(`${[file, ...args].join(' ')} failed (${err.code ?? err.signal ?? err.message})${detail ? `:\n    ${detail}` : ''}`));
      } else resolve({ stdout, stderr });
    });
    running.add(child);
  });
}

/** Wall time in ms of fn(), which starts child processes and resolves when all have exited. */
export async function timed(fn) {
  const start = process.hrtime.bigint();
  await fn();
  return Number(process.hrtime.bigint() - start) / 1e6;
}

// ---------------------------------------------------------------------------------------------
// Image trees

/** The SHA256 fingerprint of a .pub file, as `ssh-keygen -l` prints it. */
export async function fingerprint(pubFile) {
  const text = await readFile(pubFile, 'utf8');
  const blob = text.trim().split(/\s+/)[1];
  if (!blob) throw new Error(`${pubFile}: not a public key`);
  return `SHA256:${createHash('sha256').update(Buffer.from(blob, 'base64')).digest('base64').replace(/=+$/, '')}`;
}

/** Builds the demo image (agent/demo/image.ts, through tsx) once, as the template of every copy. */
export async function buildTemplate() {
  const dir = path.join(scratch, 'template');
  await exec(NODE, ['--import', 'tsx', '-e', "import('./agent/demo/image.ts').then((m) => m.buildDemoImage(process.argv[1]))", dir], { cwd: REPO });
  const fingerprints = new Map();
  for (const { type } of ALL_KEYS) fingerprints.set(type, await fingerprint(path.join(dir, `etc/ssh/ssh_host_${type}_key.pub`)));
  return { dir, fingerprints };
}

let copySeq = 0;
/** A fresh `cp -a` copy of the template, with config (YAML text) as its imprint.yaml if given. */
export async function freshCopy(template, config) {
  const dir = path.join(scratch, `copy-${++copySeq}`);
  await exec('cp', ['-a', '--', template.dir, dir]);
  if (config !== undefined) {
    await mkdir(path.join(dir, 'etc/imprint'), { recursive: true });
    await writeFile(path.join(dir, 'etc/imprint/imprint.yaml'), config);
  }
  return dir;
}

export async function expectNewKeys(dir, keys, template, what) {
  for (const { type } of keys) {
    const pub = path.join(dir, `etc/ssh/ssh_host_${type}_key.pub`);
    const fp = await fingerprint(pub).catch((e) => { throw new Error(`${what}: ${e.message}`); });
    const old = template.fingerprints.get(type);
    if (fp === old) throw new Error(`${what}: ${pub} still holds the image's key ${old}`);
  }
}

export async function expectLocked(dir, accounts, what) {
  const shadow = await readFile(path.join(dir, 'etc/shadow'), 'utf8');
  for (const name of accounts) {
    const line = shadow.split('\n').find((l) => l.startsWith(`${name}:`));
    if (!line?.split(':')[1]?.startsWith('!')) throw new Error(`${what}: ${name} is not locked in ${dir}/etc/shadow`);
  }
}

/**
 * A measurement (as the benchmarks' MEASUREMENTS lists hold them) of the floor: the same
 * ssh-keygen argv imprint gives (agent/os/ssh-keygen.ts) for `keys`, all started at once into a
 * fresh copy, and nothing else.
 */
export function bareKeygen(id, label, keys) {
  const file = (dir, type) => path.join(dir, `etc/ssh/.bench-new-${type}`);
  return {
    id, label,
    command: `${keys.map((k) => `ssh-keygen -q -t ${k.type}${k.args.length ? ` ${k.args.join(' ')}` : ''} -N '' -C root@demo-image -f COPY/etc/ssh/.bench-new-${k.type}`).join(' & ')}; wait`,
    prepare: (t) => freshCopy(t),
    run: (dir) => Promise.all(keys.map((k) => exec('ssh-keygen', ['-q', '-t', k.type, ...k.args, '-N', '', '-C', 'root@demo-image', '-f', file(dir, k.type)]))),
    check: async (dir) => {
      for (const k of keys) await fingerprint(`${file(dir, k.type)}.pub`);
    },
  };
}

/** A launch key pair made in the scratch dir; returns its public line ("ssh-ed25519 AAAA… comment"). */
export async function makeLaunchKey(comment = 'launch-key@bench') {
  const file = path.join(scratch, 'launch-key');
  await exec('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', comment, '-f', file]);
  return (await readFile(`${file}.pub`, 'utf8')).trim();
}

/** Throws unless the line's key (type and base64) is in the tree's ~user/.ssh/authorized_keys. */
export async function expectLaunchKey(dir, home, keyLine, what, { uid } = {}) {
  const file = path.join(dir, home, '.ssh/authorized_keys');
  const [type, blob] = keyLine.split(/\s+/);
  const text = await readFile(file, 'utf8').catch((e) => { throw new Error(`${what}: ${file}: ${e.code ?? e.message}`); });
  if (!text.split('\n').some((l) => l.split(/\s+/).some((f, i, fs) => f === type && fs[i + 1] === blob))) throw new Error(`${what}: the launch key is not in ${file}`);
  if (uid !== undefined) {
    const st = await stat(file);
    if (st.uid !== uid || (st.mode & 0o077) !== 0) throw new Error(`${what}: ${file} is uid ${st.uid}, mode ${(st.mode & 0o777).toString(8)}`);
  }
}

/**
 * Starts `node dist/imprint.cjs emulate` (or another imprint: `command`, its argv prefix) on 127.0.0.1, port 0 (loopback only: never the real
 * metadata address), with one --key. Resolves when it printed its address. Its stdout (one line
 * a request) is drained and counted as it comes. stop() ends it by its PID (SIGTERM, then
 * SIGKILL after 2 s); removeScratchSync() also stops it on a signal or a failure.
 */
export async function startEmulator(keyLine, { command = [NODE, CLI] } = {}) {
  const child = spawn(command[0], [...command.slice(1), 'emulate', '--listen', '127.0.0.1:0', '--key', keyLine], { stdio: ['ignore', 'pipe', 'pipe'] });
  running.add(child);
  const exited = new Promise((resolve) => child.once('exit', (code, signal) => { running.delete(child); resolve({ code, signal }); }));
  const state = { requests: 0, stderr: '' };
  child.stderr.setEncoding('utf8').on('data', (d) => { state.stderr = (state.stderr + d).slice(-2000); });
  let buffered = '';
  const url = await new Promise((resolve, reject) => {
    let found = null;
    const timer = setTimeout(() => reject(new Error('imprint emulate did not print its address within 10 s')), 10_000);
    child.stdout.setEncoding('utf8').on('data', (d) => {
      buffered += d;
      const lines = buffered.split('\n');
      buffered = lines.pop();
      for (const line of lines) {
        if (found === null) {
          const m = /^emulate: listening on (http:\/\/127\.0\.0\.1:\d+)$/.exec(line);
          if (!m) continue;
          found = m[1];
          clearTimeout(timer);
          resolve(found);
        } else if (/^emulate: (GET|PUT|POST|HEAD|DELETE) /.test(line)) state.requests++;
      }
    });
    exited.then(({ code, signal }) => {
      clearTimeout(timer);
      reject(new Error(`imprint emulate exited (${code ?? signal}) before it listened${state.stderr ? `: ${state.stderr.trim()}` : ''}`));
    });
  });
  return {
    url,
    pid: child.pid,
    /** Requests logged so far. */
    requests: () => state.requests,
    stop: async () => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      process.kill(child.pid, 'SIGTERM');
      const timer = setTimeout(() => { try { process.kill(child.pid, 'SIGKILL'); } catch { /* gone */ } }, 2000);
      await exited;
      clearTimeout(timer);
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Statistics

const sorted = (xs) => [...xs].sort((a, b) => a - b);
export function median(xs) {
  const s = sorted(xs);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}
/** Nearest-rank percentile. */
export function percentile(xs, p) {
  const s = sorted(xs);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))];
}
export function stats(xs) {
  return { n: xs.length, median: median(xs), min: Math.min(...xs), p90: percentile(xs, 90), max: Math.max(...xs) };
}
function xorshift() {
  let seed = 0x2545f491;
  return () => {
    seed ^= seed << 13; seed >>>= 0;
    seed ^= seed >>> 17;
    seed ^= seed << 5; seed >>>= 0;
    return seed / 2 ** 32;
  };
}

/** 95% bootstrap interval of the median of xs (fixed seed: same samples, same interval). */
export function medianInterval(xs, resamples = 4000) {
  const rand = xorshift();
  const pick = () => Array.from(xs, () => xs[Math.floor(rand() * xs.length)]);
  const meds = Array.from({ length: resamples }, () => median(pick()));
  return [percentile(meds, 2.5), percentile(meds, 97.5)];
}

/**
 * 95% bootstrap interval of median(a) − median(b) (independent resamples of each, fixed seed so
 * a rerun on the same samples prints the same interval).
 */
export function medianDiffInterval(a, b, resamples = 4000) {
  const rand = xorshift();
  const pick = (xs) => Array.from(xs, () => xs[Math.floor(rand() * xs.length)]);
  const diffs = Array.from({ length: resamples }, () => median(pick(a)) - median(pick(b)));
  return [percentile(diffs, 2.5), percentile(diffs, 97.5)];
}
export const fmt = (x) => x.toFixed(1);
export const signed = (x) => `${x >= 0 ? '+' : ''}${x.toFixed(1)}`;

/** A row's verdict from its 95% interval: "met" if all of it is within target, "NOT met" if all above. */
export const verdict = (lo, hi, target) => (hi <= target ? 'met' : lo > target ? 'NOT met' : 'inconclusive');
/** The overall verdict of several rows: any "NOT met" wins, then any "inconclusive". */
export const overallVerdict = (vs) => (vs.includes('NOT met') ? 'NOT met' : vs.every((v) => v === 'met') ? 'met' : 'inconclusive');

// ---------------------------------------------------------------------------------------------
// The machine

export async function machine() {
  const cpuinfo = await readFile('/proc/cpuinfo', 'utf8').catch(() => '');
  const model = /^model name\s*:\s*(.+)$/m.exec(cpuinfo)?.[1]?.trim() ?? cpus()[0]?.model ?? 'unknown';
  const out = (file, args) => exec(file, args).then((r) => (r.stdout || r.stderr).trim(), () => 'unknown');
  const fs = await exec('findmnt', ['-n', '-o', 'FSTYPE', '-T', scratch]).then((r) => r.stdout.trim(), () => 'unknown');
  return {
    nproc: await out('nproc', []),
    cpu: model,
    node: process.version,
    openssh: await exec('ssh', ['-V']).then((r) => (r.stderr || r.stdout).trim(), () => 'unknown'),
    kernel: await out('uname', ['-r']),
    tmp: `${path.dirname(scratch)} (${fs})`,
  };
}

export async function loadavg() {
  return (await readFile('/proc/loadavg', 'utf8').catch(() => '?')).split(' ')[0];
}
