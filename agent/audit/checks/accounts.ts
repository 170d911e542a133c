import type { Account, AuditContext, ShadowEntry } from '../context.js';
import { ev, finding, G } from '../guidelines.js';
import { CheckSkipped, type Check, type Finding } from '../types.js';
import { hashScheme, passwordState, type PasswordState } from '../../parsers/accounts.js';
import { cryptMatch } from '../../os/crypt.js';
import { errorMessage } from '../../os/errors.js';

// Accounts: who can spawn a shell, whose password can be used, extra uid 0 accounts, and
// accounts whose password is a well-known default. The password field is a secret: findings
// say its state and scheme ("usable sha512 password"), never the field.

const NO_LOGIN = /^(?:\/usr)?\/s?bin\/(?:nologin|false|sync|shutdown|halt)$/;

export function hasLoginShell(shell: string): boolean {
  return !NO_LOGIN.test(shell.trim());
}

/** The password that applies: the shadow entry's, else a hash kept in passwd's own field. */
export function passwordOf(account: Account, shadow: Map<string, ShadowEntry> | null): { field: string; file: string; line: number } {
  if (account.password !== 'x' || shadow === null) return { field: account.password, file: '/etc/passwd', line: account.line };
  const entry = shadow.get(account.name);
  return entry ? { field: entry.field, file: '/etc/shadow', line: entry.line } : { field: '*', file: '/etc/passwd', line: account.line };
}

function describeState(state: PasswordState, field: string): string {
  switch (state) {
    case 'usable':
      return `usable ${hashScheme(field)} password`;
    case 'empty':
      return 'empty password field';
    case 'locked':
      return `locked ${hashScheme(field)} password`;
    case 'disabled':
      return 'no password';
  }
}

async function readAccounts(ctx: AuditContext): Promise<{ accounts: Account[]; shadow: Map<string, ShadowEntry> | null }> {
  const accounts = await ctx.accounts();
  if (accounts.length === 0) throw new CheckSkipped('no /etc/passwd in the tree');
  return { accounts, shadow: await ctx.shadow() };
}

export const accountsLoginShells: Check = {
  id: 'accounts.login-shells',
  title: 'Accounts able to spawn a shell',
  severity: 'info',
  guidelines: [G.extraUsers],
  async run(ctx) {
    const { accounts, shadow } = await readAccounts(ctx);
    return accounts.filter((a) => hasLoginShell(a.shell)).map((a) => {
      const pw = passwordOf(a, shadow);
      const shell = a.shell === '' ? '/bin/sh (empty shell field)' : a.shell;
      return finding('info', `${a.name} (uid ${a.uid}) can spawn a shell: ${shell}; ${describeState(passwordState(pw.field), pw.field)}`,
        ev('/etc/passwd', a.line, `${a.name}:${a.password === 'x' ? 'x' : '(password field)'}:${a.uid}:${a.gid}:${a.gecos}:${a.home}:${a.shell}`),
        { user: a.name, uid: a.uid, shell: a.shell, home: a.home, password: passwordState(pw.field) });
    });
  },
};

export const accountsUid0: Check = {
  id: 'accounts.uid0',
  title: 'Accounts other than root with uid 0',
  severity: 'critical',
  guidelines: [G.extraUsers],
  async run(ctx) {
    const { accounts } = await readAccounts(ctx);
    return accounts.filter((a) => a.uid === 0 && a.name !== 'root').map((a) =>
      finding('critical', `${a.name} has uid 0: it is root under another name`, ev('/etc/passwd', a.line, `${a.name}: uid 0, shell ${a.shell || '/bin/sh'}`), { user: a.name, uid: 0 }));
  },
};

export const accountsEmptyPasswords: Check = {
  id: 'accounts.empty-passwords',
  title: 'Accounts with an empty password',
  severity: 'critical',
  guidelines: [G.bakingPasswords, G.egiRootPassword],
  async run(ctx) {
    const { accounts, shadow } = await readAccounts(ctx);
    const out: Finding[] = [];
    for (const a of accounts) {
      const pw = passwordOf(a, shadow);
      if (passwordState(pw.field) !== 'empty') continue;
      const login = hasLoginShell(a.shell);
      out.push(finding(login ? 'critical' : 'high',
        `${a.name} has an empty password: ${login ? 'a console, su or PAM login needs no password at all' : `no login shell (${a.shell}), but su and PAM services accept it with no password`}`,
        ev(pw.file, pw.line, `${a.name}: empty password field`), { user: a.name }));
    }
    return out;
  },
};

// ---------------------------------------------------------------------------------------------
// Known default passwords. Kept short on purpose: vendor and tutorial defaults that real shared
// images have shipped with, and the account's own name as its password.

export interface DefaultPassword {
  user: string;
  password: string;
  /** Where the default comes from, for the message (the password itself is never printed). */
  origin: string;
}

export const DEFAULT_PASSWORDS: readonly DefaultPassword[] = [
  { user: 'root', password: 'root', origin: 'a common root default' },
  { user: 'root', password: 'toor', origin: 'the Kali/BackTrack root default' },
  { user: 'root', password: 'password', origin: 'a common default' },
  { user: 'root', password: 'changeme', origin: 'a common "change me" default' },
  { user: 'admin', password: 'admin', origin: 'a common appliance default' },
  { user: 'admin', password: 'password', origin: 'a common appliance default' },
  { user: 'ubuntu', password: 'ubuntu', origin: 'the Ubuntu live/cloud tutorial default' },
  { user: 'debian', password: 'debian', origin: 'the Debian live/cloud tutorial default' },
  { user: 'centos', password: 'centos', origin: 'the CentOS tutorial default' },
  { user: 'fedora', password: 'fedora', origin: 'the Fedora tutorial default' },
  { user: 'pi', password: 'raspberry', origin: 'the Raspberry Pi OS default' },
  { user: 'vagrant', password: 'vagrant', origin: 'the Vagrant box default' },
  { user: 'user', password: 'password', origin: 'a common default' },
  { user: 'guest', password: 'guest', origin: 'a common guest default' },
  { user: 'test', password: 'test', origin: 'a common test default' },
];

/** The candidates tried for an account: its shipped defaults, then its own name. */
export function candidatesFor(user: string): DefaultPassword[] {
  const list = DEFAULT_PASSWORDS.filter((d) => d.user === user);
  if (!list.some((d) => d.password === user) && !/[\n\r]/.test(user)) list.push({ user, password: user, origin: 'the account\'s own name' });
  return list;
}

export const accountsUsablePasswords: Check = {
  id: 'accounts.usable-passwords',
  title: 'Accounts with a usable password',
  severity: 'high',
  guidelines: [G.bakingPasswords, G.egiRootPassword, G.eucaLock],
  async run(ctx) {
    const { accounts, shadow } = await readAccounts(ctx);
    // An account whose password is a known default is reported once, as that (critical).
    const defaults = await defaultPasswordMatches(ctx).catch(() => null);
    const out: Finding[] = [];
    for (const a of accounts) {
      const pw = passwordOf(a, shadow);
      if (passwordState(pw.field) !== 'usable') continue;
      if (defaults?.matches.has(a.name)) continue;
      const scheme = hashScheme(pw.field);
      const weak = scheme === 'md5' || scheme === 'des' ? ` (${scheme}: a weak hash)` : '';
      const login = hasLoginShell(a.shell) ? '' : ` (shell ${a.shell}: no shell, but su, sudo or services may still accept it)`;
      out.push(finding('high', `${a.name} has a usable password${weak}: shared by every instance of the image${login}`,
        ev(pw.file, pw.line, `${a.name}: ${describeState('usable', pw.field)}`), { user: a.name, scheme }));
    }
    return out;
  },
};

interface DefaultMatches {
  /** Account name → the default its password matched. */
  matches: Map<string, { entry: DefaultPassword; file: string; line: number; scheme: string }>;
  /** Accounts that could not be tested, with why. */
  problems: { user: string; problem: string }[];
  tested: number;
}

const defaultCache = new WeakMap<AuditContext, Promise<DefaultMatches>>();

/** Every usable password tested against the shipped defaults, once per audit. */
export function defaultPasswordMatches(ctx: AuditContext): Promise<DefaultMatches> {
  let p = defaultCache.get(ctx);
  if (!p) {
    p = (async () => {
      const { accounts, shadow } = await readAccounts(ctx);
      const result: DefaultMatches = { matches: new Map(), problems: [], tested: 0 };
      for (const a of accounts) {
        const pw = passwordOf(a, shadow);
        if (passwordState(pw.field) !== 'usable') continue;
        result.tested += 1;
        const candidates = candidatesFor(a.name);
        try {
          const r = await cryptMatch(pw.field, candidates.map((c) => c.password));
          if (r.match !== null) result.matches.set(a.name, { entry: candidates[r.match] as DefaultPassword, file: pw.file, line: pw.line, scheme: hashScheme(pw.field) });
        } catch (err) {
          result.problems.push({ user: a.name, problem: errorMessage(err) });
        }
      }
      return result;
    })();
    defaultCache.set(ctx, p);
  }
  return p;
}

export const accountsDefaultPasswords: Check = {
  id: 'accounts.default-passwords',
  title: 'Accounts whose password is a well-known default',
  severity: 'critical',
  guidelines: [G.egiDefaults, G.bakingDefaults],
  async run(ctx) {
    const r = await defaultPasswordMatches(ctx);
    if (r.problems.length > 0 && r.problems.length === r.tested) {
      throw new Error(`could not test the passwords: ${r.problems.map((p) => `${p.user}: ${p.problem}`).join('; ')}`);
    }
    const out: Finding[] = [];
    for (const [user, m] of r.matches) {
      out.push(finding('critical', `${user}'s password is a well-known default (${m.entry.origin}; tested with the system's crypt)`,
        ev(m.file, m.line, `${user}: ${m.scheme} password matches a default on imprint's list`), { user, origin: m.entry.origin }));
    }
    for (const p of r.problems) out.push(finding('info', `could not test ${p.user}'s password: ${p.problem}`, ev('/etc/shadow', null, `${p.user}: not tested`)));
    return out;
  },
};

export const ACCOUNT_CHECKS = [accountsLoginShells, accountsUid0, accountsUsablePasswords, accountsEmptyPasswords, accountsDefaultPasswords];
