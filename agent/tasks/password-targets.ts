import { AccountTable } from '../os/account-db.js';
import { passwordState, type PasswordState } from '../parsers/accounts.js';

// Which lines of /etc/passwd and /etc/shadow carry a password someone could log in with, and
// so must be locked: decided on the files' lines, whatever their layout. A hash kept in
// /etc/passwd counts (pam_unix reads it whenever the field is not "x", shadow line or not); a
// shadow line with too few or too many fields is still read by name and locked in place; NIS
// "+"/"-" entries and lines without an account name are never touched (kept byte for byte) and
// named in the report. One odd line never stops the others from being locked.

export interface PasswordTarget {
  account: string;
  /** Line indexes in /etc/shadow whose password field is replaced. */
  shadow: number[];
  /** Line indexes in /etc/passwd whose password field is replaced (a hash or empty field there). */
  passwd: number[];
  /** Remarks for the report (odd lines locked in place). */
  notes: string[];
}

export interface LeftAlone {
  /** The account, or "<file> line N" for a line without one. */
  what: string;
  why: string;
}

export interface PasswordPlan {
  targets: PasswordTarget[];
  left: LeftAlone[];
}

const SHADOW_FIELDS = 9;

function fieldOf(line: string): string | null {
  const fields = line.split(':');
  return fields.length < 2 ? null : (fields[1] as string);
}

function opens(state: PasswordState): boolean {
  return state === 'usable' || state === 'empty';
}

export interface TargetChoice {
  accounts: 'auto' | readonly string[];
  exclude: readonly string[];
  defaultUser: string | null;
}

export function planPasswordLocks(passwd: AccountTable, shadow: AccountTable, choice: TargetChoice): PasswordPlan {
  const left: LeftAlone[] = [];
  const usable = new Set<string>();
  for (const table of [passwd, shadow]) {
    table.lines.forEach((line, i) => {
      const where = `${table.file} line ${i + 1}`;
      if (line === '') return;
      if (AccountTable.isNis(line)) {
        left.push({ what: where, why: 'NIS compat entry (+/-): not a local password; kept as it is' });
        return;
      }
      const name = AccountTable.nameOf(line);
      const field = fieldOf(line);
      if (name === '' || field === null) {
        left.push({ what: where, why: 'not an account line (no name or no password field); kept as it is' });
        return;
      }
      if (opens(passwordState(field))) usable.add(name);
    });
  }
  const wanted = choice.accounts === 'auto' ? ['root', ...usable] : [...choice.accounts];
  if (choice.defaultUser) wanted.push(choice.defaultUser);
  const targets: PasswordTarget[] = [];
  for (const account of new Set(wanted)) {
    if (choice.exclude.includes(account)) {
      if (usable.has(account)) left.push({ what: account, why: 'excluded by passwords.exclude; its password still works' });
      continue;
    }
    const inPasswd = passwd.indexesOf(account).filter((i) => fieldOf(passwd.lines[i] as string) !== null);
    if (inPasswd.length === 0) {
      left.push({ what: account, why: usable.has(account) ? 'has a shadow line but no /etc/passwd entry (not an account); its shadow line kept' : 'not in /etc/passwd' });
      continue;
    }
    const notes: string[] = [];
    const shadowLines = shadow.indexesOf(account).filter((i) => {
      const fields = (shadow.lines[i] as string).split(':').length;
      if (fields < 2) return false;
      if (fields !== SHADOW_FIELDS) notes.push(`/etc/shadow line ${i + 1} has ${fields} fields, not ${SHADOW_FIELDS}: its password field locked, the rest kept`);
      return true;
    });
    if (shadowLines.length > 1) notes.push(`${shadowLines.length} /etc/shadow lines: all of them locked`);
    const passwdLines = inPasswd.filter((i) => {
      const state = passwordState(fieldOf(passwd.lines[i] as string) as string);
      // Where there is no shadow line, /etc/passwd's field is the password: lock whatever it is
      // unless it can never match already ("*", "!", "x").
      return opens(state) || state === 'locked';
    });
    for (const i of passwdLines) notes.push(`/etc/passwd line ${i + 1} holds the password itself: locked there too`);
    if (shadowLines.length === 0 && passwdLines.length === 0) {
      left.push({ what: account, why: 'no shadow line and no password in /etc/passwd: no password can be used; nothing to lock' });
      continue;
    }
    targets.push({ account, shadow: shadowLines, passwd: passwdLines, notes });
  }
  return { targets, left };
}
