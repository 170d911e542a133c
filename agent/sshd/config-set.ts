import path from 'node:path';
import { ImprintError } from '../os/errors.js';
import { listTreeDir, readTreeText } from '../os/files.js';
import type { RootTree } from '../os/root.js';
import { parseSshdConfig, splitArgs, type SshdConfig, type SshdLine } from '../parsers/sshd-config.js';

// The files sshd reads, in the order it reads them: the main sshd_config with every Include
// expanded in place (sorted glob matches, as sshd's glob(3) does). sshd keeps the first value
// it reads for most keywords, so this order decides which line is in effect.

export const MAIN_CONFIG = '/etc/ssh/sshd_config';
const MAX_DEPTH = 16;

export interface ReadLine {
  file: string;
  index: number;
  line: SshdLine;
  /** Applies to every connection: not inside a Match block, nor included from one. */
  global: boolean;
}

export interface IncludeSite {
  file: string;
  index: number;
  /** Absolute in-tree glob patterns. */
  patterns: string[];
  global: boolean;
  /** What the patterns matched, in read order. */
  matches: string[];
}

export interface ConfigSet {
  files: Map<string, SshdConfig>;
  order: ReadLine[];
  includes: IncludeSite[];
}

const GLOB_CHARS = /[*?[]/;

function globToRegExp(glob: string): RegExp {
  let re = '';
  for (let i = 0; i < glob.length; i += 1) {
    const c = glob[i] as string;
    if (c === '*') re += '[^/]*';
    else if (c === '?') re += '[^/]';
    else if (c === '[') {
      const end = glob.indexOf(']', i + 2);
      if (end === -1) re += '\\[';
      else {
        const body = glob.slice(i + 1, end).replace(/^!/, '^').replace(/\\/g, '\\\\');
        re += `[${body}]`;
        i = end;
      }
    } else re += c.replace(/[.+^${}()|\\]/g, '\\$&');
  }
  return new RegExp(`^${re}$`);
}

function byteOrder(a: string, b: string): number {
  const [x, y] = [Buffer.from(a), Buffer.from(b)];
  return x < y ? -1 : x > y ? 1 : 0;
}

/**
 * Expands one Include pattern inside the tree as glob(3) does for sshd: a wildcard may stand in
 * any component (sshd_config.d/*\/extra.conf), a leading dot is matched only by a dot, and the
 * whole list is sorted in byte order. Extra (not yet written) files take part. A pattern
 * without wildcards names its file whether or not it exists (sshd skips a missing one).
 */
export async function expandIncludePattern(root: RootTree, pattern: string, extraFiles: Iterable<string>): Promise<string[]> {
  const abs = pattern.startsWith('/') ? pattern : `/etc/ssh/${pattern}`;
  if (!GLOB_CHARS.test(abs)) return [abs];
  const parts = abs.split('/').filter(Boolean);
  const extras = [...extraFiles];
  let current = ['/'];
  for (const [i, part] of parts.entries()) {
    const next: string[] = [];
    for (const dir of current) {
      if (!GLOB_CHARS.test(part)) {
        next.push(path.posix.join(dir, part));
        continue;
      }
      const re = globToRegExp(part);
      const names = new Set((await listTreeDir(root, dir)).filter((n) => re.test(n) && (part.startsWith('.') || !n.startsWith('.'))));
      if (i === parts.length - 1) {
        for (const extra of extras) {
          const name = path.posix.basename(extra);
          if (path.posix.dirname(extra) === dir && re.test(name) && !name.startsWith('.')) names.add(name);
        }
      }
      for (const n of names) next.push(path.posix.join(dir, n));
    }
    current = next;
  }
  // Intermediate literal components may not exist; listTreeDir gives nothing for those.
  return current.sort(byteOrder);
}

/**
 * Reads the configuration sshd would read. `overrides` replaces file contents (candidates not
 * yet written, or new files); a file that neither exists nor is overridden is skipped, as sshd
 * skips an Include glob that matches nothing.
 */
export async function loadConfigSet(root: RootTree, overrides: ReadonlyMap<string, string> = new Map()): Promise<ConfigSet> {
  const set: ConfigSet = { files: new Map(), order: [], includes: [] };

  const visit = async (file: string, global: boolean, depth: number): Promise<void> => {
    if (depth > MAX_DEPTH) throw new ImprintError(`${file}: Include nested more than ${MAX_DEPTH} deep`);
    let config = set.files.get(file);
    if (!config) {
      const text = overrides.get(file) ?? (await readTreeText(root, file));
      if (text === null) return;
      config = parseSshdConfig(text, file);
      set.files.set(file, config);
    }
    for (const [index, line] of config.lines.entries()) {
      const lineGlobal = global && !line.inMatch;
      set.order.push({ file, index, line, global: lineGlobal });
      if (line.kind !== 'directive' || line.key !== 'include') continue;
      const patterns = splitArgs(line.value).map((p) => (p.startsWith('/') ? p : `/etc/ssh/${p}`));
      const site: IncludeSite = { file, index, patterns, global: lineGlobal, matches: [] };
      set.includes.push(site);
      for (const pattern of patterns) {
        for (const match of await expandIncludePattern(root, pattern, overrides.keys())) {
          site.matches.push(match);
          await visit(match, lineGlobal, depth + 1);
        }
      }
    }
  };

  await visit(MAIN_CONFIG, true, 0);
  if (!set.files.has(MAIN_CONFIG)) throw new ImprintError(`${MAIN_CONFIG} does not exist`);
  return set;
}

/** The first global line for a keyword: the one sshd keeps. */
export function firstGlobal(set: ConfigSet, key: string): ReadLine | undefined {
  return set.order.find((r) => r.global && r.line.kind === 'directive' && r.line.key === key);
}
