import path from 'node:path';
import { printSshdConfig, withValue, type SshdConfig } from '../parsers/sshd-config.js';
import { MAIN_CONFIG, type ConfigSet } from './config-set.js';

// Candidate files are checked by sshd before they replace anything. Each is shown to sshd under
// the oracle's stage directory (`<stage>/etc/ssh/...`), and so is every file on the Include
// chain that leads to it, whose Include lines are rewritten to name the staged copies (in the
// order sshd would read the originals). sshd is then pointed at the staged main config. This
// works at any Include depth, and its messages are mapped back to the real file names.

export interface Staged {
  /** The main config to give sshd (-f). */
  config: string;
  /** Staged path → content. */
  files: Map<string, string>;
  /** A message of sshd's with every staged name replaced by the real one. */
  unstage(message: string): string;
}

function quoteArg(p: string): string {
  return /[\s"'#\\]/.test(p) ? `"${p.replace(/(["\\])/g, '\\$1')}"` : p;
}

/** `set` must be loaded with `candidates` as overrides, so that it describes the candidate configuration. */
export function stageCandidates(set: ConfigSet, candidates: ReadonlyMap<string, string>, stageDir: string): Staged {
  const staged = new Set<string>([...candidates.keys()].filter((f) => set.files.has(f)));
  // Every file that includes a staged file is staged too, up to the main config.
  for (let grew = true; grew;) {
    grew = false;
    for (const site of set.includes) {
      if (!staged.has(site.file) && site.matches.some((m) => staged.has(m))) {
        staged.add(site.file);
        grew = true;
      }
    }
  }
  const at = (file: string): string => path.posix.join(stageDir, file);
  const files = new Map<string, string>();
  for (const file of staged) {
    const config = set.files.get(file) as SshdConfig;
    const lines = config.lines.map((line, i) => {
      const site = set.includes.find((s) => s.file === file && s.index === i);
      if (!site || !site.matches.some((m) => staged.has(m))) return line;
      return withValue(line, site.matches.map((m) => quoteArg(staged.has(m) ? at(m) : m)).join(' '));
    });
    files.set(at(file), printSshdConfig({ ...config, lines }));
  }
  const names = [...staged].sort((a, b) => b.length - a.length);
  return {
    config: staged.has(MAIN_CONFIG) ? at(MAIN_CONFIG) : MAIN_CONFIG,
    files,
    unstage: (message) => names.reduce((m, f) => m.split(at(f)).join(f), message),
  };
}
