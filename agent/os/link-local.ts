import { networkInterfaces } from 'node:os';

// The interfaces a link-local service (OpenStack's fe80::a9fe:a9fe) can be asked through: up,
// not loopback, with an IPv6 link-local address of their own. Read from the kernel's list of
// this machine's addresses; nothing is sent.

const MAX_INTERFACES = 8;
// Names usable as a URL's zone (zoned-url.ts); the kernel allows odder ones, which are skipped.
const PLAIN_NAME = /^[A-Za-z0-9_.@-]{1,15}$/;

export function linkLocalInterfaces(): string[] {
  const out: string[] = [];
  for (const [name, addresses] of Object.entries(networkInterfaces())) {
    if (PLAIN_NAME.test(name) && (addresses ?? []).some((a) => a.family === 'IPv6' && !a.internal && /^fe[89ab]/i.test(a.address))) out.push(name);
  }
  return out.sort().slice(0, MAX_INTERFACES);
}
