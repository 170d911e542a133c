import { mkdir, writeFile, chmod, chown } from 'node:fs/promises';
import path from 'node:path';
import { run } from '../os/exec.js';

// The demo's image: what a careless image builder ships. Root and a default user with a
// known password, an sshd that allows passwords (through a cloud-init style drop-in, the way
// real images end up with one), and host keys baked in at build time.

export const DEMO_PASSWORD = 'imagepass';
export const DEMO_USER = 'debian';
export const DEMO_MACHINE_ID = '7d1c0a9e5b2f4e61a3c8d9b0e4f1a2c3';

const PASSWD = `root:x:0:0:root:/root:/bin/bash
daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin
bin:x:2:2:bin:/bin:/usr/sbin/nologin
sys:x:3:3:sys:/dev:/usr/sbin/nologin
sshd:x:100:65534::/run/sshd:/usr/sbin/nologin
${DEMO_USER}:x:1000:1000:Debian:/home/${DEMO_USER}:/bin/bash
`;
const SHADOW = `root:*:19700:0:99999:7:::
daemon:*:19700:0:99999:7:::
bin:*:19700:0:99999:7:::
sys:*:19700:0:99999:7:::
sshd:*:19700:0:99999:7:::
${DEMO_USER}:*:19700:0:99999:7:::
`;
const GROUP = `root:x:0:
daemon:x:1:
bin:x:2:
sys:x:3:
adm:x:4:${DEMO_USER}
shadow:x:42:
sudo:x:27:${DEMO_USER}
nogroup:x:65534:
${DEMO_USER}:x:1000:
`;
const GSHADOW = `root:*::
daemon:*::
bin:*::
sys:*::
adm:*::${DEMO_USER}
shadow:*::
sudo:*::${DEMO_USER}
nogroup:*::
${DEMO_USER}:!::
`;
// Debian 12's sshd_config, abridged: the Include comes first, so a drop-in can win.
const SSHD_CONFIG = `# This is the sshd server system-wide configuration file.  See
# sshd_config(5) for more information.

Include /etc/ssh/sshd_config.d/*.conf

#Port 22
#HostKey /etc/ssh/ssh_host_rsa_key
#HostKey /etc/ssh/ssh_host_ecdsa_key
#HostKey /etc/ssh/ssh_host_ed25519_key

#PermitRootLogin prohibit-password
#PubkeyAuthentication yes
#PasswordAuthentication yes
#PermitEmptyPasswords no

KbdInteractiveAuthentication no
UsePAM yes
X11Forwarding yes
PrintMotd no
AcceptEnv LANG LC_*
Subsystem	sftp	/usr/lib/openssh/sftp-server
`;
const CLOUD_INIT_DROP_IN = 'PasswordAuthentication yes\n';
const LOGIN_DEFS = 'ENCRYPT_METHOD SHA512\nUID_MIN 1000\nUID_MAX 60000\nGID_MIN 1000\nGID_MAX 60000\nCREATE_HOME yes\n';

async function put(root: string, file: string, text: string, mode: number, gid = 0): Promise<void> {
  const host = path.join(root, file);
  await mkdir(path.dirname(host), { recursive: true });
  await writeFile(host, text, { mode });
  await chmod(host, mode);
  await chown(host, 0, gid);
}

/** Builds the demo image tree under root. Returns nothing: the tree is the result. */
export async function buildDemoImage(root: string): Promise<void> {
  await put(root, 'etc/passwd', PASSWD, 0o644);
  await put(root, 'etc/shadow', SHADOW, 0o640, 42);
  await put(root, 'etc/group', GROUP, 0o644);
  await put(root, 'etc/gshadow', GSHADOW, 0o640, 42);
  await put(root, 'etc/login.defs', LOGIN_DEFS, 0o644);
  await put(root, 'etc/machine-id', `${DEMO_MACHINE_ID}\n`, 0o444);
  await put(root, 'etc/hostname', 'demo-image\n', 0o644);
  await put(root, 'etc/ssh/sshd_config', SSHD_CONFIG, 0o644);
  await put(root, 'etc/ssh/sshd_config.d/50-cloud-init.conf', CLOUD_INIT_DROP_IN, 0o644);
  await mkdir(path.join(root, 'etc/sudoers.d'), { recursive: true, mode: 0o755 });
  await mkdir(path.join(root, 'etc/skel'), { recursive: true });
  await mkdir(path.join(root, `home/${DEMO_USER}`), { recursive: true, mode: 0o755 });
  await chown(path.join(root, `home/${DEMO_USER}`), 1000, 1000);
  await mkdir(path.join(root, 'root'), { recursive: true, mode: 0o700 });
  // The builder's known passwords, set the way the builder would have.
  await run('chpasswd', ['-c', 'SHA512', '--root', root], { input: `root:${DEMO_PASSWORD}\n${DEMO_USER}:${DEMO_PASSWORD}\n` });
  // Baked host keys: every instance of this image would share them.
  await Promise.all((['ed25519', 'ecdsa', 'rsa'] as const).map((t) =>
    run('ssh-keygen', ['-q', '-t', t, ...(t === 'rsa' ? ['-b', '3072'] : []), '-N', '', '-C', 'root@image-builder', '-f', path.join(root, `etc/ssh/ssh_host_${t}_key`)])));
}
