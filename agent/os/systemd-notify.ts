import { run } from './exec.js';

// sd_notify without a native addon: systemd-notify --pid=<our pid>, which the unit accepts with
// NotifyAccess=all. Outside systemd (no NOTIFY_SOCKET) every call is a no-op. A failed
// notification never fails the boot: it is only reported through the returned promise.

export function notifySystemd(fields: Record<string, string>): Promise<void> {
  if (!process.env.NOTIFY_SOCKET) return Promise.resolve();
  const assignments = Object.entries(fields).map(([k, v]) => `${k}=${v.replace(/\n/g, ' ')}`);
  return run('systemd-notify', [`--pid=${process.pid}`, ...assignments], {
    env: { PATH: '/usr/bin:/bin', NOTIFY_SOCKET: process.env.NOTIFY_SOCKET },
    timeoutMs: 5_000,
  }).then(() => undefined, () => undefined);
}

export function notifyStatus(status: string): Promise<void> {
  return notifySystemd({ STATUS: status });
}

/** Asks systemd for more start-up time while we wait on something slow (metadata). */
export function notifyExtendTimeout(ms: number, status: string): Promise<void> {
  return notifySystemd({ EXTEND_TIMEOUT_USEC: String(Math.ceil(ms * 1000)), STATUS: status });
}
