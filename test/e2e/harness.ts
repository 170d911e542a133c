// The e2e testbed: two network namespaces joined by one veth pair and nothing else, the metadata
// emulator at 169.254.169.254 in one, a systemd-nspawn container booted in the other, and SSH
// from the metadata side to the container. Nothing here ever uses the machine's own network
// namespace for 169.254.169.254: the emulator and every ssh/sshpass/ssh-keyscan run through
// `ip netns exec <meta-ns>`, and Testbed.verify() refuses to go on unless the namespaces, the
// pair and the addresses are exactly as made.

import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, existsSync, readFileSync, readdirSync, readlinkSync, statSync, type WriteStream } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import {
  alive, childEnv, childrenOfSync, installEmergencyCleanup, killPid, mustRun, run, sleep, trackedNetns, trackedNspawn,
  trackedPids, waitFor, type RunResult,
} from './proc.js';

export const META_ADDR = '169.254.169.254';
export const INST_ADDR = '169.254.0.2';
export const PREFIX_LEN = 16;
export const REPO = fileURLToPath(new URL('../../', import.meta.url));

let sequence = 0;

interface IpAddrInfo { family?: string; local?: string; prefixlen?: number }
interface IpLink { ifindex?: number; ifname?: string; flags?: string[]; link_index?: number; link_netnsid?: number; addr_info?: IpAddrInfo[] }
interface IpRoute { dst?: string; dev?: string; gateway?: string }

async function ipJson<T>(args: string[]): Promise<T[]> {
  const r = await mustRun('ip', ['-j', ...args]);
  const text = r.stdout.trim();
  return text === '' ? [] : (JSON.parse(text) as T[]);
}

function nsInode(path: string): number {
  return statSync(path).ino;
}

export interface TestbedOptions {
  /**
   * Further service addresses (/32) on the metadata side, each reached from the instance by a
   * link route of its own (Azure's wireserver, 168.63.129.16, outside the link-local subnet).
   */
  extraServiceAddresses?: readonly string[];
  /**
   * A private /24 on the metadata side (the address given, e.g. 10.1.1.1): CloudStack's virtual
   * router, which is the DHCP server the instance gets an address from and the metadata service.
   */
  router?: string;
}

export class Testbed {
  private destroyed = false;
  private constructor(
    readonly meta: string,
    readonly inst: string,
    readonly vethMeta: string,
    readonly vethInst: string,
    readonly extra: readonly string[] = [],
    readonly router: string | null = null,
  ) {}

  /** Makes the two namespaces and the pair, then verifies them (throws, cleaning up, if wrong). */
  static async create(opts: TestbedOptions = {}): Promise<Testbed> {
    installEmergencyCleanup();
    const n = sequence++;
    const base = `imprint-e2e-${process.pid}-${n}`;
    for (const a of opts.extraServiceAddresses ?? []) if (!/^\d{1,3}(\.\d{1,3}){3}$/.test(a)) throw new Error(`not an IPv4 address: ${a}`);
    if (opts.router !== undefined && !/^10\.\d{1,3}\.\d{1,3}\.1$/.test(opts.router)) throw new Error(`the router must be a 10.x.y.1 address, not ${opts.router}`);
    // Interface names: at most 15 bytes.
    const bed = new Testbed(`${base}-meta`, `${base}-inst`, `ie${process.pid}m${n}`, `ie${process.pid}i${n}`, opts.extraServiceAddresses ?? [], opts.router ?? null);
    try {
      for (const ns of [bed.meta, bed.inst]) {
        if (existsSync(`/run/netns/${ns}`)) throw new Error(`network namespace ${ns} exists already`);
        await mustRun('ip', ['netns', 'add', ns]);
        trackedNetns.add(ns);
      }
      // The pair is made inside the namespaces: it never exists in this machine's own.
      await mustRun('ip', ['-n', bed.meta, 'link', 'add', bed.vethMeta, 'type', 'veth', 'peer', 'name', bed.vethInst, 'netns', bed.inst]);
      await mustRun('ip', ['-n', bed.meta, 'addr', 'add', `${META_ADDR}/${PREFIX_LEN}`, 'dev', bed.vethMeta]);
      await mustRun('ip', ['-n', bed.inst, 'addr', 'add', `${INST_ADDR}/${PREFIX_LEN}`, 'dev', bed.vethInst]);
      for (const [ns, dev] of [[bed.meta, bed.vethMeta], [bed.inst, bed.vethInst]] as const) {
        await mustRun('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
        await mustRun('ip', ['-n', ns, 'link', 'set', dev, 'up']);
      }
      if (bed.router) await mustRun('ip', ['-n', bed.meta, 'addr', 'add', `${bed.router}/24`, 'dev', bed.vethMeta]);
      for (const a of bed.extra) {
        await mustRun('ip', ['-n', bed.meta, 'addr', 'add', `${a}/32`, 'dev', bed.vethMeta]);
        await mustRun('ip', ['-n', bed.inst, 'route', 'add', `${a}/32`, 'dev', bed.vethInst, 'src', INST_ADDR]);
      }
      // The subnet route comes with the address; make sure it is there (and nothing else).
      await bed.verify();
    } catch (err) {
      await bed.destroy().catch(() => undefined);
      throw err;
    }
    return bed;
  }

  /**
   * Throws (the harness refuses to start) unless: both namespaces exist; this machine's own
   * namespace has neither the metadata address nor either end of the pair; each namespace holds
   * exactly lo and its end of the pair, up, with its address; the two ends are each other's peer;
   * neither namespace has a default route or any route that is not the link-local subnet.
   */
  async verify(): Promise<void> {
    const problems: string[] = [];
    if (this.destroyed) problems.push('the testbed was torn down');
    const listed = (await mustRun('ip', ['netns', 'list'])).stdout.split('\n').map((l) => l.split(' ')[0]);
    for (const ns of [this.meta, this.inst]) if (!listed.includes(ns)) problems.push(`network namespace ${ns} is missing`);
    if (problems.length === 0) {
      const host = await ipJson<IpLink>(['addr', 'show']);
      for (const link of host) {
        if (link.ifname === this.vethMeta || link.ifname === this.vethInst) problems.push(`${link.ifname} is in this machine's own namespace`);
        for (const a of link.addr_info ?? []) if (a.local === META_ADDR || this.extra.includes(a.local ?? '') || (this.router !== null && a.local === this.router)) problems.push(`${a.local} is on this machine's ${link.ifname}`);
      }
      if (nsInode(`/run/netns/${this.meta}`) === nsInode('/proc/self/ns/net')) problems.push(`${this.meta} is this machine's own namespace`);
      const sides = [
        { ns: this.meta, dev: this.vethMeta, addr: META_ADDR, peer: this.vethInst, peerNs: this.inst },
        { ns: this.inst, dev: this.vethInst, addr: INST_ADDR, peer: this.vethMeta, peerNs: this.meta },
      ];
      const index = new Map<string, number>();
      const links = new Map<string, IpLink>();
      for (const side of sides) {
        const all = await ipJson<IpLink>(['-n', side.ns, 'addr', 'show']);
        const names = all.map((l) => l.ifname).sort();
        const want = ['lo', side.dev].sort();
        if (JSON.stringify(names) !== JSON.stringify(want)) problems.push(`${side.ns} has interfaces ${names.join(',')}, expected ${want.join(',')}`);
        for (const link of all) {
          if (!(link.flags ?? []).includes('UP')) problems.push(`${side.ns}: ${link.ifname} is down`);
          if (link.ifname === side.dev) {
            index.set(side.dev, link.ifindex ?? -1);
            const inet = (link.addr_info ?? []).filter((a) => a.family === 'inet').map((a) => `${a.local}/${a.prefixlen}`);
            const want = [`${side.addr}/${PREFIX_LEN}`, ...(side.ns === this.meta ? [...this.extra.map((a) => `${a}/32`), ...(this.router ? [`${this.router}/24`] : [])] : [])];
            if (JSON.stringify([...inet].sort()) !== JSON.stringify([...want].sort())) {
              problems.push(`${side.ns}: ${side.dev} has ${inet.join(',') || 'no IPv4 address'}, expected ${want.join(',')}`);
            }
          }
        }
        const [detail] = await ipJson<IpLink>(['-n', side.ns, '-d', 'link', 'show', side.dev]).catch(() => [] as IpLink[]);
        if (detail) links.set(side.dev, detail);
        else problems.push(`${side.ns}: no ${side.dev}`);
        const routes = await ipJson<IpRoute>(['-n', side.ns, 'route', 'show', 'table', 'main']);
        const extraRoutes = side.ns === this.inst ? this.extra : [];
        const routerNet = side.ns === this.meta && this.router ? this.router.replace(/\.1$/, '.0/24') : null;
        for (const r of routes) {
          const known = r.dst === `169.254.0.0/${PREFIX_LEN}` || extraRoutes.includes(r.dst ?? '') || (routerNet !== null && r.dst === routerNet);
          if (!known || r.dev !== side.dev || r.gateway) problems.push(`${side.ns}: unexpected route ${JSON.stringify(r)}`);
        }
        for (const a of extraRoutes) if (!routes.some((r) => r.dst === a)) problems.push(`${side.ns}: no route to ${a}`);
      }
      for (const side of sides) {
        const link = links.get(side.dev);
        if (link && (link.link_netnsid === undefined || link.link_index !== index.get(side.peer))) {
          problems.push(`${side.dev} in ${side.ns} is not paired with ${side.peer} in ${side.peerNs}`);
        }
      }
    }
    if (problems.length > 0) throw new Error(`e2e harness refuses to start: ${problems.join('; ')}`);
  }

  /** True when the process lives in the metadata namespace (and not in this machine's own). */
  inMetaNamespace(pid: number): boolean {
    try {
      return statSync(`/proc/${pid}/ns/net`).ino === nsInode(`/run/netns/${this.meta}`);
    } catch {
      return false;
    }
  }

  inInstanceNamespace(pid: number): boolean {
    try {
      return statSync(`/proc/${pid}/ns/net`).ino === nsInode(`/run/netns/${this.inst}`);
    } catch {
      return false;
    }
  }

  /** Runs a command inside the metadata namespace (the only way the tests reach the container). */
  inMeta(file: string, args: readonly string[], opts: { timeoutMs?: number; input?: string; env?: NodeJS.ProcessEnv } = {}): Promise<RunResult> {
    return run('ip', ['netns', 'exec', this.meta, file, ...args], opts);
  }

  // ---- SSH from the metadata side ------------------------------------------------------------

  private sshBase(extra: string[]): string[] {
    return [
      '-F', '/dev/null',
      '-o', 'StrictHostKeyChecking=no', '-o', 'UserKnownHostsFile=/dev/null', '-o', 'GlobalKnownHostsFile=/dev/null',
      '-o', 'ConnectTimeout=3', '-o', 'ServerAliveInterval=5', '-o', 'ServerAliveCountMax=2',
      ...extra,
    ];
  }

  /** A key login running `command`; never throws on failure. */
  ssh(key: string, user: string, command: string, timeoutMs = 30_000): Promise<RunResult> {
    return this.inMeta('ssh', [
      ...this.sshBase(['-i', key, '-o', 'IdentitiesOnly=yes', '-o', 'IdentityAgent=none', '-o', 'BatchMode=yes', '-o', 'LogLevel=ERROR']),
      `${user}@${INST_ADDR}`, command,
    ], { timeoutMs });
  }

  async sshOk(key: string, user: string, command: string, timeoutMs = 30_000): Promise<string> {
    const r = await this.ssh(key, user, command, timeoutMs);
    if (r.code !== 0) throw new Error(`ssh ${user}@${INST_ADDR} ${JSON.stringify(command)} failed (${r.code ?? r.signal}): ${r.stderr.trim()}`);
    return r.stdout;
  }

  /**
   * A password login with sshpass (password in the environment, not argv). Returns the exit
   * code and the methods the server offered ("Authentications that can continue").
   */
  async passwordLogin(user: string, password: string): Promise<{ code: number | null; methods: string[]; stderr: string }> {
    const r = await this.inMeta('sshpass', ['-e', 'ssh', ...this.sshBase([
      '-o', 'PreferredAuthentications=password,keyboard-interactive', '-o', 'PubkeyAuthentication=no',
      '-o', 'NumberOfPasswordPrompts=1', '-o', 'IdentityAgent=none', '-v',
    ]), `${user}@${INST_ADDR}`, 'true'], { timeoutMs: 30_000, env: childEnv({ SSHPASS: password }) });
    const methods = new Set<string>();
    for (const m of r.stderr.matchAll(/Authentications that can continue: ([\w,-]+)/g)) for (const x of (m[1] ?? '').split(',')) methods.add(x);
    return { code: r.code, methods: [...methods].sort(), stderr: r.stderr };
  }

  /** SHA256 fingerprints of the host keys sshd offers (ssh-keyscan from the metadata side). */
  async scanHostKeys(): Promise<Map<string, string>> {
    const scan = await this.inMeta('ssh-keyscan', ['-T', '5', '-t', 'rsa,ecdsa,ed25519', INST_ADDR], { timeoutMs: 30_000 });
    const lines = scan.stdout.split('\n').filter((l) => l.startsWith(INST_ADDR));
    if (lines.length === 0) throw new Error(`ssh-keyscan got no keys: ${scan.stderr.trim()}`);
    return fingerprintsOf(lines.map((l) => l.slice(INST_ADDR.length + 1)).join('\n') + '\n');
  }

  async destroy(): Promise<void> {
    this.destroyed = true;
    for (const ns of [this.meta, this.inst]) {
      if (!trackedNetns.has(ns)) continue;
      const r = await run('ip', ['netns', 'delete', ns]);
      if (r.code === 0 || !existsSync(`/run/netns/${ns}`)) trackedNetns.delete(ns);
      else throw new Error(`ip netns delete ${ns}: ${r.stderr.trim()}`);
    }
  }
}

/** type → SHA256:... for public key lines ("type base64 [comment]"), by ssh-keygen -lf -. */
export async function fingerprintsOf(publicKeyLines: string): Promise<Map<string, string>> {
  const r = await mustRun('ssh-keygen', ['-l', '-E', 'sha256', '-f', '-'], { input: publicKeyLines });
  return parseFingerprintLines(r.stdout.split('\n'));
}

/** Parses "256 SHA256:xxx comment (ED25519)" lines into type → fingerprint. */
export function parseFingerprintLines(lines: string[]): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of lines) {
    const m = /^\d+ (SHA256:[A-Za-z0-9+/=]+) .*\((\w+)\)\s*$/.exec(line.trim());
    if (m) out.set((m[2] as string).toLowerCase(), m[1] as string);
  }
  return out;
}

// ---- the metadata emulator -------------------------------------------------------------------

export interface EmulatorOptions {
  instanceId: string;
  keys: string[];
  scenarios?: string[];
  /** Another cloud's dialect (imprint emulate --platform). */
  platform?: string;
  /** --user and --hostname of a platform dialect. */
  user?: string;
  hostname?: string;
  /** Keys for other logins than `user` (GCE "USER:KEY" lines). */
  userKeys?: readonly { user: string; key: string }[];
  /** Where it listens in the metadata namespace (default META_ADDR:80): one of the testbed's addresses. */
  address?: string;
}

/** How to run imprint on this machine for the emulator: the single binary if built, else node + bundle. */
export function emulatorCommand(): { file: string; args: string[]; describe: string } {
  const binary = join(REPO, 'dist/imprint-linux-x64');
  if (process.env.IMPRINT_E2E_EMULATOR !== 'bundle' && existsSync(binary)) return { file: binary, args: [], describe: 'dist/imprint-linux-x64' };
  return { file: process.execPath, args: [join(REPO, 'dist/imprint.cjs')], describe: 'node dist/imprint.cjs' };
}

export class Emulator {
  readonly lines: string[] = [];
  private exitCode: number | null | undefined;
  private readonly exited: Promise<void>;

  private constructor(private readonly child: ChildProcess, readonly pid: number) {
    this.exited = new Promise((resolve) => child.on('exit', (code) => { this.exitCode = code; trackedPids.delete(pid); resolve(); }));
  }

  static async start(bed: Testbed, opts: EmulatorOptions): Promise<Emulator> {
    await bed.verify();
    const cmd = emulatorCommand();
    const address = opts.address ?? META_ADDR;
    if (address !== META_ADDR && !bed.extra.includes(address) && address !== bed.router) throw new Error(`e2e harness refuses to start: ${address} is not an address of the testbed`);
    const args = ['netns', 'exec', bed.meta, cmd.file, ...cmd.args, 'emulate', '--listen', `${address}:80`, '--instance-id', opts.instanceId];
    for (const k of opts.keys) args.push('--key', k);
    for (const s of opts.scenarios ?? []) args.push('--scenario', s);
    if (opts.platform) args.push('--platform', opts.platform);
    if (opts.user) args.push('--user', opts.user);
    if (opts.hostname) args.push('--hostname', opts.hostname);
    for (const k of opts.userKeys ?? []) args.push('--user-key', `${k.user}=${k.key}`);
    const child = spawn('ip', args, { env: childEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
    if (child.pid === undefined) throw new Error('could not start the emulator');
    trackedPids.add(child.pid);
    const emu = new Emulator(child, child.pid);
    let buffer = '';
    const take = (d: string): void => {
      buffer += d;
      let i: number;
      while ((i = buffer.indexOf('\n')) >= 0) {
        emu.lines.push(buffer.slice(0, i));
        buffer = buffer.slice(i + 1);
      }
    };
    child.stdout?.setEncoding('utf8').on('data', take);
    child.stderr?.setEncoding('utf8').on('data', take);
    try {
      await waitFor('the emulator to listen', () => {
        if (emu.exitCode !== undefined) throw new Error(`the emulator exited (${emu.exitCode}): ${emu.lines.join('\n')}`);
        return emu.lines.length > 0;
      }, 15_000, 20);
      // `ip netns exec` switches namespace and then execs: the listening process must be in meta.
      if (!bed.inMetaNamespace(emu.pid)) throw new Error(`e2e harness refuses to go on: the emulator (pid ${emu.pid}) is not in ${bed.meta}`);
    } catch (err) {
      await emu.stop();
      throw err;
    }
    return emu;
  }

  /** The request log lines ("emulate: METHOD PATH STATUS ..."). */
  requests(): string[] {
    return this.lines.filter((l) => /^emulate: (GET|PUT|HEAD|POST|DELETE) /.test(l));
  }

  async stop(): Promise<void> {
    if (this.exitCode !== undefined) return;
    killPid(this.pid, 'SIGTERM');
    const done = await Promise.race([this.exited.then(() => true), sleep(5_000).then(() => false)]);
    if (!done) {
      killPid(this.pid, 'SIGKILL');
      await this.exited;
    }
  }
}

// ---- the container -----------------------------------------------------------------------------

export interface BootOptions {
  machine: string;
  consoleFile: string;
  /** A guest with systemd >= 256 (Debian 13) refuses this host's hybrid cgroup hierarchy. */
  unifiedCgroups?: boolean;
  /** More nspawn options (a device bound in, firmware tables overlaid), put before -D. */
  extraArgs?: readonly string[];
}

export class Container {
  /** performance.now() just before systemd-nspawn was started. */
  readonly startedAt: number;
  /**
   * CLOCK_MONOTONIC (µs) at the same moment (libuv's hrtime). No time namespace: systemd's
   * *TimestampMonotonic and the journal's monotonic stamps inside are on the same clock.
   */
  startedMonoUs = 0;
  private consoleText = '';
  private exitCode: number | null | undefined;
  private readonly exited: Promise<void>;
  private readonly out: WriteStream;

  private constructor(private readonly bed: Testbed, readonly dir: string, private readonly child: ChildProcess, readonly pid: number, readonly opts: BootOptions, startedAt: number) {
    this.startedAt = startedAt;
    this.out = createWriteStream(opts.consoleFile, { flags: 'a' });
    const take = (d: string): void => {
      this.consoleText += d;
      this.out.write(d);
    };
    child.stdout?.setEncoding('utf8').on('data', take);
    child.stderr?.setEncoding('utf8').on('data', take);
    this.exited = new Promise((resolve) => child.on('exit', (code) => {
      this.exitCode = code;
      trackedNspawn.delete(pid);
      resolve();
    }));
  }

  /**
   * Boots DIR with systemd as init in the instance namespace. --console=read-only: a pty is
   * /dev/console inside, its output forwarded to our pipe (passive would not forward; a regular
   * file as stdout loses output). Nothing is linked to or copied from this machine: no journal
   * link, no resolv.conf, no timezone, not registered with machined.
   */
  static async boot(bed: Testbed, dir: string, opts: BootOptions): Promise<Container> {
    await bed.verify();
    const args = [
      '--quiet', '--register=no', '--keep-unit', `--machine=${opts.machine}`,
      `--network-namespace-path=/run/netns/${bed.inst}`,
      '--link-journal=no', '--resolv-conf=off', '--timezone=off',
      '--console=read-only', ...(opts.extraArgs ?? []), '-D', dir, '-b',
    ];
    const startedAt = performance.now();
    const startedMonoUs = Number(process.hrtime.bigint() / 1000n);
    const env = childEnv({ SYSTEMD_LOG_COLOR: '0', ...(opts.unifiedCgroups ? { SYSTEMD_NSPAWN_UNIFIED_HIERARCHY: '1' } : {}) });
    const child = spawn('systemd-nspawn', args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    if (child.pid === undefined) throw new Error('could not start systemd-nspawn');
    trackedNspawn.add(child.pid);
    const c = new Container(bed, dir, child, child.pid, opts, startedAt);
    c.startedMonoUs = startedMonoUs;
    return c;
  }

  get running(): boolean {
    return this.exitCode === undefined;
  }

  /** Console output so far, without the pty's carriage returns and terminal colours. */
  console(): string {
    // eslint-disable-next-line no-control-regex
    return this.consoleText.replace(/\r/g, '').replace(/\x1b\[[0-9;]*m/g, '');
  }

  /** The container's init (the leader of its pid namespace), a direct child of nspawn. */
  async leader(deadlineMs = 10_000): Promise<number> {
    const ownPidNs = statSync('/proc/self/ns/pid').ino;
    return waitFor('the container init', () => {
      if (!this.running) throw new Error(`systemd-nspawn exited (${this.exitCode}):\n${this.console().slice(-3000)}`);
      for (const c of childrenOfSync(this.pid)) {
        try {
          if (statSync(`/proc/${c}/ns/pid`).ino !== ownPidNs && readlinkSync(`/proc/${c}/exe`).length > 0 && this.bed.inInstanceNamespace(c)) return c;
        } catch { /* gone */ }
      }
      return null;
    }, deadlineMs, 20);
  }

  /** ms from container start to a monotonic timestamp of the container (µs, as systemd shows them). */
  sinceStart(monoUs: number): number {
    return (monoUs - this.startedMonoUs) / 1000;
  }

  /** Runs a command inside the container (its namespaces) from outside: for state that no login shows. */
  async exec(args: readonly string[], timeoutMs = 30_000): Promise<RunResult> {
    const leader = await this.leader();
    return run('nsenter', ['--target', String(leader), '--mount', '--uts', '--ipc', '--net', '--pid', '--', ...args], { timeoutMs });
  }

  /**
   * Polls a key login (every intervalMs, each attempt bounded) until it succeeds or the deadline
   * passes. Returns the time from container start to the first success.
   */
  async waitForLogin(key: string, user: string, deadlineMs = 60_000, intervalMs = 50, since = this.startedAt): Promise<{ ms: number; attempts: number; lastError: string }> {
    const end = since + deadlineMs;
    let attempts = 0;
    let lastError = '';
    for (;;) {
      if (!this.running) throw new Error(`the container stopped (${this.exitCode}) before a key login worked:\n${this.console().slice(-4000)}${inotifyHint(this.console())}`);
      const attemptAt = performance.now();
      attempts++;
      const r = await this.bed.ssh(key, user, 'true', 10_000);
      if (r.code === 0) return { ms: performance.now() - since, attempts, lastError };
      lastError = r.stderr.trim();
      if (performance.now() >= end) throw new Error(`no key login as ${user} within ${deadlineMs} ms (${attempts} attempts; last: ${lastError})\n--- console (tail) ---\n${this.console().slice(-4000)}`);
      const wait = intervalMs - (performance.now() - attemptAt);
      if (wait > 0) await sleep(wait);
    }
  }

  /**
   * Stops the container: SIGTERM to nspawn (it asks the container's systemd to halt), then a
   * second SIGTERM (immediate termination), then SIGKILL to the container's init and to nspawn:
   * each step with a bounded wait.
   */
  async stop(graceMs = 20_000): Promise<void> {
    if (this.running) {
      killPid(this.pid, 'SIGTERM');
      if (!(await this.waitExit(graceMs))) {
        killPid(this.pid, 'SIGTERM');
        if (!(await this.waitExit(5_000))) {
          for (const c of childrenOfSync(this.pid)) killPid(c, 'SIGKILL');
          killPid(this.pid, 'SIGKILL');
          await this.waitExit(10_000);
        }
      }
    }
    await new Promise<void>((resolve) => this.out.end(resolve));
  }

  /** Waits for nspawn to exit on its own (after a poweroff or halt inside). */
  async waitExit(ms: number): Promise<boolean> {
    return Promise.race([this.exited.then(() => true), sleep(ms).then(() => false)]);
  }

  get alive(): boolean {
    return alive(this.pid) && this.running;
  }
}

/**
 * The host key fingerprint blocks printed on the console, last one first. Lines may carry a
 * prefix (journald's "[  12.3] imprint[28]: " when the unit's output reaches the console through
 * the journal; cloud-init's "ec2: "): each line is read from its marker or key length on.
 */
export function consoleFingerprintBlocks(consoleText: string): Map<string, string>[] {
  const blocks: Map<string, string>[] = [];
  let current: string[] | null = null;
  for (const line of consoleText.split('\n')) {
    if (line.includes('-----BEGIN SSH HOST KEY FINGERPRINTS-----')) current = [];
    else if (line.includes('-----END SSH HOST KEY FINGERPRINTS-----')) {
      if (current) blocks.push(parseFingerprintLines(current));
      current = null;
    } else if (current) {
      const m = /(\d+ SHA256:\S+ .*\(\w+\))\s*$/.exec(line);
      if (m) current.push(m[1] as string);
    }
  }
  return blocks.reverse();
}

/**
 * systemd in a container needs inotify instances, counted against root's
 * fs.inotify.max_user_instances on this machine (default 128): containers leaked by anything
 * else running here exhaust it, and systemd then dies at start with "Too many open files".
 */
export function inotifyHint(consoleText: string): string {
  if (!/Too many open files/.test(consoleText)) return '';
  let used = 0;
  const holders = new Map<string, number>();
  for (const pid of readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
    let fds: string[] = [];
    try { fds = readdirSync(`/proc/${pid}/fd`); } catch { continue; }
    for (const fd of fds) {
      try {
        if (readlinkSync(`/proc/${pid}/fd/${fd}`) === 'anon_inode:inotify') {
          used++;
          const comm = readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
          holders.set(comm, (holders.get(comm) ?? 0) + 1);
        }
      } catch { /* gone */ }
    }
  }
  const max = readFileSync('/proc/sys/fs/inotify/max_user_instances', 'utf8').trim();
  const top = [...holders.entries()].sort((a, b) => b[1] - a[1]).slice(0, 5).map(([c, n]) => `${c} ${n}`).join(', ');
  return `\n--- hint: this machine's inotify instances are exhausted: ${used} in use, fs.inotify.max_user_instances=${max} (holders: ${top}). Containers left running by something else? Not changed by the harness. ---`;
}
