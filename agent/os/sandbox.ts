import { access, constants } from 'node:fs/promises';
import { ImprintError } from './errors.js';
import { run, type RunResult } from './exec.js';
import { sandboxSeccompFilter } from './seccomp.js';

// The one way imprint runs code that belongs to an image (its sshd, or a host tool over its
// files): bubblewrap, with no privilege over the machine running imprint.
//  - Every namespace is new (user, mount, pid, ipc, uts, net, cgroup), and no further user
//    namespace can be made inside (--disable-userns). The process sees its own /proc (its own
//    pid namespace: /proc/1 is bwrap's init, never the host's), a minimal /dev, and private
//    tmpfs /run and /tmp; nothing of the host's file system but what the spec binds, read-only.
//  - Run as real root, the user namespace maps uid 0 to 0 and nothing else. That is what lets
//    sshd read the image's root-owned 0600 host keys: the owner's permission bits apply, which
//    needs no capability. It gets no capability at all (--cap-drop ALL empties the bounding
//    set, and no_new_privs stops a set-uid binary from regaining any), so uid 0 inside has no
//    CAP_DAC_OVERRIDE, no CAP_SYS_ADMIN (no remount of the read-only binds), and everything it
//    could reach is bound read-only anyway. A seccomp filter (os/seccomp.ts) refuses mount,
//    namespace, ptrace, keyring, bpf and module calls behind that.
//  - --die-with-parent: it never outlives imprint; --new-session: no TIOCSTI into our terminal;
//    --clearenv: it inherits nothing of our environment.
// Data the program needs from us (a throwaway host key, candidate config files) is copied in
// through descriptors (--ro-bind-data), so no host path of ours is shown to it.

export const BWRAP = '/usr/bin/bwrap';

export interface SandboxFile {
  /** Path inside the sandbox (under /run or /tmp, or over a file of the bound tree). */
  at: string;
  data: Buffer | string;
  /** Permission bits of the copy; 0600 for secrets. */
  mode: number;
}

export interface SandboxSpec {
  /** A host directory shown read-only at / (an image tree). Without it / is an empty tmpfs. */
  root?: string;
  /** Host paths shown read-only inside; `optional` ones are skipped when missing on the host. */
  roBinds?: { from: string; to: string; optional?: boolean }[];
  /** Directories made on the sandbox's own tmpfs mounts (for example /run/sshd). */
  dirs?: string[];
  files?: SandboxFile[];
  /** Seconds before the sandboxed program is killed. */
  timeoutMs?: number;
  /** Exit codes that are answers rather than failures. */
  okCodes?: number[];
}

/** bubblewrap's path when it is installed here, else null. */
export async function sandboxTool(): Promise<string | null> {
  return access(BWRAP, constants.X_OK).then(() => BWRAP, () => null);
}

/** The bwrap arguments for a spec, and the data for the descriptors they name (fd 3 onwards). */
export function sandboxArgs(spec: SandboxSpec, program: string, args: readonly string[]): { args: string[]; fds: Buffer[] } {
  const fds: Buffer[] = [];
  const fd = (data: Buffer | string): string => {
    fds.push(Buffer.isBuffer(data) ? data : Buffer.from(data, 'utf8'));
    return String(2 + fds.length);
  };
  const out = [
    '--unshare-all', '--unshare-user', '--disable-userns', '--die-with-parent', '--new-session', '--cap-drop', 'ALL',
    '--clearenv', '--setenv', 'PATH', '/usr/sbin:/usr/bin:/sbin:/bin', '--setenv', 'LANG', 'C',
  ];
  if (spec.root !== undefined) out.push('--ro-bind', spec.root, '/');
  for (const b of spec.roBinds ?? []) out.push(b.optional ? '--ro-bind-try' : '--ro-bind', b.from, b.to);
  out.push('--proc', '/proc', '--dev', '/dev', '--tmpfs', '/run', '--tmpfs', '/tmp');
  for (const d of spec.dirs ?? []) out.push('--dir', d);
  for (const f of spec.files ?? []) out.push('--perms', f.mode.toString(8).padStart(4, '0'), '--ro-bind-data', fd(f.data), f.at);
  const filter = sandboxSeccompFilter();
  if (filter !== null) out.push('--seccomp', fd(filter));
  out.push('--chdir', '/', '--', program, ...args);
  return { args: out, fds };
}

/** Runs `program args` inside the sandbox; a failure is an ImprintError naming the program, not bwrap. */
export async function runSandboxed(spec: SandboxSpec, program: string, args: readonly string[]): Promise<RunResult> {
  const bwrap = await sandboxTool();
  if (bwrap === null) throw new ImprintError(`running ${program} from an image needs bubblewrap (apt-get install bubblewrap): imprint never runs an image's code unconfined`);
  const built = sandboxArgs(spec, program, args);
  try {
    return await run(bwrap, built.args, { fds: built.fds, timeoutMs: spec.timeoutMs ?? 60_000, okCodes: spec.okCodes });
  } catch (err) {
    throw new ImprintError((err as Error).message.replace(`${bwrap} failed`, `${program} (sandboxed) failed`), 'command');
  }
}
