import type { Task, TaskContext } from '../boot/task.js';
import type { TaskRecorder } from '../boot/report.js';
import { STATE_DIR } from '../boot/state.js';
import { ImprintError } from '../os/errors.js';
import { ensureTreeDir, readTreeText, writeTreeFileAtomic } from '../os/files.js';
import { setRunningHostname } from '../os/hostname.js';

// The host name the platform gives the instance, where the image has none of its own choosing:
// /etc/hostname absent, empty, a placeholder (localhost), or the name imprint itself wrote for
// an earlier instance (remembered beside the state). /etc/hosts gets the matching 127.0.1.1
// line, so sudo and anything else that resolves the own name does not stall or complain.

export const HOSTNAME_MARK = `${STATE_DIR}/hostname`;
const PLACEHOLDERS = new Set(['', 'localhost', 'localhost.localdomain', '(none)']);
const LABEL = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;

/** The platform's name as FQDN and short name, or a reason it is not usable. */
export function checkedHostname(text: string): { fqdn: string; short: string } | string {
  const fqdn = text.trim().toLowerCase().replace(/\.$/, '');
  if (fqdn.length > 253) return 'longer than 253 characters';
  const labels = fqdn.split('.');
  if (!labels.every((l) => LABEL.test(l))) return `${JSON.stringify(fqdn.slice(0, 80))} is not a host name (letters, digits and -, dot-separated labels)`;
  return { fqdn, short: labels[0] as string };
}

/** /etc/hosts with the 127.0.1.1 line for this name (replacing an earlier 127.0.1.1 line); other lines untouched. */
export function hostsWith(hosts: string, name: { fqdn: string; short: string }): string {
  const line = name.fqdn === name.short ? `127.0.1.1\t${name.short}` : `127.0.1.1\t${name.fqdn} ${name.short}`;
  const lines = hosts === '' ? [] : hosts.replace(/\n$/, '').split('\n');
  const at = lines.findIndex((l) => /^127\.0\.1\.1\s/.test(l));
  if (at >= 0) lines[at] = line;
  else {
    const local = lines.findIndex((l) => /^127\.0\.0\.1\s/.test(l));
    lines.splice(local >= 0 ? local + 1 : lines.length, 0, line);
  }
  return `${lines.join('\n')}\n`;
}

interface Decision { name: { fqdn: string; short: string }; hosts: string; current: string }

async function decide(ctx: TaskContext): Promise<Decision | string> {
  const given = ctx.facts.metadata?.hostname;
  if (given === undefined) return 'the platform gives no host name';
  const name = checkedHostname(given);
  if (typeof name === 'string') throw new ImprintError(`the platform's host name: ${name}`);
  const current = (await readTreeText(ctx.root, '/etc/hostname'))?.trim() ?? '';
  const ours = (await readTreeText(ctx.root, HOSTNAME_MARK))?.trim();
  if (!PLACEHOLDERS.has(current) && current !== ours) return `the image chose its own host name (${current}); left as it is`;
  const hosts = hostsWith((await readTreeText(ctx.root, '/etc/hosts')) ?? '127.0.0.1\tlocalhost\n', name);
  return { name, hosts, current };
}

export const hostnameTask: Task = {
  name: 'hostname',
  phase: 'network',
  ifMetadata: true,
  after: [],

  disabledBecause: (config) => (config.metadata.hostname ? null : 'metadata.hostname is false'),

  async plan(ctx) {
    const d = await decide(ctx);
    return [typeof d === 'string' ? d : `would set the host name to ${d.name.short} (${d.name.fqdn}) in /etc/hostname and /etc/hosts`];
  },

  async run(ctx: TaskContext, rec: TaskRecorder) {
    const d = await decide(ctx);
    if (typeof d === 'string') {
      rec.action(d);
      return 'skipped';
    }
    await ensureTreeDir(ctx.root, STATE_DIR, 0o700);
    // The mark first: killed between the writes, the next run still knows the name is imprint's.
    await writeTreeFileAtomic(ctx.root, HOSTNAME_MARK, `${d.name.short}\n`, { mode: 0o600, uid: 0, gid: 0 });
    await writeTreeFileAtomic(ctx.root, '/etc/hostname', `${d.name.short}\n`, { mode: 0o644, uid: 0, gid: 0 });
    await writeTreeFileAtomic(ctx.root, '/etc/hosts', d.hosts, { mode: 0o644, uid: 0, gid: 0 });
    rec.action(`host name ${d.name.short} (${d.name.fqdn})${d.current ? `, was ${d.current}` : ''}: /etc/hostname and /etc/hosts`);
    rec.detail('hostname', d.name);
    if (ctx.root.isLive) {
      const problem = await setRunningHostname(d.name.short);
      if (problem) rec.warn(`the running host name is unchanged until the next boot: ${problem}`);
    }
    return undefined;
  },
};
