import type { AuditContext } from '../context.js';
import { ev, finding, G } from '../guidelines.js';
import { CheckSkipped, type Check, type Finding, type Severity } from '../types.js';
import { unitValues } from '../parsers/unit-file.js';
import { formatEndpoint, isLoopback, listeningSockets, parseProcNet, type ProcSocket } from '../parsers/proc-net.js';
import type { EnabledUnit } from '../units.js';
import { listProcesses, PROC_NET_TABLES, readProcNet, type ProcessInfo } from '../../os/proc.js';

// Services: what starts at boot (offline: the *.wants links), and on a live system what runs and
// what listens (from /proc: the socket tables of this network namespace, IPv4 and IPv6, TCP and
// UDP, joined to the processes holding each socket through /proc/PID/fd).

/** Services that authenticate in clear text or expose file shares and desktops to the network. */
const RISKY = /^(?:telnet|telnetd|rsh|rlogin|rexec|tftp|tftpd-hpa|atftpd|vsftpd|proftpd|pure-ftpd|xinetd|inetd|openbsd-inetd|inetutils-inetd|x11vnc|vncserver|tigervnc|xrdp|rpcbind|nfs-server|nfs-kernel-server|smbd|nmbd|snmpd)$/;

export function unitBase(name: string): string {
  return name.replace(/\.[a-z]+$/, '').replace(/@.*$/, '');
}

function execLine(u: EnabledUnit): string {
  const keys = u.name.endsWith('.socket') ? ['ListenStream', 'ListenDatagram'] : ['ExecStart'];
  const section = u.name.endsWith('.socket') ? 'Socket' : u.name.endsWith('.path') ? 'Path' : 'Service';
  const values = keys.flatMap((k) => unitValues(u.assignments, section, k).map((a) => `${k}=${a.value}`));
  return values.join('; ');
}

export const servicesEnabled: Check = {
  id: 'services.enabled',
  title: 'Services enabled at boot',
  severity: 'medium',
  guidelines: [G.services, G.egiServices, G.cleartext],
  async run(ctx) {
    const out: Finding[] = [];
    for (const u of await ctx.units()) {
      if (u.name.endsWith('.target') || u.name.endsWith('.timer')) continue;
      const base = unitBase(u.name);
      let severity: Severity = 'info';
      let message = `${u.name} starts at boot (${u.scope === 'user' ? 'in every user session, ' : ''}wanted by ${u.wantedBy})`;
      if (RISKY.test(base)) {
        severity = 'medium';
        message += ': a service that authenticates in clear text or exposes shares or a desktop';
      } else if (u.local) {
        severity = 'low';
        message += `: defined in ${u.definition}, by whoever built the image rather than by a package`;
      }
      const exec = execLine(u);
      out.push(finding(severity, message, ev(u.link, null, `→ ${u.definition ?? 'no unit file found'}${exec ? `; ${exec}` : ''}`),
        { unit: u.name, scope: u.scope, wantedBy: u.wantedBy, definition: u.definition, local: u.local }));
    }
    return out;
  },
};

// --- live: processes ---------------------------------------------------------------------------

function isKernelThread(p: ProcessInfo): boolean {
  return p.exe === null && (p.ppid === 2 || p.pid === 2 || p.ppid === 0);
}

async function userNames(ctx: AuditContext): Promise<Map<number, string>> {
  const names = new Map<number, string>();
  for (const a of await ctx.accounts().catch(() => [])) if (!names.has(a.uid)) names.set(a.uid, a.name);
  return names;
}

const SCRATCH_DIRS = /^\/(?:tmp|var\/tmp|dev\/shm|run\/shm)\//;

export const servicesProcesses: Check = {
  id: 'services.processes',
  title: 'Running processes (live system)',
  severity: 'high',
  guidelines: [G.processes, G.egiServices],
  liveOnly: true,
  async run(ctx) {
    if (!ctx.live) throw new CheckSkipped('an offline tree has no running processes (live system only)');
    const names = await userNames(ctx);
    const groups = new Map<string, { exe: string; comm: string; uid: number; pids: number[]; deleted: boolean }>();
    for (const p of await listProcesses()) {
      if (isKernelThread(p) || p.pid === process.pid) continue;
      const exe = p.exe ?? `[${p.comm}]`;
      const key = `${exe}\0${p.uid}\0${p.exeDeleted}`;
      const g = groups.get(key) ?? { exe, comm: p.comm, uid: p.uid, pids: [], deleted: p.exeDeleted };
      g.pids.push(p.pid);
      groups.set(key, g);
    }
    const out: Finding[] = [];
    for (const g of groups.values()) {
      const user = names.get(g.uid) ?? `uid ${g.uid}`;
      const count = `${g.pids.length} process${g.pids.length === 1 ? '' : 'es'} as ${user}`;
      let severity: Severity = 'info';
      let message = `${g.exe} runs (${count})`;
      if (SCRATCH_DIRS.test(g.exe)) {
        severity = 'high';
        message = `${g.exe} runs from a scratch directory (${count}): where dropped malware runs from`;
      } else if (g.exe.startsWith('/memfd:')) {
        severity = 'medium';
        message = `${g.exe} runs from an anonymous memory file (${count}): what container runtimes do, and fileless malware`;
      } else if (g.deleted) {
        severity = 'medium';
        message = `${g.exe} runs from a file that was deleted or replaced since it started (${count}): an upgrade without restart, or a program hiding its file`;
      }
      out.push(finding(severity, message, ev(`/proc/${g.pids[0]}/exe`, null, `${g.exe}${g.deleted ? ' (deleted)' : ''} comm=${g.comm} user=${user} pids=${g.pids.slice(0, 20).join(',')}${g.pids.length > 20 ? ',…' : ''}`),
        { program: g.exe, comm: g.comm, user, uid: g.uid, processes: g.pids.length, deleted: g.deleted }));
    }
    return out;
  },
};

// --- live: listening sockets -------------------------------------------------------------------

export interface ListeningSocket extends ProcSocket {
  table: string;
  owners: { pid: number; exe: string | null; comm: string; uid: number }[];
}

export async function liveListeningSockets(): Promise<ListeningSocket[]> {
  const sockets: ListeningSocket[] = [];
  for (const table of PROC_NET_TABLES) {
    const text = await readProcNet(table);
    if (text === null) continue;
    for (const s of listeningSockets(parseProcNet(text, table))) sockets.push({ ...s, table, owners: [] });
  }
  if (sockets.length === 0) return sockets;
  const byInode = new Map(sockets.map((s) => [s.inode, s]));
  for (const p of await listProcesses()) {
    for (const inode of p.sockets) {
      const s = byInode.get(inode);
      if (s && !s.owners.some((o) => o.pid === p.pid)) s.owners.push({ pid: p.pid, exe: p.exe, comm: p.comm, uid: p.uid });
    }
  }
  return sockets;
}

export const servicesListening: Check = {
  id: 'services.listening',
  title: 'Listening TCP and UDP ports with their program, IPv4 and IPv6 (live system)',
  severity: 'low',
  guidelines: [G.ports, G.egiNmap],
  liveOnly: true,
  async run(ctx) {
    if (!ctx.live) throw new CheckSkipped('an offline tree has no open ports (live system only)');
    const names = await userNames(ctx);
    const out: Finding[] = [];
    for (const s of await liveListeningSockets()) {
      const owner = s.owners[0];
      const program = owner?.exe ?? (owner ? `[${owner.comm}]` : '(no process in this namespace)');
      const user = owner ? (names.get(owner.uid) ?? `uid ${owner.uid}`) : null;
      const endpoint = formatEndpoint(s.address, s.port);
      const sshd = owner !== undefined && /(?:^|\/)sshd$/.test(owner.exe ?? owner.comm);
      const loopback = isLoopback(s.address);
      const severity: Severity = loopback || sshd ? 'info' : 'low';
      const scope = loopback ? 'on loopback only' : s.address === '0.0.0.0' || s.address === '::' ? 'on every address' : `on ${s.address}`;
      const pids = s.owners.map((o) => o.pid).join(',');
      out.push(finding(severity, `${s.proto.toUpperCase()}/IPv${s.family} port ${s.port} is open ${scope}: ${program}`,
        ev(`/proc/net/${s.table}`, s.line, `${endpoint} ${s.proto === 'tcp' ? 'LISTEN' : 'bound'} inode ${s.inode} ${program}${pids ? ` pid ${pids}` : ''}${user ? ` user ${user}` : ''}`),
        { proto: s.proto, family: s.family, address: s.address, port: s.port, program: owner?.exe ?? null, comm: owner?.comm ?? null, pids, user, loopback }));
    }
    return out;
  },
};

export const SERVICE_CHECKS = [servicesEnabled, servicesProcesses, servicesListening];
