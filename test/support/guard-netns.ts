import { execFileSync } from 'node:child_process';
import { HttpClient } from '../../agent/os/http.js';

// Run by test/integration/metadata-guard.test.ts inside a network namespace of its own
// (unshare --net): only lo and a veth pair d0/d1 exist (this kernel has no dummy driver), and
// every metadata range is routed on-link to d0. The first packet towards any address there
// makes the kernel create a neighbour entry for it (ARP or neighbour discovery), so an empty
// neighbour table after the attempts means no packet was sent; d1 answers nothing.
// Prints one JSON object: what each URL gave and the neighbour entries after the attempts and
// after the controls.

const urls = JSON.parse(process.argv[2] ?? '[]') as string[];
const controls = JSON.parse(process.argv[3] ?? '[]') as string[];
const ip = (...args: string[]): string => execFileSync('ip', args, { encoding: 'utf8' });

const links = ip('-o', 'link', 'show').trim().split('\n').map((l) => l.split(': ')[1]);
if (links.join(',') !== 'lo') throw new Error(`not a fresh network namespace: ${links.join(',')}`);
ip('link', 'set', 'lo', 'up');
ip('link', 'add', 'd0', 'type', 'veth', 'peer', 'name', 'd1');
ip('link', 'set', 'd1', 'up');
ip('link', 'set', 'd0', 'up');
ip('addr', 'add', '192.0.2.1/24', 'dev', 'd0');
ip('-6', 'addr', 'add', '2001:db8::1/64', 'dev', 'd0', 'nodad');
for (const net of ['169.254.0.0/16', '100.100.100.200/32', '198.51.100.0/24']) ip('route', 'add', net, 'dev', 'd0');
for (const net of ['fd00:ec2::/64', '64:ff9b::/96', '2001:db8:1::/64']) ip('-6', 'route', 'add', net, 'dev', 'd0');
const neighbours = (): string[] => [...ip('neigh', 'show', 'dev', 'd0').split('\n'), ...ip('-6', 'neigh', 'show', 'dev', 'd0').split('\n')]
  .map((l) => l.trim()).filter(Boolean);

async function attempt(url: string): Promise<string> {
  const client = new HttpClient({ maxBodyBytes: 1024, maxConnections: 1 });
  try {
    const res = await client.send('GET', url, {}, 300);
    return `HTTP ${res.status}`;
  } catch (err) {
    return (err as Error).message;
  } finally {
    await client.close();
  }
}

const results: Record<string, string> = {};
for (const url of urls) results[url] = await attempt(url);
const after = neighbours();
// The controls: addresses that are not metadata services, routed the same way, must leave
// neighbour entries (so an empty table above means no packet, not a probe that cannot see).
const controlResults = [];
for (const url of controls) controlResults.push(await attempt(url));
const afterControls = neighbours();
process.stdout.write(`${JSON.stringify({ results, after, controlResults, afterControls })}\n`);
