import { listTreeDir, readTreeFile } from './files.js';
import type { RootTree } from './root.js';

// The DHCP server the instance got its address from, as the DHCP clients recorded it: on
// CloudStack that server is the virtual router, which also serves the metadata. Only what the
// clients wrote is read (systemd-networkd and NetworkManager's internal client: SERVER_ADDRESS=;
// ISC dhclient: "option dhcp-server-identifier"), and only a private IPv4 literal is accepted,
// so a lease file cannot send imprint to a public host, to loopback or to a name to resolve.

const LEASE_DIRS: readonly { dir: string; match: RegExp; read: (text: string) => string[] }[] = [
  { dir: '/run/systemd/netif/leases', match: /^\d+$/, read: (t) => [...t.matchAll(/^SERVER_ADDRESS=(\S+)$/gm)].map((m) => m[1] as string) },
  { dir: '/var/lib/NetworkManager', match: /\.lease$/, read: (t) => [...t.matchAll(/^SERVER_ADDRESS=(\S+)$/gm)].map((m) => m[1] as string) },
  { dir: '/var/lib/dhcp', match: /^dhclient.*\.leases?$/, read: (t) => [...t.matchAll(/option dhcp-server-identifier ([0-9.]+);/g)].map((m) => m[1] as string) },
];

export function privateIpv4(text: string): boolean {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(text);
  if (!m) return false;
  const [a, b] = [Number(m[1]), Number(m[2])];
  if (m.slice(1).some((o) => Number(o) > 255 || (o.length > 1 && o.startsWith('0')))) return false;
  return a === 10 || (a === 172 && b >= 16 && b <= 31) || (a === 192 && b === 168);
}

export interface DhcpServers {
  /** Distinct private IPv4 DHCP servers found. */
  servers: string[];
  /** Addresses found but refused, for the report. */
  refused: string[];
}

export async function dhcpServers(root: RootTree): Promise<DhcpServers> {
  const found = new Set<string>();
  const refused = new Set<string>();
  for (const { dir, match, read } of LEASE_DIRS) {
    for (const name of (await listTreeDir(root, dir).catch(() => [])).filter((n) => match.test(n))) {
      const data = await readTreeFile(root, `${dir}/${name}`, 256 * 1024).catch(() => null);
      if (!data) continue;
      for (const address of read(data.toString('utf8'))) (privateIpv4(address) ? found : refused).add(address.slice(0, 64));
    }
  }
  return { servers: [...found], refused: [...refused] };
}
