import { run } from './exec.js';

// sd_notify through `systemd-notify --pid=<our pid>`, which the unit accepts with
// NotifyAccess=all. Outside systemd (no NOTIFY_SOCKET) every call is a no-op. A failed
// notification never fails the boot: it is only reported through the returned promise.
//
// Why a child and not the socket itself: NOTIFY_SOCKET is an AF_UNIX SOCK_DGRAM socket, and
// Node has no datagram Unix sockets (dgram is udp4/udp6 only; net.connect() to a datagram
// socket fails with EPROTOTYPE) without a native addon, which the single binary cannot load.
//
// Why every notification is awaited before the process exits: the message carries the agent's
// PID (SCM_CREDENTIALS, hence --pid), and the kernel refuses credentials of a process that no
// longer exists. systemd-notify 257 then gives up, older ones send their own PID instead: a
// READY=1 or final STATUS= sent after the agent exited is lost or attributed to a process
// systemd no longer knows, and the unit fails with result "protocol". So the notifications go
// out one at a time, in order, and `notificationsSent()` is awaited before exit.

let queue: Promise<void> = Promise.resolve();

export function notifySystemd(fields: Record<string, string>): Promise<void> {
  if (!process.env.NOTIFY_SOCKET) return Promise.resolve();
  const socket = process.env.NOTIFY_SOCKET;
  const assignments = Object.entries(fields).map(([k, v]) => `${k}=${v.replace(/\n/g, ' ')}`);
  const send = (): Promise<void> =>
    run('systemd-notify', [`--pid=${process.pid}`, ...assignments], {
      env: { PATH: '/usr/bin:/bin', NOTIFY_SOCKET: socket },
      timeoutMs: 5_000,
    }).then(() => undefined, () => undefined);
  queue = queue.then(send);
  return queue;
}

/** Resolves when every notification asked for so far has been handed to systemd. */
export function notificationsSent(): Promise<void> {
  return queue;
}

export function notifyStatus(status: string): Promise<void> {
  return notifySystemd({ STATUS: status });
}

let extending = false;

/**
 * Asks systemd for more start-up time while we wait on something slow (metadata). At most one
 * such child at a time: the wait hook fires on every retry, and each child costs CPU.
 */
export function notifyExtendTimeout(ms: number, status: string): Promise<void> {
  if (extending) return Promise.resolve();
  extending = true;
  return notifySystemd({ EXTEND_TIMEOUT_USEC: String(Math.ceil(ms * 1000)), STATUS: status }).finally(() => {
    extending = false;
  });
}
