import { userName, type Config } from '../config.js';
import type { InstanceMetadata, LaunchKey } from '../metadata/types.js';

// Whose file each launch key goes into. A key the platform gives to a named login (GCE
// "user:key", Azure's adminUsername, OpenNebula's USERNAME, Akamai's users) belongs to that
// login and to no other: it is never written for the configured user instead. Keys without a
// user go to the configured user (authorized_keys.user, else default_user, else root). When
// the config pins authorized_keys.user, the platform's default login is that user.

export interface KeyOwner {
  user: string;
  keys: LaunchKey[];
  /** Named by the platform (not the configured user): may have to be created. */
  fromPlatform: boolean;
}

export interface KeyOwners {
  owners: KeyOwner[];
  /** Keys left out, one line each (an invalid user name, a policy that forbids platform users). */
  refused: string[];
}

export function configuredUser(config: Config): string {
  const { user } = config.authorizedKeys;
  return user === 'auto' ? (config.defaultUser?.name ?? 'root') : user;
}

export function keyOwners(md: InstanceMetadata, config: Config): KeyOwners {
  const target = configuredUser(config);
  const pinned = config.authorizedKeys.user !== 'auto';
  const byUser = new Map<string, KeyOwner>([[target, { user: target, keys: [], fromPlatform: false }]]);
  const refused: string[] = [];
  for (const key of md.keys) {
    let user = key.user ?? target;
    if (pinned && key.user !== undefined && key.user === md.defaultUser) user = target;
    if (user !== target) {
      const problem = userName(user);
      if (problem) {
        refused.push(`${key.origin}: skipped: the platform's user ${problem}`);
        continue;
      }
      if (config.metadata.platformUsers === 'forbid') {
        refused.push(`${key.origin}: skipped: for ${user}, and metadata.platform_users is forbid`);
        continue;
      }
    }
    let owner = byUser.get(user);
    if (!owner) {
      owner = { user, keys: [], fromPlatform: true };
      byUser.set(user, owner);
    }
    owner.keys.push(key);
  }
  return { owners: [...byUser.values()], refused };
}
