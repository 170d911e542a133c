// Shared set-up of the e2e test files: the rootfs tarball, one tmpfs workspace, the launch keys,
// the three images (built once per run), and Lab: one testbed with its emulator and containers,
// torn down in after hooks whatever happened.

import { existsSync } from 'node:fs';
import { appendFile, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { debianRootfsTarball, type DebianSuite } from '../support/debian-rootfs.js';
import { Container, Emulator, Testbed, type EmulatorOptions, type TestbedOptions } from './harness.js';
import {
  Workspace, bakeAuthorizedKey, copyTree, findAgent, hostKeyFingerprints, installAgent, installGuides, installLynis, unpack, writeImprintConfig,
  type AgentBuild,
} from './image.js';
import { alive, installEmergencyCleanup, mustRun, run } from './proc.js';

export type Variant = 'imprint' | 'floor' | 'guides';

export const IMPRINT_CONFIG = 'default_user: {name: debian}\n';
export const USER = 'debian';
export const IMAGE_PASSWORD = 'imagepass';

export interface Key {
  private: string;
  public: string;
}

export interface Golden {
  dir: string;
  /** type → fingerprint of the image's baked host keys. */
  baked: Map<string, string>;
  notes: string[];
}

const TOOLS = ['systemd-nspawn', 'ip', 'nsenter', 'ssh', 'ssh-keyscan', 'ssh-keygen', 'sshpass', 'chroot', 'tar', 'mount'];

export class Suite {
  private readonly goldens = new Map<string, Promise<Golden>>();
  private keyCount = 0;
  private treeCount = 0;

  private constructor(readonly tarball: string, readonly ws: Workspace, readonly agent: AgentBuild, readonly debian: DebianSuite) {}

  /** Debian 13's systemd 257 needs the unified cgroup hierarchy in nspawn on this host. */
  get unifiedCgroups(): boolean {
    return this.debian === 'trixie';
  }

  /** Throws (with the reason) when this machine cannot run the e2e tests at all. */
  static async create(debian: DebianSuite = 'bookworm'): Promise<Suite> {
    installEmergencyCleanup();
    if (process.getuid?.() !== 0) throw new Error('the e2e tests need root (network namespaces, systemd-nspawn)');
    const missing: string[] = [];
    for (const tool of TOOLS) if ((await run('sh', ['-c', 'command -v "$1"', 'sh', tool])).code !== 0) missing.push(tool);
    if (missing.length > 0) throw new Error(`e2e: missing tools: ${missing.join(', ')} (apt-get install systemd-container iproute2 util-linux openssh-client sshpass)`);
    const agent = findAgent();
    if (!agent) throw new Error(`e2e: no agent build in dist/ (IMPRINT_E2E_AGENT=${process.env.IMPRINT_E2E_AGENT ?? 'auto'}), or units/imprint.service missing: run npm run build, build:binary or packaging/build-packages.sh`);
    const tarball = await debianRootfsTarball(debian);
    if (!tarball) throw new Error(`e2e: no Debian ${debian} rootfs (test/support/debian-rootfs.sh needs root and mmdebstrap)`);
    await reportLeftovers();
    const ws = await Workspace.create();
    process.stderr.write(`e2e: agent under test: ${agent.describe}\ne2e: rootfs ${tarball}, workspace ${ws.dir} (tmpfs)\n`);
    return new Suite(tarball, ws, agent, debian);
  }

  async newKey(label: string): Promise<Key> {
    const file = this.ws.path(`key-${this.keyCount++}-${label}`);
    await mustRun('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', `e2e-${label}`, '-f', file]);
    return { private: file, public: (await readFile(`${file}.pub`, 'utf8')).trim() };
  }

  /** The image of a variant, built once; `key` is the pre-baked key of the floor image. */
  golden(variant: Variant, floorKey?: Key): Promise<Golden> {
    // The floor image bakes one key: one floor image per key.
    const id = variant === 'floor' ? `floor ${floorKey?.public ?? ''}` : variant;
    let g = this.goldens.get(id);
    if (!g) {
      g = this.build(variant, floorKey, this.goldens.size);
      this.goldens.set(id, g);
    }
    return g;
  }

  private async build(variant: Variant, floorKey: Key | undefined, n: number): Promise<Golden> {
    const dir = await unpack(this.ws, this.tarball, `golden-${n}-${variant}`);
    const baked = await hostKeyFingerprints(dir);
    const notes: string[] = [];
    if (variant === 'imprint') {
      notes.push(...(await installAgent(dir, this.agent)));
      await writeImprintConfig(dir, IMPRINT_CONFIG);
      // issue 5: lynis.test.ts compares its findings with imprint audit (on Debian 12 only)
      if (this.debian === 'bookworm') notes.push(await installLynis(dir));
    } else if (variant === 'floor') {
      if (!floorKey) throw new Error('the floor image needs its pre-baked key');
      await bakeAuthorizedKey(dir, floorKey.public);
    } else {
      await installGuides(this.ws, dir, this.tarball);
    }
    return { dir, baked, notes };
  }

  /** A fresh copy of an image or of an instance's tree. */
  async copy(from: string, label: string): Promise<string> {
    return copyTree(this.ws, from, `tree-${this.treeCount++}-${label}`);
  }

  async destroy(): Promise<void> {
    await this.ws.destroy();
  }
}

/**
 * Namespaces and workspaces of an earlier run of this harness whose process is gone (killed
 * before its hooks could run): the namespace names are deleted and idle workspaces unmounted;
 * anything still in use is only reported, and no process is touched.
 */
async function reportLeftovers(): Promise<void> {
  const notes: string[] = [];
  for (const line of (await run('ip', ['netns', 'list'])).stdout.split('\n')) {
    const m = /^(imprint-e2e-(\d+)-\d+-(?:meta|inst))\b/.exec(line);
    if (!m || alive(Number(m[2]))) continue;
    const r = await run('ip', ['netns', 'delete', m[1] as string]);
    notes.push(`network namespace ${m[1]} of a dead run: ${r.code === 0 ? 'deleted' : `not deleted: ${r.stderr.trim()}`}`);
  }
  const mounts = (await readFile('/proc/self/mountinfo', 'utf8')).split('\n').map((l) => l.split(' ')[4] ?? '');
  for (const mp of mounts) {
    const m = /^\/tmp\/imprint-e2e-(\d+)-[A-Za-z0-9]+$/.exec(mp);
    if (!m || alive(Number(m[1]))) continue;
    const r = await run('umount', [mp]);
    if (r.code === 0) await run('rmdir', [mp]);
    notes.push(`workspace ${mp} of a dead run: ${r.code === 0 ? 'unmounted' : `still in use, left alone: ${r.stderr.trim()}`}`);
  }
  for (const n of notes) process.stderr.write(`e2e: leftover: ${n}\n`);
}

const shared = new Map<DebianSuite, Promise<Suite>>();

/** One Suite per Debian release per mocha run, shared by the e2e test files (the images are built once). */
export function acquireSuite(debian: DebianSuite = 'bookworm'): Promise<Suite> {
  let s = shared.get(debian);
  if (!s) {
    s = Suite.create(debian);
    shared.set(debian, s);
  }
  return s;
}

/** Nothing to do per file: the root hook below removes the workspace after the last file. */
export async function releaseSuite(): Promise<void> {}

async function destroyShared(): Promise<void> {
  const all = [...shared.values()];
  shared.clear();
  for (const s of all) await (await s.catch(() => null))?.destroy();
}

// A root-level hook (registered when the first e2e file imports this module): runs once, after
// every test file, whatever failed.
if (typeof after === "function") after(destroyShared);

/** One testbed, its emulator and the containers booted in it; teardown() ends them all. */
export class Lab {
  bed: Testbed | undefined;
  emulator: Emulator | undefined;
  /** A second service beside the emulator (Azure's wireserver), stopped with it. */
  companion: Emulator | undefined;
  readonly containers: Container[] = [];
  private readonly trees: string[] = [];
  private bootCount = 0;

  constructor(private readonly suite: () => Suite, readonly name: string, private readonly bedOptions: TestbedOptions = {}) {}

  async testbed(): Promise<Testbed> {
    this.bed ??= await Testbed.create(this.bedOptions);
    return this.bed;
  }

  async startEmulator(opts: EmulatorOptions, companion?: EmulatorOptions): Promise<Emulator> {
    await this.stopEmulator();
    this.emulator = await Emulator.start(await this.testbed(), opts);
    if (companion) this.companion = await Emulator.start(await this.testbed(), companion);
    return this.emulator;
  }

  async stopEmulator(): Promise<void> {
    await this.emulator?.stop();
    this.emulator = undefined;
    await this.companion?.stop();
    this.companion = undefined;
  }

  async tree(from: string, label: string): Promise<string> {
    const dir = await this.suite().copy(from, `${this.name}-${label}`);
    this.trees.push(dir);
    return dir;
  }

  async boot(tree: string, label: string, extraArgs: readonly string[] = []): Promise<Container> {
    const bed = await this.testbed();
    const n = this.bootCount++;
    const c = await Container.boot(bed, tree, {
      machine: `e2e${process.pid}-${this.name}-${n}`.replace(/[^A-Za-z0-9-]/g, '-').slice(0, 60),
      consoleFile: this.suite().ws.path(`console-${this.name}-${n}-${label}.log`),
      unifiedCgroups: this.suite().unifiedCgroups,
      extraArgs,
    });
    this.containers.push(c);
    return c;
  }

  /** Console tails and the journal of running containers, for a failed test. */
  async diagnostics(): Promise<string> {
    const parts: string[] = [];
    for (const c of this.containers) {
      parts.push(`--- console of ${c.opts.machine} (tail) ---\n${c.console().slice(-6000)}`);
      if (c.running) {
        const j = await c.exec(['journalctl', '-b', '--no-pager', '-o', 'short-monotonic', '-u', 'imprint.service'], 15_000).catch((e: Error) => ({ stdout: '', stderr: e.message }));
        parts.push(`--- journal of imprint.service in ${c.opts.machine} ---\n${(j.stdout + j.stderr).slice(-8000)}`);
        const s = await c.exec(['journalctl', '-b', '--no-pager', '-o', 'short-monotonic', '-u', 'ssh.service', '-n', '15'], 15_000).catch((e: Error) => ({ stdout: '', stderr: e.message }));
        parts.push(`--- journal of ssh.service in ${c.opts.machine} (last 15) ---\n${(s.stdout + s.stderr).trim()}`);
      }
    }
    if (this.emulator) parts.push(`--- emulator log (first 10, last 30) ---\n${[...this.emulator.lines.slice(0, 10), '...', ...this.emulator.lines.slice(10).slice(-30)].join('\n')}`);
    if (this.companion) parts.push(`--- second service's log (last 20) ---\n${this.companion.lines.slice(-20).join('\n')}`);
    return parts.join('\n');
  }

  /** Saves the consoles to IMPRINT_E2E_ARTIFACTS (when set) before the workspace goes. */
  private async keepArtifacts(): Promise<void> {
    const dest = process.env.IMPRINT_E2E_ARTIFACTS;
    if (!dest || !existsSync(dest)) return;
    for (const c of this.containers) await appendFile(join(dest, `${c.opts.machine}.console.log`), c.console());
    if (this.emulator) await appendFile(join(dest, `${this.name}.emulator.log`), `${this.emulator.lines.join('\n')}\n`);
  }

  async teardown(): Promise<void> {
    const errors: unknown[] = [];
    const attempt = async (f: () => Promise<unknown>): Promise<void> => { try { await f(); } catch (e) { errors.push(e); } };
    for (const c of this.containers) await attempt(() => c.stop());
    await attempt(() => this.keepArtifacts());
    await attempt(() => this.stopEmulator());
    await attempt(async () => this.bed?.destroy());
    this.bed = undefined;
    for (const t of this.trees.splice(0)) await attempt(() => this.suite().ws.remove(t));
    this.containers.splice(0);
    if (errors.length > 0) throw new Error(`teardown of ${this.name}: ${errors.map((e) => (e as Error).message).join('; ')}`);
  }
}

/**
 * Milestones of one boot, in ms after the container started (read from inside, before it stops):
 * `unit` (imprint.service, the guides' unit, or null for the floor) started and ready, sshd
 * active, and for imprint.service its journal line for the launch key in authorized_keys.
 */
export async function bootMilestones(c: Container, unit: string | null): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  const show = async (u: string): Promise<Record<string, string>> =>
    parseShow((await c.exec(['systemctl', 'show', '-p', 'ExecMainStartTimestampMonotonic,ActiveEnterTimestampMonotonic', u])).stdout);
  if (unit) {
    const s = await show(unit);
    if (Number(s.ExecMainStartTimestampMonotonic) > 0) out['unit started'] = c.sinceStart(Number(s.ExecMainStartTimestampMonotonic));
    if (Number(s.ActiveEnterTimestampMonotonic) > 0) out['unit ready'] = c.sinceStart(Number(s.ActiveEnterTimestampMonotonic));
  }
  const ssh = await show('ssh.service');
  if (Number(ssh.ActiveEnterTimestampMonotonic) > 0) out['sshd active'] = c.sinceStart(Number(ssh.ActiveEnterTimestampMonotonic));
  if (unit === 'imprint.service') {
    const j = await c.exec(['journalctl', '-b', '--no-pager', '-o', 'short-monotonic', '-u', 'imprint.service']);
    const line = j.stdout.split('\n').find((l) => /authorized-keys: .*launch key/.test(l));
    const m = line ? /^\[\s*(\d+\.\d+)\]/.exec(line) : null;
    if (m) out['launch key written'] = c.sinceStart(Number(m[1]) * 1e6);
  }
  return out;
}

/** Extracts `systemctl show` properties into a record. */
export function parseShow(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of text.split('\n')) {
    const i = line.indexOf('=');
    if (i > 0) out[line.slice(0, i)] = line.slice(i + 1);
  }
  return out;
}
