import { errorMessage } from './errors.js';
import { run } from './exec.js';

/**
 * The running system's host name, through systemd-hostnamed (imprint.service has
 * ProtectHostname=, so it cannot call sethostname itself). Returns a problem, or null.
 */
export async function setRunningHostname(name: string): Promise<string | null> {
  try {
    await run('hostnamectl', ['--transient', 'set-hostname', name], { timeoutMs: 10_000 });
    return null;
  } catch (err) {
    return errorMessage(err);
  }
}
