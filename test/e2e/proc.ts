// Processes and resources of the e2e harness: every child it starts, every namespace and mount
// it makes is recorded here, so that teardown (after hooks, failures, Ctrl-C, a crash of the
// test process) ends exactly those — by PID and by name, never by pattern.

import { execFileSync, spawn, type SpawnOptions } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';

export interface RunResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  ms: number;
  timedOut: boolean;
}

export interface RunOptions {
  timeoutMs?: number;
  input?: string;
  env?: NodeJS.ProcessEnv;
  cwd?: string;
}

/** A clean environment for children: no agent sockets, no inherited test guards or proxies. */
export function childEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  return { PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', LANG: 'C.UTF-8', ...extra };
}

/** Runs a command (argument array, no shell) to completion; never throws on a non-zero exit. */
export function run(file: string, args: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
  const timeoutMs = opts.timeoutMs ?? 30_000;
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const spawnOpts: SpawnOptions = { env: opts.env ?? childEnv(), stdio: ['pipe', 'pipe', 'pipe'] };
    if (opts.cwd) spawnOpts.cwd = opts.cwd;
    const child = spawn(file, args, spawnOpts);
    const pid = child.pid;
    if (pid !== undefined) liveChildren.add(pid);
    let stdout = '';
    let stderr = '';
    let timedOut = false;
    child.stdout?.setEncoding('utf8').on('data', (d: string) => { if (stdout.length < 16 << 20) stdout += d; });
    child.stderr?.setEncoding('utf8').on('data', (d: string) => { if (stderr.length < 16 << 20) stderr += d; });
    const timer = setTimeout(() => {
      timedOut = true;
      if (pid !== undefined) killPid(pid, 'SIGKILL');
    }, timeoutMs);
    child.on('error', (err) => {
      clearTimeout(timer);
      if (pid !== undefined) liveChildren.delete(pid);
      reject(new Error(`${file}: ${err.message}`));
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      if (pid !== undefined) liveChildren.delete(pid);
      resolve({ code, signal, stdout, stderr, ms: performance.now() - started, timedOut });
    });
    child.stdin?.on('error', () => undefined);
    child.stdin?.end(opts.input ?? '');
  });
}

/** run() that throws unless the command exited 0. */
export async function mustRun(file: string, args: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
  const r = await run(file, args, opts);
  if (r.code !== 0) {
    throw new Error(`${file} ${args.join(' ')} failed (${r.timedOut ? 'timed out' : r.signal ?? `exit ${r.code}`})\n${r.stderr.trim()}\n${r.stdout.trim()}`.trim());
  }
  return r;
}

export function killPid(pid: number, signal: NodeJS.Signals | number): boolean {
  try {
    process.kill(pid, signal);
    return true;
  } catch {
    return false;
  }
}

export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Polls until cond() is truthy or the deadline passes; returns the value or throws. */
export async function waitFor<T>(what: string, cond: () => Promise<T | null | undefined | false> | T | null | undefined | false, deadlineMs: number, intervalMs = 50): Promise<T> {
  const end = performance.now() + deadlineMs;
  for (;;) {
    const value = await cond();
    if (value) return value;
    if (performance.now() >= end) throw new Error(`timed out after ${deadlineMs} ms waiting for ${what}`);
    await sleep(intervalMs);
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

// ---------------------------------------------------------------------------------------------
// What the harness made, for the last-resort synchronous cleanup.

/** PIDs of short-lived children of run() (killed if the test process dies mid-command). */
const liveChildren = new Set<number>();

/** Long-lived processes: emulators, nspawn and the container's init (pid namespace leader). */
export const trackedPids = new Set<number>();
/** systemd-nspawn processes: their children (the container's init) are killed first. */
export const trackedNspawn = new Set<number>();
/** Network namespace names we created. */
export const trackedNetns = new Set<string>();
/** Mount points we created (unmounted innermost first). */
export const trackedMounts = new Set<string>();

let installed = false;

/**
 * On any exit of the test process (normal, uncaught error, SIGINT/SIGTERM), kill what is still
 * tracked and remove namespaces and mounts. The after hooks do this properly first; this is for
 * when they cannot run.
 */
export function installEmergencyCleanup(): void {
  if (installed) return;
  installed = true;
  process.on('exit', emergencyCleanupSync);
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.once(sig, () => {
      emergencyCleanupSync();
      process.exit(128 + (sig === 'SIGINT' ? 2 : sig === 'SIGTERM' ? 15 : 1));
    });
  }
}

/** Direct children of a process (from /proc/PID/task/TID/children), synchronously. */
export function childrenOfSync(pid: number): number[] {
  const found: number[] = [];
  try {
    for (const tid of readdirSync(`/proc/${pid}/task`)) {
      const text = readFileSync(`/proc/${pid}/task/${tid}/children`, 'utf8').trim();
      for (const c of text.split(/\s+/)) if (/^\d+$/.test(c)) found.push(Number(c));
    }
  } catch { /* gone */ }
  return found;
}

export function emergencyCleanupSync(): void {
  // The container's init first: a pid namespace ends with its init, nspawn or not.
  for (const pid of trackedNspawn) for (const child of childrenOfSync(pid)) killPid(child, 'SIGKILL');
  for (const pid of [...liveChildren, ...trackedPids, ...trackedNspawn]) killPid(pid, 'SIGKILL');
  trackedNspawn.clear();
  liveChildren.clear();
  trackedPids.clear();
  const quiet = { stdio: 'ignore' as const, env: childEnv(), timeout: 10_000 };
  for (const mount of [...trackedMounts].sort((a, b) => b.length - a.length)) {
    try { execFileSync('umount', [mount], quiet); } catch { try { execFileSync('umount', ['-l', mount], quiet); } catch { /* reported by the next run's leftover check */ } }
    try { execFileSync('rmdir', [mount], quiet); } catch { /* not empty or gone */ }
  }
  trackedMounts.clear();
  for (const ns of trackedNetns) {
    try { execFileSync('ip', ['netns', 'delete', ns], quiet); } catch { /* gone */ }
  }
  trackedNetns.clear();
}
