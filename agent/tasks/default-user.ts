import { randomBytes } from 'node:crypto';
import { unlink } from 'node:fs/promises';
import type { Task, TaskContext } from '../boot/task.js';
import type { TaskRecorder } from '../boot/report.js';
import type { DefaultUser } from '../config.js';
import { ImprintError } from '../os/errors.js';
import { readTreeText, replaceTreeFile, statTree, writeTreeFileAtomic } from '../os/files.js';
import { AccountTable, readAccountTable } from '../os/account-db.js';
import { checkSudoers, useradd, type NewUser } from '../os/shadow-utils.js';
import { addUserToTree } from '../os/tree-user.js';

// The guides' "non-root user with sudo": created once, password locked (the passwords task
// locks it and proves it), with its sudo rule in a drop-in that visudo accepts before it is
// put in place. sudo ignores drop-in names containing a dot, so the check file is inert.

export const SUDOERS_DROP_IN = '/etc/sudoers.d/90-imprint-default-user';

/** The names in /etc/passwd or /etc/group; lines imprint does not understand are skipped, not fatal. */
async function existing(ctx: TaskContext, file: '/etc/passwd' | '/etc/group'): Promise<string[]> {
  const table = await readAccountTable(ctx.root, file);
  if (table.found === null) throw new ImprintError(`${file} does not exist`);
  return table.lines.filter((l) => !AccountTable.isNis(l) && l.includes(':')).map((l) => AccountTable.nameOf(l));
}

/**
 * The live system's useradd; for a tree, imprint itself (no code of the image runs). Either way
 * the new account's password field is "!": locked, with no hash at all.
 */
export async function addLoginUser(ctx: TaskContext, rec: TaskRecorder, user: NewUser): Promise<void> {
  if (ctx.root.isLive) {
    await useradd(ctx.root, user);
    return;
  }
  const added = await addUserToTree(ctx.root, user);
  rec.detail('uid', added.uid);
  if (!added.homeCreated) rec.warn(`${added.home} exists already: left as it is, not filled from the skeleton`);
}

function sudoersText(user: Pick<DefaultUser, 'name' | 'sudo'>): string {
  return `# Written by imprint for the default login user; see /etc/imprint/imprint.yaml.\n${user.name} ${user.sudo}\n`;
}

export const defaultUserTask: Task = {
  name: 'default-user',
  phase: 'local',
  after: [],

  disabledBecause: (config) => (config.defaultUser ? null : 'no default_user in the config'),

  async plan(ctx) {
    const user = ctx.config.defaultUser as DefaultUser;
    const lines: string[] = [];
    if ((await existing(ctx, '/etc/passwd')).includes(user.name)) lines.push(`${user.name} exists; would leave the account as it is`);
    else {
      const groups = await existing(ctx, '/etc/group');
      lines.push(`would create ${user.name} (shell ${user.shell}, groups ${user.groups.filter((g) => groups.includes(g)).join(',') || 'none'}) with a locked password`);
    }
    if (user.sudo && (await readTreeText(ctx.root, SUDOERS_DROP_IN)) !== sudoersText(user)) lines.push(`would write ${SUDOERS_DROP_IN}: ${user.name} ${user.sudo}`);
    return lines;
  },

  async run(ctx: TaskContext, rec: TaskRecorder) {
    const user = ctx.config.defaultUser as DefaultUser;
    if ((await existing(ctx, '/etc/passwd')).includes(user.name)) {
      rec.action(`${user.name} already exists; account left as it is`);
    } else {
      const known = await existing(ctx, '/etc/group');
      const groups = user.groups.filter((g) => known.includes(g));
      const absent = user.groups.filter((g) => !known.includes(g));
      if (absent.length > 0) rec.warn(`groups not in this image, left out: ${absent.join(', ')}`);
      await addLoginUser(ctx, rec, { name: user.name, shell: user.shell, groups, gecos: user.gecos });
      rec.action(`created ${user.name} (shell ${user.shell}, groups ${groups.join(',') || 'none'})`);
    }
    rec.detail('user', user.name);
    if (user.sudo) await writeSudoRule(ctx, rec, user.name, user.sudo, SUDOERS_DROP_IN);
    return undefined;
  },
};

/** The user's sudo rule in its own drop-in, put in place only once visudo accepts it. */
export async function writeSudoRule(ctx: TaskContext, rec: TaskRecorder, name: string, rule: string, dropIn: string): Promise<void> {
  if ((await statTree(ctx.root, '/etc/sudoers.d')) === null) {
    rec.warn('sudo is not installed (no /etc/sudoers.d); no sudo rule written');
    return;
  }
  const text = sudoersText({ name, sudo: rule });
  if ((await readTreeText(ctx.root, dropIn)) === text) {
    rec.action(`${dropIn} already grants ${rule}`);
    return;
  }
  const check = `/etc/sudoers.d/.imprint-check-${randomBytes(4).toString('hex')}`;
  await writeTreeFileAtomic(ctx.root, check, text, { mode: 0o440, uid: 0, gid: 0 });
  try {
    await checkSudoers(ctx.root.path(check));
  } catch (err) {
    await unlink(ctx.root.path(check)).catch(() => undefined);
    throw new ImprintError(`visudo rejected the sudo rule "${rule}"; nothing written: ${(err as Error).message}`);
  }
  await replaceTreeFile(ctx.root, ctx.root.path(check), dropIn);
  rec.action(`wrote ${dropIn}: ${name} ${rule}`);
}
