import { setPriority } from 'node:os';

// Work that sshd is not waiting for (RSA host keys on OpenSSH < 9.8) runs at the lowest CPU
// priority, so that on a busy host (a fleet launched on shared cores) it takes only the time
// the boot's path leaves free. No I/O priority is set: a process without one gets the
// best-effort class at the level its nice value implies (the kernel's task_nice_ioprio: nice 19
// is level 7, the lowest), so this one call lowers both, with no ionice exec per key.

const BACKGROUND_NICE = 19;

/** Lowers a child's CPU (and so I/O) priority; a child that has already exited is left alone. */
export function lowerPriority(pid: number | undefined): void {
  if (pid === undefined) return;
  try {
    setPriority(pid, BACKGROUND_NICE);
  } catch {
    // ESRCH: it exited meanwhile; EACCES cannot happen for our own child. Either way it only
    // runs at the priority it had: slower for the critical path, never less safe.
  }
}
