import { spawn } from 'node:child_process';
import { constants } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { ImprintError } from './errors.js';
import type { RootTree } from './root.js';

// One imprint run at a time per root tree (a manual `imprint boot` while the unit runs, two
// pipelines on one image). The lock is flock(2) on the tree's root directory itself (the same
// inode whatever path or bind mount names it), so nothing is created in the image (a sealed
// image gets no lock file), taken on a descriptor imprint itself holds: the host's flock(1) is handed that descriptor and locks it
// (flock locks belong to the open file, which imprint and the child share), then exits. Why
// this rather than a pid file made with O_EXCL: the kernel releases the lock when imprint's
// last descriptor closes, however it ends (SIGKILL, OOM, power loss), so there is no stale
// lock to detect, and no race between two runs that both judge a pid file stale
// and both "break" it; pid and start-time checks also mislead across PID namespaces (a tree
// shared between containers); and a directory cannot be removed and re-created under a holder
// the way a lock file can. Node has no flock() of its own;
// flock(1) is util-linux's (Essential on Debian; required by systemd on every distribution),
// run from the host, never from the tree. Children imprint starts do not inherit the
// descriptor (Node opens with O_CLOEXEC).

/** Exit status of a run that gave up waiting for the lock (EX_TEMPFAIL: try again later). */
export const EXIT_LOCKED = 75;

const CONFLICT = 10;

export class RunLockBusy extends ImprintError {
  constructor(message: string) {
    super(message, 'task');
    this.name = 'RunLockBusy';
  }
}

export interface RunLock {
  release(): Promise<void>;
}

function flockOn(handle: FileHandle, args: string[]): Promise<number> {
  return new Promise((resolve, reject) => {
    const child = spawn('flock', ['-E', String(CONFLICT), ...args, '3'], {
      env: { PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', LC_ALL: 'C' },
      stdio: ['ignore', 'ignore', 'pipe', handle.fd],
    });
    let err = '';
    child.stderr?.on('data', (d: Buffer) => {
      err += d.toString('utf8');
    });
    child.on('error', (e: NodeJS.ErrnoException) => reject(new ImprintError(`flock: ${e.code === 'ENOENT' ? 'not installed' : e.message}`, 'command')));
    child.on('close', (code) => {
      if (code === 0 || code === CONFLICT) resolve(code);
      else reject(new ImprintError(`flock failed: ${err.trim() || `exit status ${code}`}`, 'command'));
    });
  });
}

/**
 * Takes the tree's run lock; when another run holds it, says so through `waiting` and waits up
 * to `waitMs`, then throws RunLockBusy. Hold the returned lock until the run ends.
 */
export async function acquireRunLock(root: RootTree, waitMs: number, waiting: (message: string) => void): Promise<RunLock> {
  const handle = await open(root.isLive ? '/' : root.dir, constants.O_RDONLY | constants.O_DIRECTORY);
  try {
    if ((await flockOn(handle, ['--exclusive', '--nonblock'])) !== 0) {
      waiting(`another imprint run holds the lock on this tree (${root.dir}); waiting up to ${Math.round(waitMs / 1000)} s for it to end`);
      if ((await flockOn(handle, ['--exclusive', '--wait', String(waitMs / 1000)])) !== 0) {
        throw new RunLockBusy(`another imprint run still holds the lock on this tree (${root.dir}) after ${waitMs / 1000} s; nothing was changed (run again when it has ended)`);
      }
    }
  } catch (err) {
    await handle.close();
    throw err;
  }
  return { release: () => handle.close() };
}
