import { endianness } from 'node:os';

// /proc/net/{tcp,tcp6,udp,udp6} (proc(5)): one socket a line after a header,
//   sl local_address rem_address st tx_queue:rx_queue tr:tm->when retrnsmt uid timeout inode ...
// Addresses are hex: IPv4 as one 32-bit word, IPv6 as four, each word printed in the kernel's
// byte order (reversed on little-endian machines); ports are plain big-endian hex. A listening
// TCP socket has state 0A (LISTEN); a UDP socket that receives from anyone is bound with no
// remote address (state 07, TCP_CLOSE). Pure: the text comes from os/proc.ts or a fixture.

export interface ProcSocket {
  proto: 'tcp' | 'udp';
  family: 4 | 6;
  address: string;
  port: number;
  remoteAddress: string;
  remotePort: number;
  /** Kernel state number (0x0A listen, 0x07 close...). */
  state: number;
  uid: number;
  inode: number;
  /** 1-based line in the table. */
  line: number;
}

export const TCP_LISTEN = 0x0a;
export const TCP_CLOSE = 0x07;

/** One hex word of the table as bytes in network order. */
function wordBytes(hex: string, little: boolean): number[] {
  const bytes = [0, 2, 4, 6].map((i) => Number.parseInt(hex.slice(i, i + 2), 16));
  return little ? bytes.reverse() : bytes;
}

/** Formats 16 bytes per RFC 5952 (longest run of ≥2 zero groups as "::", IPv4-mapped as ::ffff:a.b.c.d). */
export function formatIpv6(bytes: readonly number[]): string {
  const groups: number[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(((bytes[i] ?? 0) << 8) | (bytes[i + 1] ?? 0));
  if (groups.slice(0, 5).every((g) => g === 0) && groups[5] === 0xffff) {
    return `::ffff:${bytes.slice(12, 16).join('.')}`;
  }
  let bestStart = -1;
  let bestLen = 0;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i += 1;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j += 1;
    if (j - i > bestLen && j - i >= 2) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (bestStart < 0) return hex.join(':');
  return `${hex.slice(0, bestStart).join(':')}::${hex.slice(bestStart + bestLen).join(':')}`;
}

/** "0100007F" → "127.0.0.1" (on little-endian), 32 hex digits → an IPv6 address. */
export function decodeAddress(hex: string, little = endianness() === 'LE'): string {
  if (/^[0-9A-Fa-f]{8}$/.test(hex)) return wordBytes(hex, little).join('.');
  if (/^[0-9A-Fa-f]{32}$/.test(hex)) {
    const bytes: number[] = [];
    for (let w = 0; w < 4; w += 1) bytes.push(...wordBytes(hex.slice(w * 8, w * 8 + 8), little));
    return formatIpv6(bytes);
  }
  throw new Error(`not a /proc/net address: ${JSON.stringify(hex.slice(0, 40))}`);
}

function endpoint(text: string, little: boolean): { address: string; port: number } | null {
  const m = /^([0-9A-Fa-f]{8}|[0-9A-Fa-f]{32}):([0-9A-Fa-f]{4})$/.exec(text);
  if (!m) return null;
  return { address: decodeAddress(m[1] as string, little), port: Number.parseInt(m[2] as string, 16) };
}

/**
 * Parses one table. Lines that do not have the expected shape are skipped (the header, a
 * line cut short by a concurrent change): a parser of kernel text must not throw on it.
 */
export function parseProcNet(text: string, table: 'tcp' | 'tcp6' | 'udp' | 'udp6', little = endianness() === 'LE'): ProcSocket[] {
  const proto = table.startsWith('tcp') ? 'tcp' : 'udp';
  const family = table.endsWith('6') ? 6 : 4;
  const out: ProcSocket[] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i += 1) {
    const f = (lines[i] as string).trim().split(/\s+/);
    if (f.length < 10 || !/^\d+:$/.test(f[0] as string)) continue;
    const local = endpoint(f[1] as string, little);
    const remote = endpoint(f[2] as string, little);
    if (!local || !remote || !/^[0-9A-Fa-f]{2}$/.test(f[3] as string) || !/^\d+$/.test(f[7] as string) || !/^\d+$/.test(f[9] as string)) continue;
    out.push({
      proto, family, address: local.address, port: local.port, remoteAddress: remote.address, remotePort: remote.port,
      state: Number.parseInt(f[3] as string, 16), uid: Number.parseInt(f[7] as string, 10), inode: Number.parseInt(f[9] as string, 10), line: i + 1,
    });
  }
  return out;
}

/** Sockets that accept traffic from elsewhere: TCP in LISTEN, UDP bound with no peer. */
export function listeningSockets(sockets: readonly ProcSocket[]): ProcSocket[] {
  return sockets.filter((s) => (s.proto === 'tcp' ? s.state === TCP_LISTEN : s.remotePort === 0 && s.state === TCP_CLOSE && s.port !== 0));
}

export function isLoopback(address: string): boolean {
  return /^127\./.test(address) || address === '::1' || /^::ffff:127\./.test(address);
}

export function isWildcard(address: string): boolean {
  return address === '0.0.0.0' || address === '::';
}

/** "0.0.0.0:22", "[::]:22". */
export function formatEndpoint(address: string, port: number): string {
  return address.includes(':') ? `[${address}]:${port}` : `${address}:${port}`;
}
