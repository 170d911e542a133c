import { defaultUserTask } from '../tasks/default-user.js';
import { hostKeysLateTask, hostKeysTask } from '../tasks/host-keys.js';
import { passwordsTask } from '../tasks/passwords.js';
import { sshdConfigTask } from '../tasks/sshd-config.js';
import { authorizedKeysTask } from '../tasks/authorized-keys.js';
import { productCodesTask } from '../tasks/product-codes.js';
import { platformUsersTask } from '../tasks/platform-users.js';
import { reportReadyTask } from '../tasks/report-ready.js';
import { hostnameTask } from '../tasks/hostname.js';
import { growRootTask } from '../tasks/grow-root.js';
import { clearSwapTask } from '../tasks/clear-swap.js';
import { ephemeralDiskTask } from '../tasks/ephemeral-disk.js';
import { packageUpgradeTask } from '../tasks/package-upgrade.js';
import type { Task } from './task.js';

/**
 * The local phase, in dependency order: host keys first (sshd cannot check a config without
 * them), then sshd (its effective UsePAM decides how passwords may be locked), the default
 * user, then passwords (which locks the default user too).
 */
export const LOCAL_TASKS: readonly Task[] = [hostKeysTask, sshdConfigTask, defaultUserTask, passwordsTask, hostKeysLateTask];

/** The network phase: everything that needs what the metadata source said. */
export const NETWORK_TASKS: readonly Task[] = [platformUsersTask, authorizedKeysTask, productCodesTask, hostnameTask, reportReadyTask];

/** After the network phase, off sshd's path: disk and package work that needs no metadata. */
export const LATE_TASKS: readonly Task[] = [growRootTask, clearSwapTask, ephemeralDiskTask, packageUpgradeTask];
