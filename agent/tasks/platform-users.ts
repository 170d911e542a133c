import type { Task, TaskContext } from '../boot/task.js';
import type { TaskRecorder } from '../boot/report.js';
import { ImprintError } from '../os/errors.js';
import { readTreeText } from '../os/files.js';
import { groupEntries, parseAccountFile, passwdEntries } from '../parsers/accounts.js';
import { addLoginUser, writeSudoRule } from './default-user.js';
import { keyOwners } from './key-owners.js';

// The logins the platform names for its keys (GCE user:key, Azure adminUsername, OpenNebula
// USERNAME), made the way default_user is (addLoginUser: no code of the image runs), password locked, the
// sudo rule checked by visudo. metadata.platform_users: existing creates nobody, forbid makes
// key-owners.ts leave their keys out altogether.

const DEFAULTS = { groups: ['adm', 'sudo'], shell: '/bin/bash', sudo: 'ALL=(ALL) NOPASSWD:ALL' as string | false };

export const sudoersDropIn = (name: string): string => `/etc/sudoers.d/90-imprint-platform-user-${name}`;

async function names(ctx: TaskContext, file: '/etc/passwd' | '/etc/group'): Promise<string[]> {
  const text = await readTreeText(ctx.root, file);
  if (text === null) throw new ImprintError(`${file} does not exist`);
  return file === '/etc/passwd'
    ? passwdEntries(parseAccountFile(text, 'passwd', file)).map((e) => e.name)
    : groupEntries(parseAccountFile(text, 'group', file)).map((e) => e.name);
}

async function missing(ctx: TaskContext): Promise<string[]> {
  const md = ctx.facts.metadata;
  if (!md) return [];
  const wanted = keyOwners(md, ctx.config).owners.filter((o) => o.fromPlatform).map((o) => o.user);
  if (wanted.length === 0) return [];
  const known = await names(ctx, '/etc/passwd');
  return wanted.filter((u) => !known.includes(u));
}

export const platformUsersTask: Task = {
  name: 'platform-users',
  phase: 'network',
  ifMetadata: true,
  after: [],

  disabledBecause: (config) => (!config.authorizedKeys.enabled ? 'authorized_keys.enabled is false' : config.metadata.platformUsers !== 'create' ? `metadata.platform_users is ${config.metadata.platformUsers}` : null),

  async plan(ctx) {
    return (await missing(ctx)).map((u) => `would create ${u} (named by the platform for its keys) with a locked password`);
  },

  async run(ctx: TaskContext, rec: TaskRecorder) {
    const users = await missing(ctx);
    if (users.length === 0) return 'skipped';
    const style = ctx.config.defaultUser ?? DEFAULTS;
    const known = await names(ctx, '/etc/group');
    const groups = style.groups.filter((g) => known.includes(g));
    for (const name of users) {
      await addLoginUser(ctx, rec, { name, shell: style.shell, groups, gecos: 'Platform user (imprint)' });
      rec.action(`created ${name} (named by the platform; shell ${style.shell}, groups ${groups.join(',') || 'none'}, password locked)`);
      if (style.sudo) await writeSudoRule(ctx, rec, name, style.sudo, sudoersDropIn(name));
    }
    rec.detail('created', users);
    return undefined;
  },
};
