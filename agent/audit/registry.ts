import { ACCOUNT_CHECKS } from './checks/accounts.js';
import { AUTHORIZED_KEYS_CHECKS } from './checks/authorized-keys.js';
import { CRON_CHECKS } from './checks/cron.js';
import { FIREWALL_CHECKS } from './checks/firewall.js';
import { HOST_KEY_CHECKS } from './checks/host-keys.js';
import { LEFTOVER_CHECKS } from './checks/leftovers.js';
import { LOGGING_CHECKS } from './checks/logging.js';
import { SERVICE_CHECKS } from './checks/services.js';
import { SSHD_CHECKS } from './checks/sshd.js';
import { STARTUP_CHECKS } from './checks/startup.js';
import type { Check } from './types.js';

// Every check, in report order. Ids are stable: they are what --json consumers, JUnit reports
// and the documentation refer to.

export const CHECKS: readonly Check[] = [
  ...SSHD_CHECKS,
  ...AUTHORIZED_KEYS_CHECKS,
  ...ACCOUNT_CHECKS,
  ...SERVICE_CHECKS,
  ...CRON_CHECKS,
  ...STARTUP_CHECKS,
  ...LOGGING_CHECKS,
  ...HOST_KEY_CHECKS,
  ...LEFTOVER_CHECKS,
  ...FIREWALL_CHECKS,
];

export function checkById(id: string): Check | undefined {
  return CHECKS.find((c) => c.id === id);
}
