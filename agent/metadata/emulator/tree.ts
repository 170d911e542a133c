import type { ServedKey } from './keys.js';
import type { EmulatorIdentity } from './identity.js';

// The metadata served under /latest/, built once at start-up. Listings follow AWS: one name
// per line, directories with a trailing "/", no final newline; entries AWS leaves out when
// empty (public-keys/, product-codes) are left out here too, so the client sees a 404.

type Entry = { kind: 'file'; body: Buffer } | { kind: 'dir'; entries: Map<string, Entry>; listing?: string };

export interface TreeData {
  instanceId: string;
  /** Replaces the instance-id answer (the oversized scenario). */
  instanceIdBody?: Buffer;
  keys: readonly ServedKey[];
  /** Replaces the public-keys/ listing (the repeated-index scenario). */
  keyListing?: string;
  productCodes: readonly string[];
  identity: EmulatorIdentity;
  document: string;
  /** The base64 PKCS#7 signature; null when no signing key was given. */
  signature: string | null;
}

const file = (text: string | Buffer): Entry => ({ kind: 'file', body: typeof text === 'string' ? Buffer.from(text, 'utf8') : text });

function dir(entries: Record<string, Entry | undefined>, listing?: string): Entry {
  const map = new Map<string, Entry>();
  for (const [name, entry] of Object.entries(entries)) if (entry) map.set(name, entry);
  return listing === undefined ? { kind: 'dir', entries: map } : { kind: 'dir', entries: map, listing };
}

function hostname(ip: string, region: string): string {
  const host = `ip-${ip.replace(/\./g, '-')}`;
  return region === 'us-east-1' ? `${host}.ec2.internal` : `${host}.${region}.compute.internal`;
}

export class MetadataTree {
  private readonly root: Entry;

  constructor(d: TreeData) {
    const host = hostname(d.identity.privateIp, d.identity.region);
    const keys = d.keys.length === 0 ? undefined : dir(
      Object.fromEntries(d.keys.map((k, i) => [String(i), dir({ 'openssh-key': file(k.key) })])),
      d.keyListing ?? d.keys.map((k, i) => `${i}=${k.name}`).join('\n'),
    );
    const metaData = dir({
      'ami-id': file(d.identity.imageId),
      'ami-launch-index': file('0'),
      hostname: file(host),
      'instance-id': file(d.instanceIdBody ?? d.instanceId),
      'instance-type': file(d.identity.instanceType),
      'local-hostname': file(host),
      'local-ipv4': file(d.identity.privateIp),
      placement: dir({ 'availability-zone': file(d.identity.availabilityZone), region: file(d.identity.region) }),
      'product-codes': d.productCodes.length === 0 ? undefined : file(d.productCodes.join('\n')),
      'public-keys': keys,
    });
    const identity = dir({
      document: file(d.document),
      pkcs7: d.signature === null ? undefined : file(d.signature),
      rsa2048: d.signature === null ? undefined : file(d.signature),
    });
    this.root = dir({ latest: dir({ dynamic: dir({ 'instance-identity': identity }), 'meta-data': metaData }) });
  }

  /** The answer body for a URL path, or null for 404. Directories answer with or without "/". */
  lookup(path: string): Buffer | null {
    const trailing = path.endsWith('/');
    const parts = path.split('/').slice(1);
    if (trailing) parts.pop();
    let entry: Entry = this.root;
    for (const part of parts) {
      if (entry.kind !== 'dir') return null;
      const next = entry.entries.get(part);
      if (!next) return null;
      entry = next;
    }
    if (entry.kind === 'file') return trailing ? null : entry.body;
    const listing = entry.listing ?? [...entry.entries].map(([name, e]) => (e.kind === 'dir' ? `${name}/` : name)).join('\n');
    return Buffer.from(listing, 'utf8');
  }
}
