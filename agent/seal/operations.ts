import { didYouMean } from '../config.js';

// The operations of `imprint seal`, in the order they run (and, for a path two operations
// both claim, the first one wins). Named and selected the way virt-sysprep's are.

export const SEAL_OPERATIONS = [
  'ssh-host-keys',
  'ssh-user-keys',
  'shell-history',
  'credentials',
  'passwords',
  'logs',
  'machine-id',
  'state',
  'cron-spool',
  'mail-spool',
  'build-user',
  'zero-free-space',
] as const;

export type SealOperation = (typeof SEAL_OPERATIONS)[number];

export const DEFAULT_OPERATIONS: readonly SealOperation[] = [
  'ssh-host-keys', 'ssh-user-keys', 'shell-history', 'credentials', 'passwords', 'logs', 'machine-id', 'state',
];

/** One line each, for --help. */
export const OPERATION_SUMMARY: Record<SealOperation, string> = {
  'ssh-host-keys': '/etc/ssh/ssh_host_* (private keys overwritten, then every file unlinked)',
  'ssh-user-keys': 'authorized_keys, authorized_keys2 and id_* key pairs in ~/.ssh of root and every home',
  'shell-history': 'bash, zsh, fish, sh/ash, python, node, irb, psql, mysql, sqlite, redis, mongo, less, vim/neovim histories',
  credentials: 'cloud and tool credentials (~/.aws, ~/.osc, ~/.oapi-cli, ~/.config/gcloud, ~/.azure, ~/.oci, ~/.euca, eucarc, ~/.docker/config.json, ~/.kube/config, .netrc, .git-credentials, .pgpass, .my.cnf, .s3cfg, .boto, .vault-token, OpenStack clouds.yaml), pk-*.pem/cert-*.pem, and private keys found by content (PEM, OpenSSH, PuTTY, PGP, PKCS#12) under homes, /root, /tmp, /var/tmp, /mnt',
  passwords: 'every account with a usable or empty password (or a locked one still holding its hash) has its password field set to "!" (locked, no hash left), then /etc/shadow is re-read to check; copies of the hashes (/etc/shadow-, /var/backups/shadow.bak) are removed',
  logs: 'files under /var/log truncated in place (mode and owner kept; wtmp, btmp, lastlog too); rotated copies and journal files removed',
  'machine-id': '/etc/machine-id emptied (the file kept; with --first-boot it says "uninitialized" instead), /var/lib/dbus/machine-id removed: the next boot makes a new machine-id',
  state: "imprint's state, cloud-init's (/var/lib/cloud but seed/ and scripts/), DHCP leases, random seeds and machine secrets, udev persistent-net rules, /tmp and /var/tmp contents, package caches, crash dumps",
  'cron-spool': 'user crontabs (/var/spool/cron/crontabs/*, /var/spool/cron/*)',
  'mail-spool': 'mailboxes (/var/mail/*, /var/spool/mail/*)',
  'build-user': 'the build accounts named by --remove-user (userdel --remove: the account, its home and mail spool) and the /etc/sudoers.d files that hold only their rules; selected by --remove-user',
  'zero-free-space': 'zeros written to the free space of every filesystem of the tree, then removed (smaller compressed images)',
};

export class OperationsError extends Error {}

/**
 * Parses --operations. "-logs,+zero-free-space" (every entry signed) changes the defaults; a
 * list with a bare name ("logs,state") starts from nothing: exactly those, then +/- apply in
 * order. "defaults" and "all" stand for those sets.
 */
export function parseOperations(text: string): Set<SealOperation> {
  const entries = text.split(',').map((e) => e.trim());
  if (entries.some((e) => e === '' || e === '+' || e === '-')) throw new OperationsError(`--operations: empty entry in "${text}"`);
  const signed = entries.every((e) => e.startsWith('+') || e.startsWith('-'));
  const selected = new Set<SealOperation>(signed ? DEFAULT_OPERATIONS : []);
  for (const entry of entries) {
    const sign = entry.startsWith('-') ? '-' : '+';
    const name = entry.replace(/^[+-]/, '');
    const group: readonly SealOperation[] | null = name === 'defaults' ? DEFAULT_OPERATIONS : name === 'all' ? SEAL_OPERATIONS : null;
    if (group === null && !(SEAL_OPERATIONS as readonly string[]).includes(name)) {
      throw new OperationsError(`--operations: unknown operation "${name}"${didYouMean(name, [...SEAL_OPERATIONS, 'defaults', 'all'])}; the operations are ${SEAL_OPERATIONS.join(', ')}`);
    }
    for (const op of group ?? [name as SealOperation]) {
      if (sign === '+') selected.add(op);
      else selected.delete(op);
    }
  }
  if (selected.size === 0) throw new OperationsError(`--operations "${text}" selects no operation`);
  return selected;
}
