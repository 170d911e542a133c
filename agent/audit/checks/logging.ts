import type { AuditContext } from '../context.js';
import { ev, finding, G } from '../guidelines.js';
import type { Check, Finding } from '../types.js';
import { journalUploadUrl, rsyslogForwarding, syslogNgForwarding, type Forwarding } from '../parsers/logging.js';
import { isLoopback } from '../parsers/proc-net.js';
import { isEnabled } from '../units.js';

// Logging that leaves the machine: rsyslog and syslog-ng forwarding, systemd-journal-upload.
// A forwarding rule planted in an image sends every instance's logs (auth included) to a host
// chosen by whoever built it.

async function confFiles(ctx: AuditContext, main: string, dir: string, suffix: RegExp): Promise<string[]> {
  const files = [main];
  for (const name of await ctx.list(dir)) if (suffix.test(name)) files.push(`${dir}/${name}`);
  return files;
}

function localTarget(f: Forwarding): boolean {
  return isLoopback(f.target) || f.target === 'localhost' || f.target === 'localhost.localdomain';
}

export const loggingRemoteForwarding: Check = {
  id: 'logging.remote-forwarding',
  title: 'Logs forwarded to a remote host (rsyslog, syslog-ng, journal upload)',
  severity: 'medium',
  guidelines: [G.logging],
  async run(ctx) {
    const out: Finding[] = [];
    const report = (file: string, f: Forwarding, what: string, extra = ''): void => {
      const dest = `${f.target}${f.port !== null ? `:${f.port}` : ''} over ${f.protocol}`;
      out.push(localTarget(f)
        ? finding('info', `${what} forwards logs to ${dest}: this machine itself`, ev(file, f.line, f.text), { target: f.target, port: f.port, protocol: f.protocol })
        : finding('medium', `${what} sends logs to ${dest}${extra}`, ev(file, f.line, f.text), { target: f.target, port: f.port, protocol: f.protocol }));
    };
    for (const file of await confFiles(ctx, '/etc/rsyslog.conf', '/etc/rsyslog.d', /\.conf$/)) {
      const t = await ctx.text(file).catch(() => null);
      if (t) for (const f of rsyslogForwarding(t.text)) report(file, f, 'rsyslog');
    }
    for (const file of await confFiles(ctx, '/etc/syslog-ng/syslog-ng.conf', '/etc/syslog-ng/conf.d', /\.conf$/)) {
      const t = await ctx.text(file).catch(() => null);
      if (t) for (const f of syslogNgForwarding(t.text)) report(file, f, 'syslog-ng');
    }
    const uploadEnabled = isEnabled(await ctx.units(), 'systemd-journal-upload.service');
    let upload: { file: string; f: Forwarding } | null = null;
    for (const file of await confFiles(ctx, '/etc/systemd/journal-upload.conf', '/etc/systemd/journal-upload.conf.d', /\.conf$/)) {
      const t = await ctx.text(file).catch(() => null);
      const f = t ? journalUploadUrl(t.text) : null;
      if (f) upload = { file, f }; // later drop-ins override earlier ones
    }
    if (upload) {
      report(upload.file, upload.f, 'systemd-journal-upload', uploadEnabled ? ' (systemd-journal-upload.service is enabled at boot)' : ' once systemd-journal-upload.service runs (not enabled at boot)');
    }
    return out;
  },
};

export const LOGGING_CHECKS = [loggingRemoteForwarding];
