// What seal looks for, as pure data and pure functions: names relative to a home, names found
// anywhere under the scanned directories, and content sniffing of a file's first bytes.
// `imprint audit` reuses these to report leftovers.

export interface HomeRule {
  /** Relative to the home ("".aws", ".config/gcloud"). */
  rel: string;
  /** A directory is removed whole; a file alone. */
  kind: 'file' | 'dir';
  why: string;
}

export const HISTORY_RULES: readonly HomeRule[] = [
  { rel: '.bash_history', kind: 'file', why: 'bash history' },
  { rel: '.zsh_history', kind: 'file', why: 'zsh history' },
  { rel: '.zhistory', kind: 'file', why: 'zsh history' },
  { rel: '.histfile', kind: 'file', why: 'zsh history (zsh-newuser-install default)' },
  { rel: '.sh_history', kind: 'file', why: 'ksh/mksh history' },
  { rel: '.ash_history', kind: 'file', why: 'ash/busybox history' },
  { rel: '.local/share/fish/fish_history', kind: 'file', why: 'fish history' },
  { rel: '.config/fish/fish_history', kind: 'file', why: 'fish history (fish < 2.3)' },
  { rel: '.python_history', kind: 'file', why: 'python REPL history' },
  { rel: '.node_repl_history', kind: 'file', why: 'node REPL history' },
  { rel: '.irb_history', kind: 'file', why: 'ruby irb history' },
  { rel: '.psql_history', kind: 'file', why: 'psql history' },
  { rel: '.mysql_history', kind: 'file', why: 'mysql client history' },
  { rel: '.sqlite_history', kind: 'file', why: 'sqlite3 history' },
  { rel: '.rediscli_history', kind: 'file', why: 'redis-cli history' },
  { rel: '.dbshell', kind: 'file', why: 'mongo shell history' },
  { rel: '.lesshst', kind: 'file', why: 'less history (searches and commands)' },
  { rel: '.viminfo', kind: 'file', why: 'vim history (commands, searches, registers)' },
  { rel: '.local/share/nvim/shada/main.shada', kind: 'file', why: 'neovim history (shada)' },
];

export const CREDENTIAL_RULES: readonly HomeRule[] = [
  { rel: '.aws', kind: 'dir', why: 'AWS CLI credentials and config (~/.aws)' },
  { rel: '.osc', kind: 'dir', why: 'Outscale CLI credentials (~/.osc)' },
  { rel: '.oapi-cli', kind: 'dir', why: 'Outscale oapi-cli credentials (~/.oapi-cli)' },
  { rel: '.config/gcloud', kind: 'dir', why: 'Google Cloud SDK credentials (~/.config/gcloud)' },
  { rel: '.azure', kind: 'dir', why: 'Azure CLI credentials (~/.azure)' },
  { rel: '.oci', kind: 'dir', why: 'Oracle Cloud CLI credentials (~/.oci)' },
  { rel: '.euca', kind: 'dir', why: 'Eucalyptus credentials (~/.euca)' },
  { rel: 'eucarc', kind: 'file', why: 'Eucalyptus credentials (eucarc)' },
  { rel: '.docker/config.json', kind: 'file', why: 'Docker registry credentials (~/.docker/config.json)' },
  { rel: '.kube/config', kind: 'file', why: 'Kubernetes credentials (~/.kube/config)' },
  { rel: '.netrc', kind: 'file', why: 'login credentials (.netrc)' },
  { rel: '.git-credentials', kind: 'file', why: 'git credential store (.git-credentials)' },
  { rel: '.pgpass', kind: 'file', why: 'PostgreSQL passwords (.pgpass)' },
  { rel: '.my.cnf', kind: 'file', why: 'MySQL client config, where passwords live (.my.cnf)' },
  { rel: '.s3cfg', kind: 'file', why: 's3cmd credentials (.s3cfg)' },
  { rel: '.boto', kind: 'file', why: 'boto credentials (.boto)' },
  { rel: '.vault-token', kind: 'file', why: 'HashiCorp Vault token (.vault-token)' },
  { rel: '.config/openstack/clouds.yaml', kind: 'file', why: 'OpenStack credentials (clouds.yaml)' },
  { rel: '.config/openstack/secure.yaml', kind: 'file', why: 'OpenStack credentials (secure.yaml)' },
];

/** Names in ~/.ssh that ssh-user-keys removes, and why. */
export function sshUserKeyWhy(name: string): string | null {
  if (name === 'authorized_keys' || name === 'authorized_keys2') return `keys allowed to log in (${name})`;
  if (/^id_[^/]+\.pub$/.test(name) || /^id_[^/]+-cert\.pub$/.test(name) || name === 'identity.pub') return 'user key pair (public half)';
  if (/^id_[^/]+$/.test(name) || name === 'identity') return 'user key pair (private key)';
  return null;
}

/** Relative paths under a home that a named rule of any operation owns (the content scan leaves them to it). */
export function claimedByName(rel: string): boolean {
  if (rel.startsWith('.ssh/') && !rel.slice(5).includes('/') && sshUserKeyWhy(rel.slice(5)) !== null) return true;
  if (HISTORY_RULES.some((r) => r.rel === rel)) return true;
  return CREDENTIAL_RULES.some((r) => r.rel === rel || (r.kind === 'dir' && rel.startsWith(`${r.rel}/`)));
}

/** Names that are bundling material wherever they are found in a scanned directory. */
export function bundlingNameWhy(name: string): string | null {
  if (/^pk-.*\.pem$/.test(name)) return 'X.509 bundling private key (pk-*.pem)';
  if (/^cert-.*\.pem$/.test(name)) return 'X.509 bundling certificate (cert-*.pem)';
  if (name === 'eucarc') return 'Eucalyptus credentials (eucarc)';
  return null;
}

/** How many bytes of a file the content rules look at. */
export const SNIFF_BYTES = 8192;
/** Files larger than this are not read for sniffing (a key or a PKCS#12 store is far smaller). */
export const SNIFF_MAX_FILE = 1024 * 1024;

const PEM_BEGIN = /^-----BEGIN ([A-Z0-9 ]+)-----\r?$/;
const PRIVATE_LABEL = /^(?:(?:RSA|EC|DSA|OPENSSH|ENCRYPTED|ANY) )?PRIVATE KEY$|^PGP PRIVATE KEY BLOCK$/;
const BASE64_LINE = /^[A-Za-z0-9+/=]{16,}\r?$/;
/** Lines openssl puts before PEM blocks (pkcs12 -nodes, x509 -text). */
const OPENSSL_PREAMBLE = /^(?:(?:Bag|Key) Attributes(?::.*)?|\s+\S.*|(?:subject|issuer)=.*|<No Attributes>)\r?$/;

/**
 * Why a file's first bytes make it secret key material, or null. The content must *be* key
 * material: it starts (after blank lines, other PEM blocks, or openssl's attribute lines) with a
 * private key PEM block whose first body line is base64, or is PuTTY's or SSH2's private key
 * format, or a PKCS#12 store. A document that merely mentions "PRIVATE KEY" is not.
 */
export function sniffSecret(head: Buffer): string | null {
  if (isPkcs12(head)) return 'PKCS#12 key store (DER)';
  const text = head.toString('latin1');
  if (text.startsWith('PuTTY-User-Key-File-')) return 'PuTTY private key';
  if (/^---- BEGIN SSH2 ENCRYPTED PRIVATE KEY ----/.test(text)) return 'SSH2 (RFC 4716) private key';
  const lines = text.replace(/^\uFEFF/, '').split('\n');
  let inBlock: string | null = null;
  for (let i = 0; i < lines.length; i += 1) {
    const line = lines[i] as string;
    if (inBlock !== null) {
      if (line.startsWith(`-----END ${inBlock}-----`)) inBlock = null;
      continue;
    }
    if (line.trim() === '' || OPENSSL_PREAMBLE.test(line)) continue;
    const begin = PEM_BEGIN.exec(line);
    if (!begin) return null;
    const label = begin[1] as string;
    if (PRIVATE_LABEL.test(label)) {
      // Headers (Proc-Type, DEK-Info, Version, Comment) and a blank line may precede the body.
      for (let j = i + 1; j < Math.min(lines.length, i + 8); j += 1) {
        const body = lines[j] as string;
        if (body.trim() === '' || /^[A-Za-z-]+: /.test(body)) continue;
        return BASE64_LINE.test(body) ? `PEM private key (-----BEGIN ${label}-----)` : null;
      }
      return null;
    }
    inBlock = label;
  }
  return null;
}

/** DER of a PFX (RFC 7292): SEQUENCE { INTEGER 3, ContentInfo { OID pkcs7-data or signedData ... } }. */
export function isPkcs12(b: Buffer): boolean {
  let i = 0;
  const skipLength = (): boolean => {
    const first = b[i];
    if (first === undefined) return false;
    i += 1;
    if (first & 0x80) {
      const n = first & 0x7f;
      if (n > 4) return false;
      i += n;
    }
    return i < b.length;
  };
  if (b[i] !== 0x30) return false;
  i += 1;
  if (!skipLength()) return false;
  if (b[i] !== 0x02 || b[i + 1] !== 0x01 || b[i + 2] !== 0x03) return false;
  i += 3;
  if (b[i] !== 0x30) return false;
  i += 1;
  if (!skipLength()) return false;
  const oid = Buffer.from('06092a864886f70d0107', 'hex');
  return b.subarray(i, i + oid.length).equals(oid) && (b[i + oid.length] === 0x01 || b[i + oid.length] === 0x02);
}
