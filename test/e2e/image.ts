// The images the e2e tests boot, all from the cached Debian 12 rootfs tarball
// (test/support/debian-rootfs.sh), unpacked into one tmpfs workspace (unpacking to disk costs
// ~8 s a tree here; to tmpfs 0.7 s, a copy 0.4 s):
//   imprint  the agent installed: the .deb when dist/ has one (the real path), else the single
//            binary + units/imprint.service, else (until the binary exists) node + the bundle
//   floor    no provisioning at all; the launch key pre-baked into ~debian/.ssh/authorized_keys
//   guides   the public guides' rc.local recipe as a oneshot unit before ssh: ssh-keygen -A,
//            curl of the key with an IMDSv2 token, passwd -l, sed on sshd_config

import { existsSync, readdirSync, statSync } from 'node:fs';
import { chmod, copyFile, lstat, mkdir, mkdtemp, readFile, readdir, readlink, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join, resolve, sep } from 'node:path';
import { REPO, fingerprintsOf } from './harness.js';
import { mustRun, run, trackedMounts } from './proc.js';

export type AgentMode = 'deb' | 'binary' | 'bundle';

export interface AgentBuild {
  mode: AgentMode;
  /** The .deb, the binary, or the bundle. */
  file: string;
  /** The unit file copied in (binary, bundle); null with the .deb (the package brings its own). */
  unit: string | null;
  describe: string;
}

const FIXTURES = join(REPO, 'test/e2e/fixtures');

/**
 * The agent build to test. IMPRINT_E2E_DEB=FILE names a .deb, IMPRINT_E2E_BINARY=FILE a single
 * binary (installed with this checkout's units); IMPRINT_E2E_AGENT=deb|binary|bundle
 * forces a kind; by default the newest dist/imprint_*_amd64.deb, else dist/imprint-linux-x64,
 * else node + the bundle (dev only, until the binary exists).
 */
export function findAgent(): AgentBuild | null {
  const dist = join(REPO, 'dist');
  const wanted = process.env.IMPRINT_E2E_AGENT ?? 'auto';
  const unitFile = join(REPO, 'units/imprint.service');
  const unitNote = 'units/imprint.service';
  const debs = existsSync(dist)
    ? readdirSync(dist).filter((f) => /^imprint_.+_amd64\.deb$/.test(f)).map((f) => join(dist, f)).sort((a, b) => statSync(b).mtimeMs - statSync(a).mtimeMs)
    : [];
  const binary = join(dist, 'imprint-linux-x64');
  const bundle = join(dist, 'imprint.cjs');
  const given = process.env.IMPRINT_E2E_DEB;
  if (given) return existsSync(given) ? { mode: 'deb', file: resolve(given), unit: null, describe: `${basename(given)} (IMPRINT_E2E_DEB)` } : null;
  const givenBinary = process.env.IMPRINT_E2E_BINARY;
  if (givenBinary) return existsSync(givenBinary) && existsSync(unitFile) ? { mode: 'binary', file: resolve(givenBinary), unit: unitFile, describe: `${givenBinary} (IMPRINT_E2E_BINARY) + ${unitNote}` } : null;
  if ((wanted === 'auto' || wanted === 'deb') && debs[0]) return { mode: 'deb', file: debs[0], unit: null, describe: `dist/${basename(debs[0])}` };
  if (wanted === 'deb') return null;
  if (!existsSync(unitFile)) return null;
  if ((wanted === 'auto' || wanted === 'binary') && existsSync(binary)) return { mode: 'binary', file: binary, unit: unitFile, describe: `dist/imprint-linux-x64 + ${unitNote}` };
  if (wanted === 'binary') return null;
  if (existsSync(bundle) && existsSync(join(dist, 'imprint-vendor.cjs'))) {
    return { mode: 'bundle', file: bundle, unit: unitFile, describe: `node ${process.version} + dist/imprint.cjs (no binary yet) + ${unitNote}` };
  }
  return null;
}

// ---- the workspace -------------------------------------------------------------------------------

/** One tmpfs under os.tmpdir() for every tree of a run; unmounted (and so emptied) at the end. */
export class Workspace {
  private constructor(readonly dir: string) {}

  static async create(sizeGiB = 8): Promise<Workspace> {
    const dir = await mkdtemp(join(tmpdir(), `imprint-e2e-${process.pid}-`));
    try {
      await mustRun('mount', ['-t', 'tmpfs', '-o', `size=${sizeGiB}g,mode=0755`, `imprint-e2e-${process.pid}`, dir]);
      trackedMounts.add(dir);
    } catch (err) {
      await rm(dir, { recursive: true, force: true });
      throw err;
    }
    return new Workspace(dir);
  }

  path(...parts: string[]): string {
    const p = resolve(this.dir, ...parts);
    if (!p.startsWith(this.dir + sep)) throw new Error(`${p} is outside the workspace`);
    return p;
  }

  /** Removes a tree inside the workspace (refused if anything is mounted under it). */
  async remove(dir: string): Promise<void> {
    const p = this.path(dir.startsWith(this.dir) ? dir.slice(this.dir.length + 1) : dir);
    const mounted = (await readFile('/proc/self/mountinfo', 'utf8')).split('\n').map((l) => l.split(' ')[4]).filter((m) => m && (m === p || m.startsWith(p + sep)));
    if (mounted.length > 0) throw new Error(`refusing to remove ${p}: mounted inside: ${mounted.join(', ')}`);
    await rm(p, { recursive: true, force: true });
  }

  async destroy(): Promise<void> {
    if (!trackedMounts.has(this.dir)) return;
    const inner = (await readFile('/proc/self/mountinfo', 'utf8')).split('\n').map((l) => l.split(' ')[4] ?? '').filter((m) => m.startsWith(this.dir + sep));
    for (const m of inner.sort((a, b) => b.length - a.length)) await mustRun('umount', [m]);
    const r = await run('umount', [this.dir]);
    if (r.code !== 0) await mustRun('umount', ['-l', this.dir]);
    trackedMounts.delete(this.dir);
    await rm(this.dir, { recursive: true, force: true });
  }
}

// ---- building trees ------------------------------------------------------------------------------

export async function unpack(ws: Workspace, tarball: string, name: string): Promise<string> {
  const dir = ws.path(name);
  await mkdir(dir);
  await mustRun('tar', ['--numeric-owner', '-xpf', tarball, '-C', dir], { timeoutMs: 120_000 });
  return dir;
}

/** A copy of a tree (a fresh instance of that image, or a clone of an instance). */
export async function copyTree(ws: Workspace, from: string, name: string): Promise<string> {
  const dir = ws.path(name);
  await mustRun('cp', ['-a', '--', from, dir], { timeoutMs: 120_000 });
  return dir;
}

/** type → SHA256 fingerprint of the tree's /etc/ssh/ssh_host_*_key.pub. */
export async function hostKeyFingerprints(dir: string): Promise<Map<string, string>> {
  const ssh = join(dir, 'etc/ssh');
  const pubs = (await readdir(ssh)).filter((f) => /^ssh_host_\w+_key\.pub$/.test(f));
  const text = (await Promise.all(pubs.map((f) => readFile(join(ssh, f), 'utf8')))).join('');
  return fingerprintsOf(text);
}

function wantedBy(unitText: string): string[] {
  const install = /^\[Install\]\s*$([\s\S]*?)(?=^\[|$(?![\s\S]))/m.exec(unitText)?.[1] ?? '';
  const targets = [...install.matchAll(/^WantedBy=(.*)$/gm)].flatMap((m) => (m[1] ?? '').trim().split(/\s+/)).filter(Boolean);
  return targets.length > 0 ? targets : ['multi-user.target'];
}

/** Unit files named imprint.service enabled in the tree (symlinks in *.wants/ under /etc). */
export async function enabledLinks(dir: string): Promise<string[]> {
  const base = join(dir, 'etc/systemd/system');
  const found: string[] = [];
  for (const d of await readdir(base).catch(() => [] as string[])) {
    if (!/\.(wants|requires)$/.test(d)) continue;
    // lstat: the link is absolute (/lib/systemd/system/...), meaningful only inside the tree.
    const link = await lstat(join(base, d, 'imprint.service')).catch(() => null);
    if (link) found.push(`/etc/systemd/system/${d}/imprint.service -> ${link.isSymbolicLink() ? await readlink(join(base, d, 'imprint.service')) : '(file)'}`);
  }
  return found;
}

/**
 * Installs the agent into the tree. Returns notes for the report. With the .deb: dpkg -i in a
 * chroot of the tree (maintainer scripts run there, with no systemd running), and the package
 * must have enabled its unit itself.
 */
export async function installAgent(dir: string, agent: AgentBuild): Promise<string[]> {
  const notes: string[] = [];
  if (agent.mode === 'deb') {
    const inTree = '/tmp/imprint-e2e.deb';
    await copyFile(agent.file, join(dir, inTree));
    const r = await run('chroot', [dir, 'dpkg', '-i', inTree], { timeoutMs: 120_000, env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin', DEBIAN_FRONTEND: 'noninteractive', LANG: 'C.UTF-8' } });
    await rm(join(dir, inTree), { force: true });
    if (r.code !== 0) throw new Error(`chroot dpkg -i ${basename(agent.file)} failed (${r.code}):\n${r.stdout}${r.stderr}`);
    notes.push(`dpkg -i: ${r.stdout.trim().split('\n').slice(-3).join(' | ')}`);
    if (r.stderr.trim()) notes.push(`dpkg -i stderr: ${r.stderr.trim()}`);
    if (!existsSync(join(dir, 'usr/bin/imprint'))) throw new Error('the .deb did not install /usr/bin/imprint');
    const links = await enabledLinks(dir);
    if (links.length === 0) throw new Error('the .deb did not enable imprint.service (no *.wants/imprint.service under /etc/systemd/system)');
    notes.push(`enabled by the package: ${links.join(', ')}`);
    return notes;
  }
  const bin = join(dir, 'usr/bin/imprint');
  if (agent.mode === 'binary') {
    await copyFile(agent.file, bin);
    await chmod(bin, 0o755);
  } else {
    // Dev only, until the single binary exists: this machine's node and the bundle.
    const lib = join(dir, 'usr/lib/imprint-e2e');
    await mkdir(lib, { recursive: true });
    await copyFile(process.execPath, join(lib, 'node'));
    await chmod(join(lib, 'node'), 0o755);
    await copyFile(agent.file, join(lib, 'imprint.cjs'));
    await copyFile(join(REPO, 'dist/imprint-vendor.cjs'), join(lib, 'imprint-vendor.cjs'));
    await writeFile(bin, '#!/bin/sh\nexec /usr/lib/imprint-e2e/node /usr/lib/imprint-e2e/imprint.cjs "$@"\n', { mode: 0o755 });
    const ldd = await run('chroot', [dir, '/usr/lib/imprint-e2e/node', '--version']);
    if (ldd.code !== 0) throw new Error(`node does not run inside the image: ${ldd.stderr}`);
  }
  const unitText = await readFile(agent.unit as string, 'utf8');
  await writeFile(join(dir, 'etc/systemd/system/imprint.service'), unitText, { mode: 0o644 });
  notes.push(...(await installUnitExtras(dir)));
  for (const target of wantedBy(unitText)) {
    const wants = join(dir, 'etc/systemd/system', `${target}.wants`);
    await mkdir(wants, { recursive: true });
    await symlink('/etc/systemd/system/imprint.service', join(wants, 'imprint.service'));
    notes.push(`enabled: /etc/systemd/system/${target}.wants/imprint.service`);
  }
  return notes;
}

/**
 * What the packages ship beside the unit, for the builds without a package: the drop-ins that
 * order sshd's per-connection and key-generating units after imprint (the template list is
 * build-packages.sh's) and the generator of the newer hardening keys.
 */
async function installUnitExtras(dir: string): Promise<string[]> {
  const units = join(REPO, 'units');
  const templates = /^readonly SSHD_TEMPLATES="([^"]+)"/m.exec(await readFile(join(REPO, 'packaging/build-packages.sh'), 'utf8'))?.[1]?.split(' ') ?? [];
  if (templates.length === 0) throw new Error('no SSHD_TEMPLATES in packaging/build-packages.sh');
  const dropIns: [string, string][] = [
    ...templates.map((t): [string, string] => [`${t}.service.d`, 'sshd@.service.d/imprint.conf']),
    ['sshd-keygen.service.d', 'sshd-keygen.service.d/imprint.conf'],
    ['sshd-keygen@.service.d', 'sshd-keygen@.service.d/imprint.conf'],
  ];
  for (const [to, from] of dropIns) {
    await mkdir(join(dir, 'etc/systemd/system', to), { recursive: true });
    await copyFile(join(units, from), join(dir, 'etc/systemd/system', to, 'imprint.conf'));
  }
  await mkdir(join(dir, 'etc/systemd/system-generators'), { recursive: true });
  await copyFile(join(units, 'imprint-generator'), join(dir, 'etc/systemd/system-generators/imprint-generator'));
  await chmod(join(dir, 'etc/systemd/system-generators/imprint-generator'), 0o755);
  return [`drop-ins for ${dropIns.map(([d]) => d).join(' ')} and imprint-generator in /etc/systemd`];
}

export async function writeImprintConfig(dir: string, yaml: string): Promise<void> {
  await mkdir(join(dir, 'etc/imprint'), { recursive: true });
  await writeFile(join(dir, 'etc/imprint/imprint.yaml'), yaml, { mode: 0o644 });
}

/** The floor: the launch key already in ~debian/.ssh/authorized_keys (uid/gid 1000). */
export async function bakeAuthorizedKey(dir: string, pubkey: string): Promise<void> {
  const ssh = join(dir, 'home/debian/.ssh');
  await mkdir(ssh, { mode: 0o700, recursive: true });
  await writeFile(join(ssh, 'authorized_keys'), `${pubkey.trim()}\n`, { mode: 0o600 });
  await mustRun('chown', ['-R', '1000:1000', ssh]);
  await chmod(ssh, 0o700);
}

/**
 * The guides' recipe: curl is not in the minimal image, so its .debs are fetched once with apt
 * inside a scratch copy of the tree (Debian's mirror, as the image's own sources say) and cached
 * next to the rootfs tarball; later runs dpkg -i them from the cache.
 */
export async function installGuides(ws: Workspace, dir: string, tarball: string): Promise<void> {
  const cache = join(process.env.IMPRINT_ROOTFS_CACHE ?? '/var/cache/imprint-test', `e2e-curl-debs-${basename(tarball, '.tar')}`);
  const env = { PATH: '/usr/sbin:/usr/bin:/sbin:/bin', DEBIAN_FRONTEND: 'noninteractive', LANG: 'C.UTF-8' };
  const cached = existsSync(cache) ? (await readdir(cache)).filter((f) => f.endsWith('.deb')) : [];
  if (cached.length === 0 || !cached.some((f) => f.startsWith('curl_'))) {
    const scratch = await copyTree(ws, dir, `apt-scratch-${Date.now()}`);
    try {
      await copyFile('/etc/resolv.conf', join(scratch, 'etc/resolv.conf'));
      await mustRun('chroot', [scratch, 'apt-get', '-qq', '-o', 'Acquire::Check-Valid-Until=false', 'update'], { timeoutMs: 300_000, env });
      await mustRun('chroot', [scratch, 'apt-get', '-qq', '-y', '--no-install-recommends', '--download-only', 'install', 'curl'], { timeoutMs: 300_000, env });
      const tmp = await mkdtemp(`${cache}.tmp-`);
      const archives = join(scratch, 'var/cache/apt/archives');
      for (const f of (await readdir(archives)).filter((x) => x.endsWith('.deb'))) await copyFile(join(archives, f), join(tmp, f));
      await rm(cache, { recursive: true, force: true });
      await mustRun('mv', ['-T', tmp, cache]);
    } finally {
      await ws.remove(scratch);
    }
  }
  const debs = (await readdir(cache)).filter((f) => f.endsWith('.deb'));
  await mkdir(join(dir, 'tmp/e2e-debs'), { recursive: true });
  for (const f of debs) await copyFile(join(cache, f), join(dir, 'tmp/e2e-debs', f));
  await mustRun('chroot', [dir, 'sh', '-c', 'dpkg -i /tmp/e2e-debs/*.deb >/dev/null'], { timeoutMs: 120_000, env });
  await rm(join(dir, 'tmp/e2e-debs'), { recursive: true, force: true });
  await copyFile(join(FIXTURES, 'guides-firstboot.sh'), join(dir, 'usr/local/sbin/guides-firstboot'));
  await chmod(join(dir, 'usr/local/sbin/guides-firstboot'), 0o755);
  await copyFile(join(FIXTURES, 'guides-firstboot.service'), join(dir, 'etc/systemd/system/guides-firstboot.service'));
  const wants = join(dir, 'etc/systemd/system/multi-user.target.wants');
  await mkdir(wants, { recursive: true });
  await symlink('/etc/systemd/system/guides-firstboot.service', join(wants, 'guides-firstboot.service'));
}

/**
 * Lynis (arch all, Depends: e2fsprogs, already in the image) for the issue 5 comparison: the
 * .deb is fetched once on the host with `apt-get download lynis` into the cache dir, then
 * dpkg -i'd in a chroot of the tree (the containers have no internet).
 */
export async function installLynis(dir: string): Promise<string> {
  const cache = join(process.env.IMPRINT_ROOTFS_CACHE ?? '/var/cache/imprint-test', 'e2e-lynis-debs');
  const env = { PATH: '/usr/sbin:/usr/bin:/sbin:/bin', DEBIAN_FRONTEND: 'noninteractive', LANG: 'C.UTF-8' };
  const find = async (): Promise<string | undefined> => (existsSync(cache) ? (await readdir(cache)).find((f) => /^lynis_.*_all\.deb$/.test(f)) : undefined);
  let deb = await find();
  if (!deb) {
    await mkdir(cache, { recursive: true });
    await mustRun('sh', ['-c', 'cd "$1" && apt-get -qq download lynis', 'sh', cache], { timeoutMs: 300_000 });
    deb = await find();
    if (!deb) throw new Error(`apt-get download lynis left no lynis_*_all.deb in ${cache}`);
  }
  await copyFile(join(cache, deb), join(dir, 'tmp', deb));
  await mustRun('chroot', [dir, 'dpkg', '-i', `/tmp/${deb}`], { timeoutMs: 120_000, env });
  await rm(join(dir, 'tmp', deb), { force: true });
  return `lynis: dpkg -i ${deb} (from ${cache})`;
}
