import type { AuditContext } from './context.js';
import { parseUnitFile, type UnitAssignment } from './parsers/unit-file.js';

// Units enabled at boot, as an offline tree shows them: the links that `systemctl enable`
// makes in /etc/systemd/system/<target>.wants/ (and .requires/), and in /etc/systemd/user/ for
// every user's session. Each is traced to the file that defines it.

export interface EnabledUnit {
  /** The link's name: "ssh.service", "getty@tty1.service". */
  name: string;
  scope: 'system' | 'user';
  /** The unit whose .wants/.requires directory holds the link ("multi-user.target"). */
  wantedBy: string;
  /** The link (an in-tree path). */
  link: string;
  /** The in-tree path of the file that defines the unit; null when none was found. */
  definition: string | null;
  /** Defined in /etc (by whoever built the image), not shipped by a package under /usr or /lib. */
  local: boolean;
  assignments: UnitAssignment[];
}

const SEARCH: Record<EnabledUnit['scope'], string[]> = {
  system: ['/etc/systemd/system', '/run/systemd/system', '/usr/local/lib/systemd/system', '/usr/lib/systemd/system', '/lib/systemd/system'],
  user: ['/etc/systemd/user', '/usr/local/lib/systemd/user', '/usr/lib/systemd/user', '/lib/systemd/user'],
};

/** "getty@tty1.service" → "getty@.service"; other names unchanged. */
export function templateOf(name: string): string {
  return name.replace(/@[^.]*\./, '@.');
}

async function definitionOf(ctx: AuditContext, scope: EnabledUnit['scope'], link: string, name: string): Promise<{ path: string; text: string } | null> {
  const direct = await ctx.text(link).catch(() => null);
  if (direct) return { path: direct.resolved, text: direct.text };
  for (const dir of SEARCH[scope]) {
    for (const candidate of [name, templateOf(name)]) {
      const t = await ctx.text(`${dir}/${candidate}`).catch(() => null);
      if (t) return { path: t.resolved, text: t.text };
    }
  }
  return null;
}

export async function enabledUnits(ctx: AuditContext): Promise<EnabledUnit[]> {
  const out: EnabledUnit[] = [];
  for (const scope of ['system', 'user'] as const) {
    const base = scope === 'system' ? '/etc/systemd/system' : '/etc/systemd/user';
    for (const entry of await ctx.list(base)) {
      const m = /^(.+)\.(wants|requires)$/.exec(entry);
      if (!m) continue;
      const dir = `${base}/${entry}`;
      if (!(await ctx.stat(dir))?.isDirectory()) continue;
      for (const name of await ctx.list(dir)) {
        const link = `${dir}/${name}`;
        const target = await ctx.readlink(link);
        if (target === '/dev/null') continue; // masked
        const def = await definitionOf(ctx, scope, link, name);
        const local = def !== null && def.path.startsWith('/etc/');
        out.push({
          name, scope, wantedBy: m[1] as string, link, definition: def?.path ?? null, local,
          assignments: def ? parseUnitFile(def.text) : [],
        });
      }
    }
  }
  return out;
}

/** Whether a unit (by name) is enabled under any target. */
export function isEnabled(units: readonly EnabledUnit[], name: string): boolean {
  return units.some((u) => u.scope === 'system' && u.name === name);
}

