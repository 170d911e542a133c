import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';

// This machine's real sshd, started for a test on 127.0.0.1 and an ephemeral port, reading
// authorized keys only from a scratch file (AuthorizedKeysFile <dir>/%u), and the real ssh
// client logging in to it as root. Nothing of this machine's sshd setup is read or changed:
// the config, host key and keys file are scratch files, and sshd runs under bubblewrap with a
// private tmpfs on /run (sshd needs /run/sshd for privilege separation; it is not created on
// the host). Everything else in the session is locked down (no forwarding, no user rc, no
// password, root only, keys only); the logins run harmless commands (echo, tty).

export interface LoopbackSshd {
  port: number;
  /** sshd's log so far (LogLevel VERBOSE: "Accepted key ... found at <file>:<line>"). */
  log(): string;
  stop(): Promise<void>;
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

function waitListening(child: ChildProcess, log: () => string): Promise<void> {
  return new Promise((resolve, reject) => {
    const onData = (): void => {
      if (log().includes('Server listening on 127.0.0.1')) {
        child.stderr?.off('data', onData);
        child.off('exit', onExit);
        resolve();
      }
    };
    const onExit = (code: number | null): void => reject(new Error(`sshd exited (${code}) before listening:\n${log()}`));
    child.stderr?.on('data', onData);
    child.once('exit', onExit);
    onData();
  });
}

/** Starts sshd with `dir` as its scratch directory; the keys file for root is <dir>/root. */
export async function startLoopbackSshd(dir: string, hostKey: string): Promise<LoopbackSshd> {
  let lastError: unknown = null;
  for (let attempt = 0; attempt < 5; attempt += 1) {
    const port = await freePort();
    const config = path.join(dir, 'sshd_config');
    await writeFile(config, [
      `ListenAddress 127.0.0.1:${port}`,
      `HostKey ${hostKey}`,
      'PidFile none',
      'UsePAM no',
      // The scratch dir sits under /tmp (mode 1777), which StrictModes would refuse.
      'StrictModes no',
      `AuthorizedKeysFile ${dir}/%u`,
      'AuthorizedPrincipalsFile none',
      'AuthorizedKeysCommand none',
      'TrustedUserCAKeys none',
      'PermitRootLogin prohibit-password',
      'AllowUsers root',
      'AuthenticationMethods publickey',
      'PasswordAuthentication no',
      'KbdInteractiveAuthentication no',
      'PermitUserEnvironment no',
      'PermitUserRC no',
      'DisableForwarding yes',
      'PermitTunnel no',
      'PrintMotd no',
      'PrintLastLog no',
      'MaxStartups 64:30:128',
      'LogLevel VERBOSE',
      '',
    ].join('\n'));
    let text = '';
    const child = spawn('bwrap', ['--dev-bind', '/', '/', '--tmpfs', '/run', '--dir', '/run/sshd', '--die-with-parent', '--', '/usr/sbin/sshd', '-D', '-e', '-f', config], { stdio: ['ignore', 'ignore', 'pipe'] });
    child.stderr?.on('data', (d: Buffer) => { text += d.toString('utf8'); });
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    try {
      await waitListening(child, () => text);
    } catch (err) {
      lastError = err;
      continue; // the port was taken in between: another one
    }
    return {
      port,
      log: () => text,
      async stop() {
        if (child.exitCode === null && child.signalCode === null && child.pid !== undefined) process.kill(child.pid, 'SIGTERM');
        await exited;
      },
    };
  }
  throw lastError instanceof Error ? lastError : new Error('sshd did not start');
}

export interface LoginResult {
  ok: boolean;
  code: number;
  stdout: string;
  stderr: string;
}

/** Logs in as root with one private key (and certificate) only, and runs `command`. */
export function sshLogin(port: number, identity: string, command: string, opts: { certificate?: string; tty?: boolean; home: string }): Promise<LoginResult> {
  const args = [
    '-F', '/dev/null', '-i', identity, '-o', 'IdentitiesOnly=yes', '-o', 'BatchMode=yes', '-o', 'StrictHostKeyChecking=no',
    '-o', 'UserKnownHostsFile=/dev/null', '-o', 'GlobalKnownHostsFile=/dev/null', '-o', 'LogLevel=ERROR', '-o', 'PreferredAuthentications=publickey',
    // Offer DSA too, so that it is sshd that refuses it.
    '-o', 'PubkeyAcceptedAlgorithms=+ssh-dss', '-o', 'ConnectTimeout=20',
    ...(opts.certificate ? ['-o', `CertificateFile=${opts.certificate}`] : []),
    ...(opts.tty ? ['-tt'] : ['-T']),
    '-p', String(port), 'root@127.0.0.1', command,
  ];
  return new Promise((resolve) => {
    execFile('ssh', args, { env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: opts.home, LANG: 'C' }, timeout: 60_000, encoding: 'utf8' }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === 'number' ? err.code : -1) : 0;
      // A session that ran (whatever its command's status) authenticated; 255 is ssh's own failure.
      resolve({ ok: code !== 255 && code !== -1, code, stdout, stderr });
    });
  });
}
