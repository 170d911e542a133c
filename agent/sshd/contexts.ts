import { NEUTRAL_CONNECTION, type ConnectionSpec } from '../os/sshd-oracle.js';
import type { PasswdEntry } from '../parsers/accounts.js';
import { splitArgs } from '../parsers/sshd-config.js';
import type { ConfigSet } from './config-set.js';

// The connections sshd is asked about (`sshd -T -C ...`) to prove keys-only for every login
// context: each account that can log in, once as a plain connection and once for every Match
// block with that block's host/address/port criteria satisfied, so that sshd itself decides
// which blocks apply (User and Group criteria are decided by the account). Accounts only
// matter through User/Group criteria and root's own rule, so without such criteria root and
// one other account stand for all.

const { host, addr, laddr, lport } = NEUTRAL_CONNECTION;
export const PLAIN_CONNECTION = { host, addr, laddr, lport } as const;
const NO_LOGIN_SHELLS = /(^|\/)(nologin|false|sync|shutdown|halt)$/;

export interface MatchBlockSite {
  file: string;
  /** 1-based line number of the Match line. */
  line: number;
  criteria: Map<string, string[]>;
}

export function matchBlocks(set: ConfigSet): MatchBlockSite[] {
  const out: MatchBlockSite[] = [];
  for (const r of set.order) {
    if (r.line.kind !== 'directive' || r.line.key !== 'match') continue;
    const words = splitArgs(r.line.value);
    const criteria = new Map<string, string[]>();
    for (let i = 0; i < words.length; i += 1) {
      const name = (words[i] as string).toLowerCase();
      if (name === 'all') criteria.set('all', []);
      else {
        criteria.set(name, (words[i + 1] ?? '').split(','));
        i += 1;
      }
    }
    out.push({ file: r.file, line: r.index + 1, criteria });
  }
  return out;
}

/** A value that a pattern list's first positive pattern matches (wildcards filled in). */
function satisfy(patterns: string[] | undefined, fill: string): string | undefined {
  const positive = patterns?.find((p) => p !== '' && !p.startsWith('!'));
  if (positive === undefined) return undefined;
  return positive.replace(/\/\d+$/, '').replace(/[*?]/g, fill);
}

export function canLogIn(account: PasswdEntry): boolean {
  return account.shell !== '' ? !NO_LOGIN_SHELLS.test(account.shell) : true;
}

/** The accounts whose rules can differ: root, one other login account, and those User/Group criteria name. */
export function relevantUsers(blocks: MatchBlockSite[], accounts: PasswdEntry[]): string[] {
  const login = accounts.filter(canLogIn);
  const users = new Set<string>(['root']);
  const other = login.find((a) => a.uid !== 0);
  if (other) users.add(other.name);
  const byUserOrGroup = blocks.some((b) => b.criteria.has('user') || b.criteria.has('group'));
  if (byUserOrGroup) for (const a of login) users.add(a.name);
  return [...users];
}

/** One spec per (user, plain connection or Match block), de-duplicated. */
export function connectionSpecs(blocks: MatchBlockSite[], users: string[]): ConnectionSpec[] {
  const specs = new Map<string, ConnectionSpec>();
  for (const user of users) {
    const candidates: ConnectionSpec[] = [{ user, ...PLAIN_CONNECTION }];
    for (const b of blocks) {
      const lport = Number(satisfy(b.criteria.get('localport'), '2'));
      const spec: ConnectionSpec = {
        user,
        host: satisfy(b.criteria.get('host'), 'x') ?? PLAIN_CONNECTION.host,
        addr: satisfy(b.criteria.get('address'), '1') ?? PLAIN_CONNECTION.addr,
        laddr: satisfy(b.criteria.get('localaddress'), '1') ?? PLAIN_CONNECTION.laddr,
        lport: Number.isInteger(lport) && lport > 0 && lport < 65536 ? lport : PLAIN_CONNECTION.lport,
      };
      const rdomain = satisfy(b.criteria.get('rdomain'), 'x');
      if (rdomain !== undefined) spec.rdomain = rdomain;
      candidates.push(spec);
    }
    for (const c of candidates) specs.set(JSON.stringify(c), c);
  }
  return [...specs.values()];
}
