import { execFile } from 'node:child_process';

// A command inside a scratch root tree, in a container (systemd-nspawn, not booted): for what
// must run the tree's own programs as root (dpkg and its maintainer scripts, the tree's sshd
// -T, systemd-analyze) without touching this machine. No network (--private-network), not
// registered with machined, in the caller's scope; nspawn removes the container at exit.

export interface NspawnRun { code: number; out: string }

export function inTree(tree: string, script: string, timeoutMs = 120_000): Promise<NspawnRun> {
  // --pipe: no pty (no \r in the output). /tmp inside is nspawn's own tmpfs.
  const args = ['--quiet', '--pipe', '--register=no', '--keep-unit', '--private-network', '--resolv-conf=off', '--timezone=off', '--link-journal=no',
    '-D', tree, '/bin/sh', '-c', script];
  return new Promise((resolve) => {
    execFile('systemd-nspawn', args, { encoding: 'utf8', timeout: timeoutMs, maxBuffer: 16 * 1024 * 1024, env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin', LC_ALL: 'C' } }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : -1) : 0;
      resolve({ code, out: `${stdout}${stderr}` });
    });
  });
}
