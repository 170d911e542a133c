import { isIPv4, isIPv6 } from 'node:net';

// Which hosts are cloud metadata services, whatever their spelling: the test guard in http.ts
// refuses them before any connection is made. Hosts come here as URL parsing leaves them
// (WHATWG already turns 0xa9fea9fe, 2852039166, 0251.0376.0251.0376, "169.254.169.254." and
// ":80" into one form); addresses from DNS come as the resolver gives them.

/** Names that resolve to a metadata service inside clouds (and may be in a test host's DNS). */
const METADATA_NAMES = new Set(['instance-data', 'instance-data.ec2.internal', 'metadata', 'metadata.google.internal', 'metadata.goog']);

/**
 * 169.254.0.0/16 (link-local: EC2, GCP, OpenStack, Oracle, Scaleway's 169.254.42.42, the
 * 169.254.169.123 time service...), Alibaba's 100.100.100.200 and Azure's wireserver 168.63.129.16.
 */
function isMetadataIPv4(bytes: readonly number[]): boolean {
  const dotted = bytes.join('.');
  return (bytes[0] === 169 && bytes[1] === 254) || dotted === '100.100.100.200' || dotted === '168.63.129.16';
}

function ipv4Bytes(text: string): number[] {
  return text.split('.').map((p) => Number.parseInt(p, 10));
}

/** The 16 bytes of an IPv6 address (with "::" and a trailing dotted quad), or null. */
function ipv6Bytes(text: string): number[] | null {
  if (!isIPv6(text)) return null;
  let groups = text.toLowerCase().split('%')[0] as string;
  const quad = /(\d+\.\d+\.\d+\.\d+)$/.exec(groups)?.[1];
  if (quad) {
    const b = ipv4Bytes(quad);
    groups = `${groups.slice(0, -quad.length)}${((b[0] as number) * 256 + (b[1] as number)).toString(16)}:${((b[2] as number) * 256 + (b[3] as number)).toString(16)}`;
  }
  const [head = '', tail] = groups.split('::');
  const parse = (s: string): number[] => (s === '' ? [] : s.split(':').map((g) => Number.parseInt(g, 16)));
  const h = parse(head);
  const t = tail === undefined ? [] : parse(tail);
  const words = tail === undefined ? h : [...h, ...new Array<number>(8 - h.length - t.length).fill(0), ...t];
  if (words.length !== 8) return null;
  return words.flatMap((w) => [w >> 8, w & 0xff]);
}

function isMetadataIPv6(bytes: readonly number[]): boolean {
  const prefix = (n: number, want: number[]): boolean => want.every((v, i) => bytes[i] === v) && bytes.length === 16 && n === want.length;
  // fd00:ec2::/64, EC2's IPv6 metadata address range.
  if (prefix(8, [0xfd, 0x00, 0x0e, 0xc2, 0, 0, 0, 0])) return true;
  // fe80::/10 (OpenStack's fe80::a9fe:a9fe, any zone) and Oracle's fd00:a9fe:a9fe::1.
  if (bytes[0] === 0xfe && ((bytes[1] as number) & 0xc0) === 0x80) return true;
  if (prefix(6, [0xfd, 0x00, 0xa9, 0xfe, 0xa9, 0xfe])) return true;
  // IPv4 inside IPv6: mapped (::ffff:a.b.c.d), compatible (::a.b.c.d), NAT64 (64:ff9b::a.b.c.d).
  const embedded = prefix(12, [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff]) || prefix(12, [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0])
    || prefix(12, [0, 0x64, 0xff, 0x9b, 0, 0, 0, 0, 0, 0, 0, 0]);
  return embedded && isMetadataIPv4(bytes.slice(12));
}

/** An IP address (IPv6 with or without brackets) or host name that names a metadata service. */
export function isMetadataHost(host: string): boolean {
  const bare = host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host;
  if (isIPv4(bare)) return isMetadataIPv4(ipv4Bytes(bare));
  const v6 = ipv6Bytes(bare);
  if (v6) return isMetadataIPv6(v6);
  return METADATA_NAMES.has(bare.toLowerCase().replace(/\.+$/, ''));
}
