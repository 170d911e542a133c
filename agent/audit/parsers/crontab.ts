// crontab(5) lines: "m h dom mon dow [user] command" (the user field only in /etc/crontab and
// /etc/cron.d), "@reboot [user] command" and the other @ schedules; NAME=value lines set the
// environment; anacrontab(5) lines are "period delay job-id command".

export interface CronJob {
  line: number;
  /** "*\/5 * * * *", "@reboot", or an anacron period ("1", "@monthly"). */
  schedule: string;
  /** The user it runs as: from the line (system crontabs), the file's owner (spool), or null. */
  user: string | null;
  command: string;
}

const SPECIAL = /^@(reboot|yearly|annually|monthly|weekly|daily|midnight|hourly)$/;
const FIELD = /^[0-9*,\-/A-Za-z?LW#]+$/;

export function parseCrontab(text: string, withUserField: boolean, fileUser: string | null = null): CronJob[] {
  const jobs: CronJob[] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i += 1) {
    const raw = (lines[i] as string).replace(/\r$/, '');
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    if (/^[A-Za-z_][A-Za-z0-9_]*\s*=/.test(line)) continue; // environment
    const words = line.split(/\s+/);
    let schedule: string;
    let rest: string[];
    if (SPECIAL.test(words[0] as string)) {
      schedule = words[0] as string;
      rest = words.slice(1);
    } else {
      if (words.length < 6 || !words.slice(0, 5).every((w) => FIELD.test(w))) continue; // not a job line cron would run
      schedule = words.slice(0, 5).join(' ');
      rest = words.slice(5);
    }
    let user = fileUser;
    if (withUserField) {
      user = rest[0] ?? null;
      rest = rest.slice(1);
    }
    if (rest.length === 0) continue;
    // The command as written: everything after the fields, original spacing kept.
    const command = line.slice(line.indexOf(rest[0] as string, line.indexOf(schedule) + schedule.length + (withUserField ? (user?.length ?? 0) : 0))).trim();
    jobs.push({ line: i + 1, schedule, user, command });
  }
  return jobs;
}

export function parseAnacrontab(text: string): CronJob[] {
  const jobs: CronJob[] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i += 1) {
    const line = (lines[i] as string).trim();
    if (line === '' || line.startsWith('#') || /^[A-Za-z_][A-Za-z0-9_]*\s*=/.test(line)) continue;
    const m = /^(\d+|@\w+)\s+(\d+)\s+(\S+)\s+(.+)$/.exec(line);
    if (m) jobs.push({ line: i + 1, schedule: m[1] as string, user: 'root', command: (m[4] as string).trim() });
  }
  return jobs;
}
