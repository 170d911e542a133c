import type { AuditContext } from '../context.js';
import { ev, finding, G } from '../guidelines.js';
import type { Check, Finding } from '../types.js';
import { remoteExecution, scanScript } from '../parsers/remote-exec.js';

// Shell start-up files and boot scripts: what runs when someone logs in or the machine boots.
// Lines that download and run remote code, or hand a shell to the network, are findings with
// file:line (the Outscale guide: "Check that no unwanted commands are run", for each user).

const SYSTEM_FILES = ['/etc/profile', '/etc/bash.bashrc', '/etc/bashrc', '/etc/bash.bash_logout', '/etc/zsh/zshenv', '/etc/zsh/zprofile', '/etc/zsh/zshrc', '/etc/zsh/zlogin', '/etc/zshrc', '/etc/rc.local', '/etc/rc.d/rc.local'];
const SYSTEM_DIRS = ['/etc/profile.d'];
const HOME_FILES = ['.bashrc', '.bash_profile', '.bash_login', '.profile', '.bash_logout', '.zshenv', '.zprofile', '.zshrc', '.zlogin', '.config/fish/config.fish'];

/** Every start-up and boot script of the tree, as in-tree paths (only those that exist). */
export async function startupFiles(ctx: AuditContext): Promise<string[]> {
  const files: string[] = [];
  const add = async (f: string): Promise<void> => {
    if (!files.includes(f) && (await ctx.stat(f))?.isFile()) files.push(f);
  };
  for (const f of SYSTEM_FILES) await add(f);
  for (const dir of SYSTEM_DIRS) for (const name of await ctx.list(dir)) await add(`${dir}/${name}`);
  for (const { home } of await ctx.homes()) {
    for (const rel of HOME_FILES) await add(`${home === '/' ? '' : home}/${rel}`);
  }
  return files;
}

export const startupRemoteExec: Check = {
  id: 'startup.remote-exec',
  title: 'Shell start-up files and boot scripts that download and run remote code',
  severity: 'high',
  guidelines: [G.commands],
  async run(ctx) {
    const out: Finding[] = [];
    for (const file of await startupFiles(ctx)) {
      const t = await ctx.text(file).catch(() => null);
      if (t === null) continue;
      for (const m of scanScript(t.text)) {
        out.push(finding('high', `${file} ${m.reason}: it runs at every ${file.includes('rc.local') ? 'boot' : 'login'}`, ev(file, m.line, m.text), { kind: m.kind }));
      }
    }
    // Units that whoever built the image defined in /etc and enabled: boot scripts too.
    for (const u of await ctx.units()) {
      if (!u.local || u.name.endsWith('.timer')) continue;
      for (const a of u.assignments) {
        if (a.section !== 'Service' || !/^Exec(?:Start|StartPre|StartPost|Reload|Stop|StopPost)$/.test(a.key)) continue;
        const m = remoteExecution(a.value.replace(/^[-@:+!]+/, ''));
        if (m) out.push(finding('high', `${u.name}, enabled at boot, ${m.reason}`, ev(u.definition ?? u.link, a.line, `${a.key}=${a.value}`), { kind: m.kind, unit: u.name }));
      }
    }
    return out;
  },
};

export const startupLdPreload: Check = {
  id: 'startup.ld-preload',
  title: 'Libraries preloaded into every program (/etc/ld.so.preload)',
  severity: 'high',
  guidelines: [G.commands],
  async run(ctx) {
    const t = await ctx.text('/etc/ld.so.preload');
    if (t === null) return [];
    const out: Finding[] = [];
    t.text.split('\n').forEach((raw, i) => {
      const line = raw.replace(/#.*$/, '').trim();
      if (line === '') return;
      for (const lib of line.split(/[\s:]+/).filter((l) => l !== '')) {
        out.push(finding('high', `${lib} is loaded into every program that starts (a classic rootkit hook)`, ev('/etc/ld.so.preload', i + 1, lib), { library: lib }));
      }
    });
    return out;
  },
};

export const STARTUP_CHECKS = [startupRemoteExec, startupLdPreload];
