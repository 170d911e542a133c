import { access, constants, mkdir, rmdir } from 'node:fs/promises';
import { run } from './exec.js';
import { ImprintError } from './errors.js';
import type { RootTree } from './root.js';
import { statTree } from './files.js';

/**
 * How `sshd -T` is run so that it reads the tree's configuration and the right sshd's rules:
 * - live: the instance's own sshd on its own files;
 * - chroot: an offline image with its own sshd (that version's rules apply), inside the image;
 * - host-sshd: a tree without sshd (a test fixture); the host's sshd in a bubblewrap sandbox
 *   that mounts the tree's /etc/ssh over /etc/ssh, so absolute Include and HostKey paths
 *   resolve into the tree and never to the host's own keys and drop-ins.
 */
export type SshdMode = 'live' | 'chroot' | 'host-sshd';

const SSHD_PATHS = ['/usr/sbin/sshd', '/sbin/sshd'];

async function executable(hostPath: string): Promise<boolean> {
  try {
    await access(hostPath, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

export interface SshdRunner {
  mode: SshdMode;
  /** The version of the sshd that will run (major, minor), from `sshd -V`. */
  version(): Promise<[number, number] | null>;
  /** `sshd -T -f <configInTree>`: validates the whole configuration and prints the effective settings. */
  effective(configInTree: string): Promise<string>;
}

export async function sshdRunner(root: RootTree): Promise<SshdRunner> {
  if (root.isLive) {
    const sshd = await firstExecutable(SSHD_PATHS);
    if (!sshd) throw new ImprintError('sshd is not installed: cannot validate sshd_config');
    return {
      mode: 'live',
      version: () => versionOf(sshd, []),
      effective: async (config) => {
        // sshd refuses to check a config without its privilege-separation directory; on a
        // booted system it belongs there anyway (ssh.service creates the same directory).
        await mkdir('/run/sshd', { recursive: true, mode: 0o755 });
        return (await run(sshd, ['-T', '-f', config])).stdout;
      },
    };
  }
  for (const candidate of SSHD_PATHS) {
    const info = await statTree(root, candidate);
    if (info?.isFile() && (info.mode & 0o111) !== 0) {
      return { mode: 'chroot', version: () => versionOf('/usr/sbin/chroot', [root.dir, candidate]), effective: (config) => inChroot(root, candidate, config) };
    }
  }
  const hostSshd = await firstExecutable(SSHD_PATHS);
  const bwrap = await firstExecutable(['/usr/bin/bwrap']);
  if (!hostSshd) throw new ImprintError('the tree has no sshd and neither does this machine: cannot validate sshd_config');
  if (!bwrap) throw new ImprintError('the tree has no sshd; checking it with this machine\'s sshd needs bubblewrap (apt-get install bubblewrap)');
  return {
    mode: 'host-sshd',
    version: () => versionOf(hostSshd, []),
    effective: async (config) => {
      const args = ['--dev-bind', '/', '/', '--bind', root.path('/etc/ssh'), '/etc/ssh', '--tmpfs', '/run', '--dir', '/run/sshd', '--', hostSshd, '-T', '-f', config];
      return (await run(bwrap, args)).stdout;
    },
  };
}

async function versionOf(program: string, prefix: string[]): Promise<[number, number] | null> {
  const sshd = prefix.length > 0 ? [...prefix, '-V'] : ['-V'];
  const out = await run(program, sshd, { okCodes: [1] }).catch(() => null);
  const m = /OpenSSH_(\d+)\.(\d+)/.exec(`${out?.stderr ?? ''}${out?.stdout ?? ''}`);
  return m ? [Number(m[1]), Number(m[2])] : null;
}

async function firstExecutable(paths: string[]): Promise<string | undefined> {
  for (const p of paths) if (await executable(p)) return p;
  return undefined;
}

async function inChroot(root: RootTree, sshd: string, config: string): Promise<string> {
  // An offline image's /run is an empty mount point; the directory sshd insists on is made
  // for the check and removed after it, so the image is left as it was.
  const privsep = root.path('/run/sshd');
  const made = (await statTree(root, '/run/sshd')) === null;
  if (made) {
    await root.assertNoSymlinks('/run/sshd');
    await mkdir(privsep, { recursive: true, mode: 0o755 });
  }
  try {
    return (await run('/usr/sbin/chroot', [root.dir, sshd, '-T', '-f', config])).stdout;
  } finally {
    if (made) await rmdir(privsep).catch(() => undefined);
  }
}
