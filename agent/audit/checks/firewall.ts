import path from 'node:path';
import type { AuditContext } from '../context.js';
import { ev, finding, G } from '../guidelines.js';
import type { Check, Finding } from '../types.js';
import { iptablesSaveFilters, nftablesCoverage } from '../parsers/firewall.js';
import { isEnabled } from '../units.js';

// A saved firewall ruleset for IPv4 and for IPv6, and whether it is loaded at boot: nftables
// (/etc/nftables.conf and its includes), iptables-persistent (/etc/iptables/rules.v4, rules.v6),
// Red Hat's /etc/sysconfig/iptables and ip6tables, firewalld, ufw. The classic gap is a
// filtered IPv4 and a wide open IPv6 (the EGI checklist: "also on IPv6").

interface Provider {
  name: string;
  file: string;
  line: number | null;
  loader: string;
  loaded: boolean;
}

type Family = 'ipv4' | 'ipv6';

const MAX_INCLUDES = 64;

function globRe(glob: string): RegExp {
  return new RegExp(`^${glob.replace(/[.+^${}()|\\]/g, '\\$&').replace(/\*/g, '[^/]*').replace(/\?/g, '[^/]')}$`);
}

/** nftables coverage of a file and what it includes (globs expanded inside the tree). */
async function nftFiles(ctx: AuditContext, main: string): Promise<{ ipv4: { file: string; line: number } | null; ipv6: { file: string; line: number } | null; files: string[] }> {
  const result: { ipv4: { file: string; line: number } | null; ipv6: { file: string; line: number } | null; files: string[] } = { ipv4: null, ipv6: null, files: [] };
  const queue = [main];
  while (queue.length > 0 && result.files.length < MAX_INCLUDES) {
    const file = queue.shift() as string;
    if (result.files.includes(file)) continue;
    const t = await ctx.text(file).catch(() => null);
    if (t === null) continue;
    result.files.push(file);
    const c = nftablesCoverage(t.text);
    if (c.ipv4 && !result.ipv4) result.ipv4 = { file, line: c.ipv4Line ?? 1 };
    if (c.ipv6 && !result.ipv6) result.ipv6 = { file, line: c.ipv6Line ?? 1 };
    for (const inc of c.includes) {
      const abs = inc.startsWith('/') ? inc : path.posix.join(path.posix.dirname(file), inc);
      const dir = path.posix.dirname(abs);
      const base = path.posix.basename(abs);
      if (/[*?]/.test(base)) {
        for (const name of await ctx.list(dir)) if (globRe(base).test(name)) queue.push(`${dir}/${name}`);
      } else queue.push(abs);
    }
  }
  return result;
}

export async function firewallProviders(ctx: AuditContext): Promise<Record<Family, Provider[]>> {
  const units = await ctx.units();
  const out: Record<Family, Provider[]> = { ipv4: [], ipv6: [] };
  for (const [main, loader] of [['/etc/nftables.conf', 'nftables.service'], ['/etc/sysconfig/nftables.conf', 'nftables.service']] as const) {
    const nft = await nftFiles(ctx, main);
    for (const family of ['ipv4', 'ipv6'] as const) {
      const hit = nft[family];
      if (hit) out[family].push({ name: 'nftables', file: hit.file, line: hit.line, loader, loaded: isEnabled(units, loader) });
    }
  }
  const saved: [string, Family, string[]][] = [
    ['/etc/iptables/rules.v4', 'ipv4', ['netfilter-persistent.service', 'iptables-persistent.service']],
    ['/etc/iptables/rules.v6', 'ipv6', ['netfilter-persistent.service', 'iptables-persistent.service']],
    ['/etc/sysconfig/iptables', 'ipv4', ['iptables.service']],
    ['/etc/sysconfig/ip6tables', 'ipv6', ['ip6tables.service']],
  ];
  for (const [file, family, loaders] of saved) {
    const t = await ctx.text(file).catch(() => null);
    if (t === null) continue;
    const r = iptablesSaveFilters(t.text);
    if (r.filters) out[family].push({ name: 'iptables', file, line: r.line, loader: loaders[0] as string, loaded: loaders.some((l) => isEnabled(units, l)) });
  }
  const firewalld = units.find((u) => u.scope === 'system' && u.name === 'firewalld.service');
  if (firewalld) for (const family of ['ipv4', 'ipv6'] as const) out[family].push({ name: 'firewalld', file: firewalld.link, line: null, loader: 'firewalld.service', loaded: true });
  const ufw = await ctx.text('/etc/ufw/ufw.conf').catch(() => null);
  const ufwLine = ufw?.text.split('\n').findIndex((l) => /^\s*ENABLED\s*=\s*yes\s*$/i.test(l)) ?? -1;
  if (ufw && ufwLine >= 0) {
    const defaults = await ctx.text('/etc/default/ufw').catch(() => null);
    const ipv6 = !/^\s*IPV6\s*=\s*no\s*$/im.test(defaults?.text ?? '');
    const loaded = isEnabled(units, 'ufw.service');
    out.ipv4.push({ name: 'ufw', file: '/etc/ufw/ufw.conf', line: ufwLine + 1, loader: 'ufw.service', loaded });
    if (ipv6) out.ipv6.push({ name: 'ufw', file: '/etc/ufw/ufw.conf', line: ufwLine + 1, loader: 'ufw.service', loaded });
  }
  return out;
}

const LOOKED_AT: Record<Family, string> = {
  ipv4: '/etc/nftables.conf (ip/inet tables with rules), /etc/iptables/rules.v4, /etc/sysconfig/iptables, firewalld, ufw',
  ipv6: '/etc/nftables.conf (ip6/inet tables with rules), /etc/iptables/rules.v6, /etc/sysconfig/ip6tables, firewalld, ufw',
};

export const firewallRuleset: Check = {
  id: 'firewall.ruleset',
  title: 'A firewall ruleset for IPv4 and IPv6, loaded at boot',
  severity: 'medium',
  guidelines: [G.firewall],
  async run(ctx) {
    const providers = await firewallProviders(ctx);
    const out: Finding[] = [];
    for (const family of ['ipv4', 'ipv6'] as const) {
      const label = family === 'ipv4' ? 'IPv4' : 'IPv6';
      const other = family === 'ipv4' ? 'ipv6' : 'ipv4';
      const mine = providers[family];
      if (mine.length === 0) {
        out.push(providers[other].length > 0
          ? finding('medium', `no firewall ruleset for ${label}, while ${other === 'ipv4' ? 'IPv4' : 'IPv6'} has one: ${label} is left open`, ev('/etc/nftables.conf', null, `nothing filters ${label} in ${LOOKED_AT[family]}`), { family: label, ruleset: false })
          : finding('low', `no firewall ruleset for ${label} in the image (only the cloud's security groups filter traffic)`, ev('/etc/nftables.conf', null, `nothing filters ${label} in ${LOOKED_AT[family]}`), { family: label, ruleset: false }));
        continue;
      }
      if (!mine.some((p) => p.loaded)) {
        const p = mine[0] as Provider;
        out.push(finding('low', `the ${p.name} ruleset for ${label} is not loaded at boot (${p.loader} is not enabled)`, ev(p.file, p.line, `${p.name} rules for ${label}; ${p.loader} not enabled`), { family: label, ruleset: true, loaded: false }));
      }
    }
    return out;
  },
};

export const FIREWALL_CHECKS = [firewallRuleset];
