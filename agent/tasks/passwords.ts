import { randomBytes } from 'node:crypto';
import type { Task, TaskContext } from '../boot/task.js';
import type { TaskRecorder } from '../boot/report.js';
import { ImprintError } from '../os/errors.js';
import { readTreeText } from '../os/files.js';
import { chpasswd, lockPassword, type CryptMethod } from '../os/shadow-utils.js';
import { hashScheme, parseAccountFile, passwdEntries, passwordState, type AccountFile } from '../parsers/accounts.js';
import { loadConfigSet, firstGlobal } from '../sshd/config-set.js';
import { permitRootLogin } from '../sshd/desired.js';

// Every targeted account gets a fresh random password nobody knows (32 bytes from the CSPRNG,
// never printed) and is then locked. shadow-utils make the changes; imprint re-reads
// /etc/shadow to prove each targeted account is locked and every other line is untouched.

async function readAccounts(ctx: TaskContext, file: '/etc/shadow' | '/etc/passwd'): Promise<AccountFile> {
  const text = await readTreeText(ctx.root, file);
  if (text === null) throw new ImprintError(`${file} does not exist`);
  return parseAccountFile(text, file === '/etc/shadow' ? 'shadow' : 'passwd', file);
}

export interface PasswordTargets {
  accounts: string[];
  missing: string[];
}

/** root, every account with a usable (or empty!) password, and the default user; minus exclusions. */
export async function passwordTargets(ctx: TaskContext): Promise<PasswordTargets> {
  const shadow = await readAccounts(ctx, '/etc/shadow');
  const passwd = passwdEntries(await readAccounts(ctx, '/etc/passwd'));
  const inShadow = new Set(shadow.lines.map((l) => l.fields[0] as string));
  const { accounts, exclude } = ctx.config.passwords;
  let wanted: string[];
  if (accounts === 'auto') {
    const usable = shadow.lines.filter((l) => ['usable', 'empty'].includes(passwordState(l.fields[1] as string))).map((l) => l.fields[0] as string);
    // A hash kept in /etc/passwd itself (no shadow line) is just as usable.
    const legacy = passwd.filter((p) => !inShadow.has(p.name) && p.password !== 'x' && ['usable', 'empty'].includes(passwordState(p.password))).map((p) => p.name);
    wanted = ['root', ...usable, ...legacy];
  } else wanted = [...accounts];
  if (ctx.config.defaultUser) wanted.push(ctx.config.defaultUser.name);
  const known = new Set(passwd.map((p) => p.name));
  const unique = [...new Set(wanted)].filter((n) => !exclude.includes(n));
  return { accounts: unique.filter((n) => known.has(n) && inShadow.has(n)), missing: unique.filter((n) => !known.has(n) || !inShadow.has(n)) };
}

async function cryptMethod(ctx: TaskContext): Promise<CryptMethod> {
  if (ctx.config.passwords.method !== 'auto') return ctx.config.passwords.method;
  // The image's own choice, unless it is a weak one (MD5, DES): then SHA-512.
  const defs = (await readTreeText(ctx.root, '/etc/login.defs').catch(() => null)) ?? '';
  const method = /^\s*ENCRYPT_METHOD\s+(\S+)/m.exec(defs)?.[1]?.toUpperCase();
  return method === 'YESCRYPT' || method === 'SHA512' ? method : 'SHA512';
}

/**
 * Accounts that must stay reachable by key. With `UsePAM no`, sshd itself refuses any account
 * whose password field starts with "!" — locking them would lock the user out — so they get
 * the unknown random password only.
 */
async function keyLoginAccounts(ctx: TaskContext): Promise<Set<string>> {
  // Read from the files sshd reads (first value wins; UsePAM is not allowed inside Match), so
  // this task need not wait for sshd -T. No sshd_config: no sshd, nothing to guard.
  const set = await loadConfigSet(ctx.root).catch(() => null);
  if (!set) return new Set();
  const usePam = firstGlobal(set, 'usepam')?.line.value.toLowerCase() ?? 'no';
  if (usePam !== 'no') return new Set();
  const accounts = new Set<string>();
  if (permitRootLogin(ctx.config) !== 'no') accounts.add('root');
  if (ctx.config.defaultUser) accounts.add(ctx.config.defaultUser.name);
  return accounts;
}

export const passwordsTask: Task = {
  name: 'passwords',
  phase: 'local',
  after: ['default-user'],

  disabledBecause: (config) => (config.passwords.enabled ? null : 'passwords.enabled is false'),

  async plan(ctx) {
    const targets = await passwordTargets(ctx);
    const lines = targets.accounts.map((a) => `would set a random password on ${a} and lock it`);
    for (const m of targets.missing) lines.push(`warning: account ${m} does not exist (or has no shadow line); skipped`);
    return lines;
  },

  async run(ctx: TaskContext, rec: TaskRecorder) {
    const before = await readAccounts(ctx, '/etc/shadow');
    const targets = await passwordTargets(ctx);
    for (const m of targets.missing) {
      if (m !== ctx.config.defaultUser?.name) rec.warn(`account ${m} does not exist (or has no shadow line); skipped`);
    }
    if (targets.accounts.length === 0) {
      rec.action('no account to lock');
      return 'skipped';
    }
    const method = await cryptMethod(ctx);
    const entries = targets.accounts.map((user) => ({ user, password: randomBytes(32).toString('base64url') }));
    await chpasswd(ctx.root, entries, method);
    const keepUnlocked = await keyLoginAccounts(ctx);
    for (const user of targets.accounts) {
      if (keepUnlocked.has(user)) {
        rec.warn(`${user}: random password set but not locked: sshd has UsePAM no and would refuse key logins to a locked account`);
        continue;
      }
      await lockPassword(ctx.root, user);
    }

    const after = await readAccounts(ctx, '/etc/shadow');
    const targeted = new Set(targets.accounts);
    const beforeLines = new Map(before.lines.map((l) => [l.fields[0] as string, l.fields.join(':')]));
    const problems: string[] = [];
    const results: { account: string; state: string; scheme: string }[] = [];
    for (const line of after.lines) {
      const name = line.fields[0] as string;
      if (targeted.has(name)) {
        const state = passwordState(line.fields[1] as string);
        const expected = keepUnlocked.has(name) ? 'usable' : 'locked';
        if (state !== expected) problems.push(`${name} is ${state} after locking`);
        results.push({ account: name, state, scheme: hashScheme(line.fields[1] as string) });
      } else if (beforeLines.has(name) && beforeLines.get(name) !== line.fields.join(':')) {
        problems.push(`${name} was not targeted but its shadow line changed`);
      }
    }
    for (const name of targeted) if (!results.some((r) => r.account === name)) problems.push(`${name} disappeared from /etc/shadow`);
    if (after.lines.length !== before.lines.length) problems.push(`/etc/shadow had ${before.lines.length} accounts, now ${after.lines.length}`);
    rec.detail('accounts', results);
    rec.detail('method', method);
    if (problems.length > 0) throw new ImprintError(`verification of /etc/shadow failed: ${problems.join('; ')}`);
    rec.action(`randomized (${method.toLowerCase()}) and locked: ${results.filter((r) => r.state === 'locked').map((r) => r.account).join(', ') || 'none'}`);
    return undefined;
  },
};
