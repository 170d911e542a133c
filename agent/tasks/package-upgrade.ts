import type { Task } from '../boot/task.js';
import { ImprintError } from '../os/errors.js';
import { bootedWithSystemd, detectPackageManager, runBounded, upgradeCommands } from '../os/package-manager.js';

// Package upgrades at first boot (EGI: "enable package installation/upgrade"). Off by default:
// an upgrade changes what the image builder tested. In the background after sshd is up, with a
// time bound for the whole upgrade, its output in the log. Once per instance. On a system
// booted by systemd each command is a transient service of its own (imprint-package-upgrade-N),
// outside imprint.service's sandbox, which keeps /usr and /var read-only and the network shut.

const shown = (c: { program: string; args: string[] }): string => [c.program, ...c.args].join(' ');

export const packageUpgradeTask: Task = {
  name: 'package-upgrade',
  phase: 'late',
  after: ['grow-root'],
  background: true,

  disabledBecause: (cfg) => (cfg.packages.upgrade ? null : 'packages.upgrade is false'),

  async plan(ctx) {
    if (!ctx.root.isLive) return ['--root: packages are upgraded on the booted instance only; nothing would run'];
    const manager = await detectPackageManager(ctx.root);
    if (!manager) return ['no apt-get or dnf on this system: nothing would run'];
    return [`would run ${upgradeCommands(manager).map(shown).join(', then ')} in the background, for at most ${Math.round(ctx.config.packages.timeoutMs / 60_000)} min`];
  },

  async run(ctx, rec) {
    if (!ctx.root.isLive) {
      rec.action('--root: packages are upgraded on the booted instance only; not run');
      return 'skipped';
    }
    const manager = await detectPackageManager(ctx.root);
    if (!manager) {
      rec.action('no apt-get or dnf on this system: not run');
      return 'skipped';
    }
    const deadline = performance.now() + ctx.config.packages.timeoutMs;
    const transient = await bootedWithSystemd();
    for (const [i, command] of upgradeCommands(manager).entries()) {
      const left = deadline - performance.now();
      if (left < 1000) throw new ImprintError(`package upgrade out of time before ${shown(command)}`);
      const started = performance.now();
      const result = await runBounded(command, left, transient ? `imprint-package-upgrade-${i + 1}` : null);
      for (const line of result.tail) rec.verbose(line);
      if (result.timedOut) throw new ImprintError(`${shown(command)} stopped at the time limit (packages.timeout ${Math.round(ctx.config.packages.timeoutMs / 60_000)} min); retried at next boot`);
      if (result.code !== 0) throw new ImprintError(`${shown(command)} failed (exit ${result.code}): ${result.tail.at(-1) ?? ''}`);
      rec.action(`${shown(command)}: done in ${Math.round((performance.now() - started) / 1000)} s`);
    }
    return undefined;
  },
};
