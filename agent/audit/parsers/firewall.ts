// Whether a saved firewall ruleset filters IPv4 and IPv6 (the EGI endorsement checklist: "the
// firewall config (iptables for Linux, also on IPv6) is minimally open"). A ruleset counts for a
// family when one of its filter chains has a rule or a policy other than accept: Debian's stock
// /etc/nftables.conf (a table with empty chains) filters nothing and does not count.

export interface RulesetCoverage {
  ipv4: boolean;
  ipv6: boolean;
  /** Line of the first rule or restrictive policy that counts, per family. */
  ipv4Line: number | null;
  ipv6Line: number | null;
  /** nft `include` targets, as written (the caller expands and reads them). */
  includes: string[];
}

function empty(): RulesetCoverage {
  return { ipv4: false, ipv6: false, ipv4Line: null, ipv6Line: null, includes: [] };
}

function mark(c: RulesetCoverage, family: string, line: number): void {
  const f = family.toLowerCase();
  if (f === 'inet' || f === 'ip') {
    if (!c.ipv4) c.ipv4Line = line;
    c.ipv4 = true;
  }
  if (f === 'inet' || f === 'ip6') {
    if (!c.ipv6) c.ipv6Line = line;
    c.ipv6 = true;
  }
}

/** nftables syntax (nft(8)): "table FAMILY NAME { chain NAME { type filter hook input ...; policy drop; rules } }" and "add rule ..." lines. */
export function nftablesCoverage(text: string): RulesetCoverage {
  const c = empty();
  const lines = text.split('\n');
  // Scope stack: which table family and whether we are inside a chain.
  const stack: { kind: 'table' | 'chain' | 'other'; family: string }[] = [];
  const family = (): string => [...stack].reverse().find((s) => s.kind === 'table')?.family ?? '';
  for (let i = 0; i < lines.length; i += 1) {
    const n = i + 1;
    // Statements are separated by newlines and ';'. Comments start with '#'.
    const code = (lines[i] as string).replace(/#.*$/, '');
    // "add chain inet filter input { type filter hook input priority 0; policy drop; }" on one line
    const flatChain = /^\s*(?:add|create)\s+chain\s+(ip6?|inet)\s+\S+\s+\S+\s*\{.*\}\s*$/.exec(code);
    if (flatChain) {
      const policy = /\bpolicy\s+(\w+)/.exec(code)?.[1];
      if (policy !== undefined && policy !== 'accept') mark(c, flatChain[1] as string, n);
      continue;
    }
    for (const rawStmt of code.split(';')) {
      let stmt = rawStmt.trim();
      while (stmt !== '') {
        const include = /^include\s+"([^"]+)"/.exec(stmt);
        if (include) {
          c.includes.push(include[1] as string);
          stmt = '';
          break;
        }
        const flat = /^(?:add|insert)\s+rule\s+(ip6?|inet|arp|bridge|netdev)\s+\S+\s+\S+\s+\S/.exec(stmt);
        if (flat) {
          mark(c, flat[1] as string, n);
          stmt = '';
          break;
        }
        const table = /^(?:add\s+|create\s+)?table\s+(?:(ip6?|inet|arp|bridge|netdev)\s+)?\S+\s*\{/.exec(stmt);
        if (table) {
          stack.push({ kind: 'table', family: table[1] ?? 'ip' });
          stmt = stmt.slice(table[0].length).trim();
          continue;
        }
        const chain = /^chain\s+\S+\s*\{/.exec(stmt);
        if (chain) {
          stack.push({ kind: 'chain', family: family() });
          stmt = stmt.slice(chain[0].length).trim();
          continue;
        }
        const openOther = /^[^{}]*\{/.exec(stmt);
        const close = stmt.indexOf('}');
        if (openOther && (close === -1 || openOther[0].length - 1 < close)) {
          // a set, map or flowtable body, or an anonymous block inside a rule
          const inChain = stack[stack.length - 1]?.kind === 'chain';
          if (inChain && !/^(?:set|map|flowtable|counter|quota|ct|limit)\s/.test(stmt)) mark(c, family(), n);
          stack.push({ kind: 'other', family: family() });
          stmt = stmt.slice(openOther[0].length).trim();
          continue;
        }
        if (close !== -1) {
          const before = stmt.slice(0, close).trim();
          if (before !== '') judgeChainStatement(c, stack, family(), before, n);
          stack.pop();
          stmt = stmt.slice(close + 1).trim();
          continue;
        }
        judgeChainStatement(c, stack, family(), stmt, n);
        stmt = '';
      }
    }
  }
  return c;
}

function judgeChainStatement(c: RulesetCoverage, stack: { kind: string }[], family: string, stmt: string, line: number): void {
  if (stack[stack.length - 1]?.kind !== 'chain') return;
  if (/^type\s/.test(stmt) || /^(?:comment|devices|priority)\b/.test(stmt)) return;
  const policy = /^policy\s+(\w+)/.exec(stmt);
  if (policy) {
    if (policy[1] !== 'accept') mark(c, family, line);
    return;
  }
  mark(c, family, line);
}

/** iptables-save / ip6tables-save output (rules.v4, rules.v6, /etc/sysconfig/iptables): does its filter table do anything? */
export function iptablesSaveFilters(text: string): { filters: boolean; line: number | null } {
  let table = '';
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i += 1) {
    const l = (lines[i] as string).trim();
    if (l.startsWith('#') || l === '') continue;
    if (l.startsWith('*')) {
      table = l.slice(1);
      continue;
    }
    if (table !== 'filter') continue;
    const policy = /^:(\S+)\s+(\S+)/.exec(l);
    if (policy && policy[2] !== 'ACCEPT' && policy[2] !== '-') return { filters: true, line: i + 1 };
    if (/^-A\s+\S+/.test(l)) return { filters: true, line: i + 1 };
  }
  return { filters: false, line: null };
}
