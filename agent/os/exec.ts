import { spawn, type ChildProcess } from 'node:child_process';
import { ImprintError } from './errors.js';

export interface RunOptions {
  /** Written to the child's stdin, then closed. Never logged: it may hold secrets. */
  input?: string;
  timeoutMs?: number;
  env?: NodeJS.ProcessEnv;
  /** Exit codes that are answers rather than failures. */
  okCodes?: number[];
  /** Data for extra descriptors: the child reads fds[0] on fd 3, fds[1] on fd 4, ... (bwrap --ro-bind-data, --seccomp). */
  fds?: readonly Buffer[];
  /** Called once the child is started (the crash tests kill it mid-work from here). */
  onSpawn?: (child: ChildProcess) => void;
}

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

// Children inherit a fixed, minimal environment: a root agent must not pass an
// attacker-influenced LD_PRELOAD or PATH through to the tools it runs.
const CHILD_ENV: NodeJS.ProcessEnv = {
  PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
  LANG: 'C',
  LC_ALL: 'C',
};

/** Runs a program with an argument array (never a shell string) and collects its output. */
export function run(program: string, args: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(program, args, {
      env: opts.env ?? CHILD_ENV,
      stdio: ['pipe', 'pipe', 'pipe', ...(opts.fds ?? []).map(() => 'pipe' as const)],
      timeout: opts.timeoutMs ?? 60_000,
      killSignal: 'SIGKILL',
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (d: Buffer) => out.push(d));
    child.stderr.on('data', (d: Buffer) => err.push(d));
    child.on('error', (e: NodeJS.ErrnoException) => {
      reject(new ImprintError(`${program}: ${e.code === 'ENOENT' ? 'not installed' : e.message}`, 'command'));
    });
    child.on('close', (code, signal) => {
      const result = { code: code ?? -1, stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(err).toString('utf8') };
      if (signal) {
        reject(new ImprintError(`${program} ${args[0] ?? ''} was killed by ${signal}`, 'command'));
      } else if (result.code === 0 || opts.okCodes?.includes(result.code)) {
        resolve(result);
      } else {
        const detail = result.stderr.trim().split('\n').slice(-3).join(' / ') || `exit status ${result.code}`;
        reject(new ImprintError(`${program} failed: ${detail}`, 'command'));
      }
    });
    child.stdin.on('error', () => {
      /* the child may exit before reading its input; its exit status says what happened */
    });
    (opts.fds ?? []).forEach((data, i) => {
      const fd = child.stdio[3 + i] as NodeJS.WritableStream & { on(e: 'error', f: () => void): void };
      fd.on('error', () => undefined);
      fd.end(data);
    });
    child.stdin.end(opts.input ?? '');
    opts.onSpawn?.(child);
  });
}
