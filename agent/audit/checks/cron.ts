import type { AuditContext } from '../context.js';
import { ev, finding, G } from '../guidelines.js';
import type { Check, Finding } from '../types.js';
import { parseAnacrontab, parseCrontab, type CronJob } from '../parsers/crontab.js';
import { remoteExecution, scanScript } from '../parsers/remote-exec.js';
import { parseUnitFile, unitValues } from '../parsers/unit-file.js';
import { templateOf, type EnabledUnit } from '../units.js';

// Cron and timers: system and user crontabs, /etc/cron.d, anacron, the run-parts directories,
// and enabled systemd timers with the command each one runs. "There is no finite way to define a
// script dangerous or not" (the Outscale guide): every job is listed for a person to read, and
// the ones that fetch and run remote code are findings of their own.

const PERIODIC = ['/etc/cron.hourly', '/etc/cron.daily', '/etc/cron.weekly', '/etc/cron.monthly', '/etc/cron.yearly'];

export interface CronSource {
  file: string;
  jobs: CronJob[];
  kind: 'system' | 'user' | 'anacron';
  /** Why cron will not read it, when it will not. */
  ignored: string | null;
}

/** cron(8) on Debian skips /etc/cron.d files whose names are not made of letters, digits, _ and -. */
function cronDIgnored(name: string): string | null {
  return /^[A-Za-z0-9_-]+$/.test(name) ? null : 'cron ignores this file: its name has characters other than letters, digits, "_" and "-"';
}

export async function cronSources(ctx: AuditContext): Promise<CronSource[]> {
  const out: CronSource[] = [];
  const read = async (file: string, kind: CronSource['kind'], user: string | null, ignored: string | null): Promise<void> => {
    const t = await ctx.text(file).catch(() => null);
    if (t === null) return;
    const jobs = kind === 'anacron' ? parseAnacrontab(t.text) : parseCrontab(t.text, kind === 'system', user);
    out.push({ file, jobs, kind, ignored });
  };
  await read('/etc/crontab', 'system', null, null);
  for (const name of await ctx.list('/etc/cron.d')) {
    if ((await ctx.stat(`/etc/cron.d/${name}`))?.isFile()) await read(`/etc/cron.d/${name}`, 'system', null, cronDIgnored(name));
  }
  await read('/etc/anacrontab', 'anacron', null, null);
  // Debian keeps user crontabs in /var/spool/cron/crontabs, Red Hat in /var/spool/cron.
  for (const dir of ['/var/spool/cron/crontabs', '/var/spool/cron']) {
    for (const name of await ctx.list(dir)) {
      if (name.startsWith('.') || name.startsWith('tmp.')) continue;
      if ((await ctx.stat(`${dir}/${name}`))?.isFile()) await read(`${dir}/${name}`, 'user', name, null);
    }
  }
  return out;
}

/** Scripts run-parts runs from /etc/cron.{hourly,...}: Debian's run-parts skips names with dots. */
async function periodicScripts(ctx: AuditContext): Promise<{ file: string; text: string; ignored: boolean }[]> {
  const out: { file: string; text: string; ignored: boolean }[] = [];
  for (const dir of PERIODIC) {
    for (const name of await ctx.list(dir)) {
      if (name === '.placeholder') continue;
      const file = `${dir}/${name}`;
      if (!(await ctx.stat(file))?.isFile()) continue;
      const t = await ctx.text(file).catch(() => null);
      out.push({ file, text: t?.text ?? '', ignored: !/^[A-Za-z0-9_-]+$/.test(name) });
    }
  }
  return out;
}

function enabledTimers(ctx: AuditContext): Promise<EnabledUnit[]> {
  return ctx.units().then((units) => units.filter((u) => u.name.endsWith('.timer')));
}

/** The service a timer starts (Unit=, else the timer's own name) and its ExecStart lines. */
async function timerTarget(ctx: AuditContext, timer: EnabledUnit): Promise<{ unit: string; file: string | null; exec: { value: string; line: number }[] }> {
  const unit = unitValues(timer.assignments, 'Timer', 'Unit')[0]?.value ?? timer.name.replace(/\.timer$/, '.service');
  for (const dir of ['/etc/systemd/system', '/run/systemd/system', '/usr/local/lib/systemd/system', '/usr/lib/systemd/system', '/lib/systemd/system']) {
    for (const candidate of [unit, templateOf(unit)]) {
      const t = await ctx.text(`${dir}/${candidate}`).catch(() => null);
      if (!t) continue;
      const exec = parseUnitFile(t.text).filter((a) => a.section === 'Service' && /^ExecStart(?:Pre|Post)?$/.test(a.key)).map((a) => ({ value: a.value, line: a.line }));
      return { unit, file: t.resolved, exec };
    }
  }
  return { unit, file: null, exec: [] };
}

export const cronJobs: Check = {
  id: 'cron.jobs',
  title: 'Cron jobs: system and user crontabs, cron.d, anacron, run-parts directories',
  severity: 'low',
  guidelines: [G.crons],
  async run(ctx) {
    const out: Finding[] = [];
    for (const src of await cronSources(ctx)) {
      for (const job of src.jobs) {
        const as = job.user ?? 'root';
        const ignored = src.ignored ? ` (${src.ignored})` : '';
        out.push(src.kind === 'user'
          ? finding('low', `${as}'s crontab runs a job (${job.schedule}); user crontabs in a shared image were left by whoever built it${ignored}`, ev(src.file, job.line, job.command), { user: as, schedule: job.schedule, kind: src.kind })
          : finding('info', `cron runs a job as ${as} (${job.schedule})${ignored}`, ev(src.file, job.line, job.command), { user: as, schedule: job.schedule, kind: src.kind }));
      }
    }
    for (const s of await periodicScripts(ctx)) {
      out.push(finding('info', `run-parts runs ${s.file} as root${s.ignored ? ' (skipped by Debian\'s run-parts: its name has a dot)' : ''}`, ev(s.file, null, (s.text.split('\n').find((l) => l.trim() !== '' && !l.startsWith('#')) ?? '').trim() || '(empty)'), { kind: 'run-parts' }));
    }
    return out;
  },
};

export const cronTimers: Check = {
  id: 'cron.timers',
  title: 'systemd timers enabled at boot',
  severity: 'info',
  guidelines: [G.crons],
  async run(ctx) {
    const out: Finding[] = [];
    for (const timer of await enabledTimers(ctx)) {
      const when = timer.assignments.filter((a) => a.section === 'Timer' && /^On[A-Za-z]+$/.test(a.key)).map((a) => `${a.key}=${a.value}`).join(' ');
      const target = await timerTarget(ctx, timer);
      out.push(finding('info', `timer ${timer.name} starts ${target.unit} (${when || 'no schedule found'})`,
        ev(timer.link, null, `→ ${timer.definition ?? 'no unit file found'}; ${target.exec.map((e) => e.value).join('; ') || 'no ExecStart found'}`),
        { timer: timer.name, unit: target.unit, schedule: when, local: timer.local }));
    }
    return out;
  },
};

export const cronRemoteExec: Check = {
  id: 'cron.remote-exec',
  title: 'Cron jobs and timers that download and run remote code, or open a shell to the network',
  severity: 'high',
  guidelines: [G.crons, G.commands],
  async run(ctx) {
    const out: Finding[] = [];
    for (const src of await cronSources(ctx)) {
      for (const job of src.jobs) {
        const m = remoteExecution(job.command);
        if (m) out.push(finding('high', `a cron job run as ${job.user ?? 'root'} ${m.reason} (${job.schedule})`, ev(src.file, job.line, job.command), { kind: m.kind, user: job.user }));
      }
    }
    for (const s of await periodicScripts(ctx)) {
      for (const m of scanScript(s.text)) out.push(finding('high', `a script run by cron as root ${m.reason}`, ev(s.file, m.line, m.text), { kind: m.kind }));
    }
    for (const timer of await enabledTimers(ctx)) {
      const target = await timerTarget(ctx, timer);
      for (const e of target.exec) {
        const m = remoteExecution(e.value.replace(/^[-@:+!]+/, ''));
        if (m) out.push(finding('high', `timer ${timer.name} starts ${target.unit}, which ${m.reason}`, ev(target.file ?? timer.link, e.line, `ExecStart=${e.value}`), { kind: m.kind, timer: timer.name }));
      }
    }
    return out;
  },
};

export const CRON_CHECKS = [cronJobs, cronTimers, cronRemoteExec];
