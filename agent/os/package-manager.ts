import { stat } from 'node:fs/promises';
import { run } from './exec.js';
import type { RootTree } from './root.js';
import { statResolved } from './tree-read.js';

// The distribution's package manager, for the optional first-boot upgrade: apt (Debian,
// Ubuntu) or dnf (Fedora, RHEL and its rebuilds). Each command runs under coreutils' timeout,
// which sends SIGTERM at the deadline (apt and dnf stop between packages and keep their
// databases consistent) and SIGKILL a minute later if they have not stopped.

export type PackageManager = 'apt' | 'dnf';

export interface PackageCommand {
  program: string;
  args: string[];
}

/** Which manager the tree has (apt first: a Debian system with dnf installed is still Debian). */
export async function detectPackageManager(root: RootTree): Promise<PackageManager | null> {
  for (const [manager, file] of [['apt', '/usr/bin/apt-get'], ['dnf', '/usr/bin/dnf']] as const) {
    if ((await statResolved(root, file))?.isFile()) return manager;
  }
  return null;
}

/** The commands of an unattended upgrade that keeps the image's changed config files. */
export function upgradeCommands(manager: PackageManager): PackageCommand[] {
  if (manager === 'dnf') return [{ program: 'dnf', args: ['-y', '--refresh', 'upgrade'] }];
  return [
    { program: 'apt-get', args: ['-q', 'update'] },
    { program: 'apt-get', args: ['-q', '-y', '-o', 'Dpkg::Options::=--force-confdef', '-o', 'Dpkg::Options::=--force-confold', 'upgrade'] },
  ];
}

export interface BoundedResult {
  timedOut: boolean;
  code: number;
  /** The last lines of output, for the log. */
  tail: string[];
}

const KILL_AFTER_S = 60;

/** Whether this system was booted by systemd (sd_booted(3): /run/systemd/system exists). */
export async function bootedWithSystemd(): Promise<boolean> {
  return (await stat('/run/systemd/system').catch(() => null))?.isDirectory() ?? false;
}

/**
 * The argument array that runs a command as a transient service of its own (systemd-run),
 * waiting for it and passing its exit status on. imprint.service is sandboxed for its own work
 * (/usr and /var read-only, no network but the metadata service, few capabilities): apt and
 * dnf cannot run inside it, and must not be given what they need, so they run beside it, with
 * their own bound (RuntimeMaxSec=) as a backstop. Their output goes to the journal, not to a
 * pipe: if imprint is stopped mid-upgrade (its RuntimeMaxSec=), a broken pipe must not kill
 * dpkg halfway; the upgrade finishes on its own.
 */
export function transientServiceArgs(unit: string, maxSeconds: number, env: Record<string, string>, argv: string[]): string[] {
  return ['--unit', unit, '--description', `imprint: first-boot package upgrade (${argv.slice(4).join(' ')})`, '--quiet', '--collect', '--wait',
    '--property', `RuntimeMaxSec=${maxSeconds}`, ...Object.entries(env).flatMap(([k, v]) => ['--setenv', `${k}=${v}`]), '--', ...argv];
}

/**
 * Runs a command for at most timeoutMs (then TERM, then KILL); never throws on its exit
 * status. With `transientUnit`, it runs as that transient service (systemd-run), not as a
 * child of this process.
 */
export async function runBounded(command: PackageCommand, timeoutMs: number, transientUnit: string | null = null): Promise<BoundedResult> {
  const seconds = Math.max(1, Math.floor(timeoutMs / 1000));
  const env = { PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', LANG: 'C', LC_ALL: 'C', DEBIAN_FRONTEND: 'noninteractive' };
  const bounded = ['timeout', '--signal=TERM', `--kill-after=${KILL_AFTER_S}`, String(seconds), command.program, ...command.args];
  const limitMs = (seconds + KILL_AFTER_S + 30) * 1000;
  const [program, args] = transientUnit === null ? [bounded[0] as string, bounded.slice(1)]
    : ['systemd-run', transientServiceArgs(transientUnit, seconds + KILL_AFTER_S + 10, env, bounded)];
  const result = await run(program, args, { env, okCodes: Array.from({ length: 255 }, (_, i) => i + 1), timeoutMs: limitMs });
  const output = transientUnit === null ? `${result.stdout}\n${result.stderr}` : `${await journalTail(transientUnit)}\n${result.stderr}`;
  const tail = output.split('\n').map((l) => l.trimEnd()).filter(Boolean).slice(-20);
  return { timedOut: result.code === 124 || result.code === 137, code: result.code, tail };
}

/** The last lines a unit logged in this boot (what a transient upgrade service printed). */
async function journalTail(unit: string): Promise<string> {
  const out = await run('journalctl', ['--no-pager', '-q', '-b', '-o', 'cat', '-n', '20', '-u', unit], { okCodes: [1], timeoutMs: 15_000 }).catch(() => null);
  return out?.stdout ?? '';
}
