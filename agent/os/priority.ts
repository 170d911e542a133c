import { setPriority } from 'node:os';

// Work that sshd is not waiting for (RSA host keys) runs at a lower CPU priority, so that on a
// busy host (a fleet launched on shared cores) it yields to the boot's path. Not the lowest:
// measured here under 2 busy loops per core, RSA 3072 took 1-2 s at nice 0, 5-40 s at nice 10
// and 70-90 s at nice 19 (imprint's exit, and RSA on sshd < 9.8, waited that long). nice 10
// gives the boot's path ten times RSA's CPU share and still bounds the wait. No I/O priority is
// set: a process without one gets the best-effort class at the level its nice value implies
// (the kernel's task_nice_ioprio: nice 10 is level 6 of 0-7), so one call lowers both, with no
// ionice exec per key.

export const BACKGROUND_NICE = 10;

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
