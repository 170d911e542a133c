import { randomBytes } from 'node:crypto';
import type { Task, TaskContext } from '../boot/task.js';
import type { TaskRecorder } from '../boot/report.js';
import { readAccountTable, type AccountTable } from '../os/account-db.js';
import { ImprintError } from '../os/errors.js';
import { changePasswordFields, type PasswordChange } from '../os/password-fields.js';
import { hashPassword } from '../os/sha512-crypt.js';
import { hashScheme, passwordState } from '../parsers/accounts.js';
import { loadConfigSet, firstGlobal } from '../sshd/config-set.js';
import { permitRootLogin } from '../sshd/desired.js';
import { planPasswordLocks, type LeftAlone, type PasswordPlan, type TargetChoice } from './password-targets.js';

// Every targeted account gets a fresh random password nobody knows (32 bytes from the CSPRNG,
// never printed), hashed here with SHA-512 crypt and written already locked ("!" + hash), in
// one step: an unknowable hash, so that a later `usermod -U` reveals no known password. On a
// tree imprint edits the files itself (nothing of the image runs); on the live system one
// `chpasswd -e` does it. imprint then re-reads both files to prove each targeted line is locked
// and every other line is byte for byte the same.

function choiceOf(ctx: TaskContext): TargetChoice {
  const { accounts, exclude } = ctx.config.passwords;
  return { accounts, exclude, defaultUser: ctx.config.defaultUser?.name ?? null };
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

function leftLine(l: LeftAlone): string {
  return `${l.what}: ${l.why}`;
}

async function readBoth(ctx: TaskContext): Promise<{ passwd: AccountTable; shadow: AccountTable }> {
  const passwd = await readAccountTable(ctx.root, '/etc/passwd');
  if (passwd.found === null) throw new ImprintError('/etc/passwd does not exist');
  return { passwd, shadow: await readAccountTable(ctx.root, '/etc/shadow') };
}

type Lines = { passwd: string[]; shadow: string[] };

/** Which field values each targeted line must hold after the change; problems otherwise. */
function verify(plan: PasswordPlan, before: Lines, after: { passwd: AccountTable; shadow: AccountTable }, keepUnlocked: Set<string>): string[] {
  const problems: string[] = [];
  for (const [file, b, a] of [['/etc/passwd', before.passwd, after.passwd], ['/etc/shadow', before.shadow, after.shadow]] as const) {
    if (a.lines.length !== b.length) {
      problems.push(`${file} had ${b.length} lines, now ${a.lines.length}`);
      continue;
    }
    const touched = new Set(plan.targets.flatMap((t) => (file === '/etc/passwd' ? t.passwd : t.shadow)));
    b.forEach((line, i) => {
      if (!touched.has(i) && a.lines[i] !== line) problems.push(`${file} line ${i + 1} was not targeted but changed`);
    });
  }
  for (const t of plan.targets) {
    const expected = keepUnlocked.has(t.account) ? 'usable' : 'locked';
    for (const [file, table, lines] of [['/etc/shadow', after.shadow, t.shadow], ['/etc/passwd', after.passwd, t.passwd]] as const) {
      for (const i of lines) {
        const line = table.lines[i] ?? '';
        const state = line.split(':')[0] === t.account ? passwordState(line.split(':')[1] ?? '') : 'missing';
        if (state !== expected) problems.push(`${t.account} is ${state} in ${file} line ${i + 1} after locking`);
      }
    }
  }
  return problems;
}

export const passwordsTask: Task = {
  name: 'passwords',
  phase: 'local',
  after: ['default-user'],

  disabledBecause: (config) => (config.passwords.enabled ? null : 'passwords.enabled is false'),

  async plan(ctx) {
    const { passwd, shadow } = await readBoth(ctx);
    const plan = planPasswordLocks(passwd, shadow, choiceOf(ctx));
    const lines = plan.targets.map((t) => `would set a random password on ${t.account} and lock it`);
    for (const l of plan.left) if (l.what !== ctx.config.defaultUser?.name) lines.push(`warning: ${leftLine(l)}`);
    return lines;
  },

  async run(ctx: TaskContext, rec: TaskRecorder) {
    const keepUnlocked = await keyLoginAccounts(ctx);
    const before: Lines = { passwd: [], shadow: [] };
    const plan = await changePasswordFields(ctx.root, (passwd, shadow) => {
      before.passwd = [...passwd.lines];
      before.shadow = [...shadow.lines];
      const decided = planPasswordLocks(passwd, shadow, choiceOf(ctx));
      const changes: PasswordChange[] = decided.targets.map((t) => {
        const hash = hashPassword(randomBytes(32));
        return { account: t.account, field: keepUnlocked.has(t.account) ? hash : `!${hash}`, shadow: t.shadow, passwd: t.passwd };
      });
      return { changes, result: decided };
    });
    for (const l of plan.left) if (l.what !== ctx.config.defaultUser?.name || !l.why.startsWith('not in')) rec.warn(leftLine(l));
    rec.detail('left', plan.left);
    if (plan.targets.length === 0) {
      rec.action('no account to lock');
      return 'skipped';
    }
    for (const t of plan.targets) {
      for (const n of t.notes) rec.action(`${t.account}: ${n}`);
      if (keepUnlocked.has(t.account)) rec.warn(`${t.account}: random password set but not locked: sshd has UsePAM no and would refuse key logins to a locked account`);
    }
    const after = await readBoth(ctx);
    const problems = verify(plan, before, after, keepUnlocked);
    const results = plan.targets.map((t) => {
      const line = t.shadow.length > 0 ? after.shadow.lines[t.shadow[0] as number] : after.passwd.lines[t.passwd[0] as number];
      const field = (line ?? '').split(':')[1] ?? '';
      return { account: t.account, state: passwordState(field), scheme: hashScheme(field) };
    });
    rec.detail('accounts', results);
    rec.detail('method', 'sha512');
    if (problems.length > 0) throw new ImprintError(`verification of the account files failed: ${problems.join('; ')}`);
    rec.action(`randomized (sha512) and locked: ${results.filter((r) => r.state === 'locked').map((r) => r.account).join(', ') || 'none'}`);
    return undefined;
  },
};
