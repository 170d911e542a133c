import type { SealOperation } from './operations.js';

/**
 * What is done to an item:
 *  - shred: a regular file overwritten in place (random bytes, fsync), then unlinked
 *  - shred-tree: a directory whose regular files are shredded, then removed with it
 *  - unlink: a file or a link removed without overwriting (public keys, package caches,
 *    rotated logs, journal files); a link is removed itself, never what it points at
 *  - remove-tree: a directory removed with its contents, nothing overwritten (/tmp entries,
 *    package caches, old journal directories)
 *  - truncate: emptied in place, the inode with its mode and owner kept (logs, machine-id)
 *  - lock: an account's password field set to "!" (locked, hash removed)
 *  - zero-fill: the free space of a filesystem overwritten with zeros
 *  - delete-user: a build account removed with userdel --remove (home and mail spool too)
 *  - mark-first-boot: /etc/machine-id replaced by "uninitialized" (systemd's first-boot mode)
 *  - skip: left in place on purpose (a symlink, never followed); `why` says why
 */
export type SealAction = 'shred' | 'shred-tree' | 'unlink' | 'remove-tree' | 'truncate' | 'lock' | 'zero-fill' | 'delete-user' | 'mark-first-boot' | 'skip';

export interface SealItem {
  operation: SealOperation;
  /** In-tree absolute path ("/root/.aws"); for `lock`, /etc/shadow. */
  path: string;
  action: SealAction;
  /** Bytes it holds (files of a tree included), or for zero-fill the free space; 0 for lock and skip. */
  bytes: number;
  /** Which rule matched, in words ("AWS CLI credentials", "PEM private key (RSA PRIVATE KEY)"). Never a secret. */
  why: string;
  /** For `lock`: the account, and its line in /etc/shadow. */
  account?: string;
  line?: number;
}

/** Something the plan could not look at, or a limit it hit; `error` ones make seal exit 1. */
export interface SealNote {
  operation: SealOperation;
  severity: 'info' | 'warning' | 'error';
  message: string;
  path?: string;
}

export interface SealPlan {
  items: SealItem[];
  notes: SealNote[];
}

/** Items that change the tree (everything but skip). */
export function actionable(items: readonly SealItem[]): SealItem[] {
  return items.filter((i) => i.action !== 'skip');
}

export function itemKey(item: Pick<SealItem, 'path' | 'account'>): string {
  return item.account === undefined ? item.path : `${item.path}#${item.account}`;
}
