import type { AuditContext } from '../context.js';
import { ev, finding, G } from '../guidelines.js';
import type { Check, Finding, Severity } from '../types.js';
import { planSeal } from '../../seal/plan.js';
import type { SealItem } from '../../seal/item.js';
import { keyFileJudged, knownInstance } from './authorized-keys.js';

// Leftovers: what `imprint seal` would remove, found by seal's own read-only planner
// (seal/plan.ts), so that audit and seal never disagree about what a leftover is. What counts
// depends on where the audit runs:
//  - everywhere: credentials and stray private keys (high), users' private keys (high), shell
//    histories (medium);
//  - on an offline image only (a live instance legitimately has these): authorized_keys (unless
//    imprint's state knows the instance and ssh.extra-authorized-keys judges every line), host
//    keys imprint boot did not make for this tree, the build's logs, machine-id, instance state
//    and mail.
// Passwords and user crontabs are what accounts.* and cron.jobs report; they are not repeated.

const EVERYWHERE = ['ssh-user-keys', 'shell-history', 'credentials'];
const OFFLINE_ONLY = ['ssh-host-keys', 'logs', 'machine-id', 'state', 'mail-spool'];

function size(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} KiB`;
  return `${(bytes / 1024 / 1024).toFixed(1)} MiB`;
}

/** Whether imprint boot made the host keys for the machine this tree is (its state says so). */
async function hostKeysMadeHere(ctx: AuditContext): Promise<boolean> {
  const { state } = await ctx.state();
  if (!state?.completed['host-keys']) return false;
  const identity = await ctx.identity();
  return state.hint.source !== identity.source || state.hint.id === identity.id;
}


function judge(item: SealItem, live: boolean, keysChecked: boolean): { severity: Severity; what: string } | null {
  const name = item.path.split('/').pop() ?? '';
  if (item.action === 'skip') return { severity: 'info', what: `seal would leave it in place: ${item.why}` };
  switch (item.operation) {
    case 'credentials':
      return { severity: 'high', what: item.why };
    case 'ssh-user-keys':
      // Where imprint's state knows the instance, ssh.extra-authorized-keys judges every key instead.
      if (/^authorized_keys2?$/.test(name)) return live || keysChecked ? null : { severity: 'medium', what: `${item.why}: keys left in the image, not launch keys` };
      if (name.endsWith('.pub')) return live ? null : { severity: 'info', what: item.why };
      return { severity: 'high', what: item.why };
    case 'shell-history':
      return { severity: 'medium', what: `${item.why}: commands typed on the build machine, often with secrets in them` };
    case 'ssh-host-keys':
      return name.endsWith('.pub')
        ? { severity: 'info', what: `${item.why}: shipped in the image` }
        : { severity: 'medium', what: `${item.why}: shipped in the image, so every instance shares it unless its first boot replaces it` };
    case 'logs':
      return { severity: 'low', what: 'a log of the machine the image was built on: logs may hold sensitive data' };
    case 'machine-id':
      return { severity: 'low', what: 'the machine id of the machine the image was built on: every instance would share it' };
    case 'state':
      return { severity: 'low', what: item.why };
    case 'mail-spool':
      return { severity: 'low', what: item.why };
    default:
      return null;
  }
}

export const leftovers: Check = {
  id: 'leftovers',
  title: 'Leftovers that imprint seal would remove (credentials, private keys, histories...)',
  severity: 'high',
  guidelines: [G.credentials, G.egiCredentials, G.awsHistory, G.hostKeys],
  async run(ctx) {
    const operations = new Set(ctx.live ? EVERYWHERE : [...EVERYWHERE, ...OFFLINE_ONLY]);
    if (!ctx.live && (await hostKeysMadeHere(ctx))) operations.delete('ssh-host-keys');
    const known = await knownInstance(ctx);
    const out: Finding[] = [];
    for (const item of await planSeal(ctx.root, operations)) {
      const keysChecked = typeof known === 'string' && /\/authorized_keys2?$/.test(item.path) && (await keyFileJudged(ctx, item.path, known));
      const j = judge(item, ctx.live, keysChecked);
      if (!j) continue;
      out.push(finding(j.severity, `${item.path}: ${j.what}`, ev(item.path, item.line ?? null, `${item.why}; ${size(item.bytes)}; seal operation ${item.operation} would ${item.action}`),
        { operation: item.operation, action: item.action, bytes: item.bytes }));
    }
    return out;
  },
};

export const LEFTOVER_CHECKS = [leftovers];
