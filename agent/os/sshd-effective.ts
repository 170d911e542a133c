import { access, constants, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { errorMessage, ImprintError } from './errors.js';
import { run } from './exec.js';
import { statTree } from './files.js';
import type { RootTree } from './root.js';
import { sshdRunner, type SshdMode } from './sshd.js';

// `sshd -T` for `imprint audit`, which only reads and must also work on a sealed image.
//  - An offline image with its own sshd: that sshd (its version's rules apply) in a bubblewrap
//    sandbox that shows it the tree read-only at /, with a private /run. boot's chroot mode would
//    make /run/sshd inside the image for the check; an audit writes nothing, and works on an
//    image mounted read-only.
//  - Live, or a tree without sshd: sshdRunner, exactly as boot runs it (the instance's own sshd;
//    this machine's sshd in a sandbox over the tree's /etc/ssh).
// sshd refuses to print its settings when no host key can be loaded ("no hostkeys available"),
// and a sealed image has none by design: then sshd runs once more with a throwaway key made for
// this call (`-h`), removed from the output. When it was the only HostKey sshd saw, the
// configuration names none and sshd's defaults apply (the caller reports them as such).

export const THROWAWAY_KEY = '/run/imprint-audit-hostkey';
const SSHD_PATHS = ['/usr/sbin/sshd', '/sbin/sshd'];
const BWRAP = '/usr/bin/bwrap';

export interface EffectiveSshd {
  text: string;
  mode: SshdMode;
  /** A throwaway host key had to be supplied (the tree has no usable host key). */
  throwawayKey: boolean;
}

async function executable(file: string): Promise<boolean> {
  return access(file, constants.X_OK).then(() => true, () => false);
}

async function firstExecutable(paths: string[]): Promise<string | undefined> {
  for (const p of paths) if (await executable(p)) return p;
  return undefined;
}

function withoutThrowaway(text: string, keyPath: string): string {
  return text.split('\n').filter((l) => l.trim() !== `hostkey ${keyPath}`).join('\n');
}

function noHostKeys(err: unknown): boolean {
  return /no hostkeys available/i.test(errorMessage(err));
}

/** The image's own sshd (an in-tree path), when it has one. */
async function imageSshd(root: RootTree): Promise<string | null> {
  for (const candidate of SSHD_PATHS) {
    const info = await statTree(root, candidate);
    if (info?.isFile() && (info.mode & 0o111) !== 0) return candidate;
  }
  return null;
}

/** Runs fn with a fresh ed25519 key pair in a private temp directory, removed afterwards. */
async function withThrowawayKey<T>(fn: (keyFile: string) => Promise<T>): Promise<T> {
  const scratch = await mkdtemp(path.join(tmpdir(), 'imprint-audit-'));
  try {
    const key = path.join(scratch, 'hostkey');
    await run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'imprint audit throwaway', '-f', key]);
    return await fn(key);
  } finally {
    await rm(scratch, { recursive: true, force: true });
  }
}

export async function effectiveSshdConfig(root: RootTree, config = '/etc/ssh/sshd_config'): Promise<EffectiveSshd> {
  const ownSshd = root.isLive ? null : await imageSshd(root);
  const bwrap = (await executable(BWRAP)) ? BWRAP : null;

  if (ownSshd !== null && bwrap !== null) {
    const sandbox = (extra: string[]): string[] => ['--ro-bind', root.dir, '/', '--dev', '/dev', '--proc', '/proc', '--tmpfs', '/run', '--dir', '/run/sshd', ...extra];
    try {
      return { text: (await run(bwrap, [...sandbox([]), '--', ownSshd, '-T', '-f', config])).stdout, mode: 'chroot', throwawayKey: false };
    } catch (err) {
      if (!noHostKeys(err)) throw err;
    }
    return withThrowawayKey(async (key) => {
      const args = [...sandbox(['--ro-bind', key, THROWAWAY_KEY]), '--', ownSshd, '-T', '-f', config, '-h', THROWAWAY_KEY];
      return { text: withoutThrowaway((await run(bwrap, args)).stdout, THROWAWAY_KEY), mode: 'chroot', throwawayKey: true };
    });
  }

  const runner = await sshdRunner(root);
  try {
    return { text: await runner.effective(config), mode: runner.mode, throwawayKey: false };
  } catch (err) {
    if (!noHostKeys(err)) throw err;
  }
  return withThrowawayKey(async (key) => {
    if (runner.mode === 'live') {
      const sshd = await firstExecutable(SSHD_PATHS);
      if (!sshd) throw new ImprintError('sshd is not installed');
      return { text: withoutThrowaway((await run(sshd, ['-T', '-f', config, '-h', key])).stdout, key), mode: 'live', throwawayKey: true };
    }
    if (runner.mode === 'chroot') {
      throw new ImprintError('the image has no host keys, and checking its sshd without them needs bubblewrap (apt-get install bubblewrap)');
    }
    const hostSshd = await firstExecutable(SSHD_PATHS);
    if (!hostSshd || !bwrap) throw new ImprintError('the tree has no host keys, and checking it needs this machine\'s sshd and bubblewrap');
    const args = ['--dev-bind', '/', '/', '--ro-bind', root.path('/etc/ssh'), '/etc/ssh', '--tmpfs', '/run', '--dir', '/run/sshd',
      '--ro-bind', key, THROWAWAY_KEY, '--', hostSshd, '-T', '-f', config, '-h', THROWAWAY_KEY];
    return { text: withoutThrowaway((await run(bwrap, args)).stdout, THROWAWAY_KEY), mode: 'host-sshd', throwawayKey: true };
  });
}
