import { readFile, readdir, readlink } from 'node:fs/promises';

// Read-only views of /proc for `imprint audit` on a live system: the socket tables of the
// current network namespace and the running processes with the sockets they hold. Parsing is
// in audit/parsers/proc-net.ts (pure, tested with fixture text); this file only reads.

export const PROC_NET_TABLES = ['tcp', 'tcp6', 'udp', 'udp6'] as const;
export type ProcNetTable = (typeof PROC_NET_TABLES)[number];

/** The text of /proc/net/<table>; null when the kernel has no such table (IPv6 disabled). */
export async function readProcNet(table: ProcNetTable, proc = '/proc'): Promise<string | null> {
  return readFile(`${proc}/net/${table}`, 'utf8').catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return null;
    throw err;
  });
}

export interface ProcessInfo {
  pid: number;
  ppid: number;
  /** Real uid, from /proc/PID/status. */
  uid: number;
  /** The kernel's short name (comm), at most 15 characters. */
  comm: string;
  /** The executable's path (/proc/PID/exe), without a " (deleted)" suffix; null when unreadable. */
  exe: string | null;
  /** The executable was deleted (or replaced) after the process started. */
  exeDeleted: boolean;
  /** Inodes of the sockets among its open descriptors. */
  sockets: number[];
}

function statusField(status: string, name: string): string | undefined {
  const m = new RegExp(`^${name}:\\s*(.*)$`, 'm').exec(status);
  return m?.[1];
}

async function readProcess(proc: string, pid: number): Promise<ProcessInfo | null> {
  const dir = `${proc}/${pid}`;
  let status: string;
  try {
    status = await readFile(`${dir}/status`, 'utf8');
  } catch {
    return null; // exited meanwhile
  }
  const uid = Number.parseInt((statusField(status, 'Uid') ?? '').split(/\s+/)[0] ?? '', 10);
  const ppid = Number.parseInt(statusField(status, 'PPid') ?? '', 10);
  const comm = (await readFile(`${dir}/comm`, 'utf8').catch(() => statusField(status, 'Name') ?? '')).replace(/\n$/, '');
  let exe: string | null = null;
  let exeDeleted = false;
  try {
    const link = await readlink(`${dir}/exe`);
    exeDeleted = link.endsWith(' (deleted)');
    exe = exeDeleted ? link.slice(0, -' (deleted)'.length) : link;
  } catch {
    exe = null; // a kernel thread, or not ours to read
  }
  const sockets: number[] = [];
  const fds = await readdir(`${dir}/fd`).catch(() => [] as string[]);
  for (const fd of fds) {
    const target = await readlink(`${dir}/fd/${fd}`).catch(() => '');
    const m = /^socket:\[(\d+)\]$/.exec(target);
    if (m) sockets.push(Number.parseInt(m[1] as string, 10));
  }
  return { pid, ppid: Number.isNaN(ppid) ? 0 : ppid, uid: Number.isNaN(uid) ? -1 : uid, comm, exe, exeDeleted, sockets };
}

/** Every process visible in /proc (kernel threads included: their exe is null and ppid 2 or 0). */
export async function listProcesses(proc = '/proc'): Promise<ProcessInfo[]> {
  const names = await readdir(proc);
  const pids = names.filter((n) => /^\d+$/.test(n)).map((n) => Number.parseInt(n, 10)).sort((a, b) => a - b);
  const out: ProcessInfo[] = [];
  for (const pid of pids) {
    const info = await readProcess(proc, pid);
    if (info) out.push(info);
  }
  return out;
}
