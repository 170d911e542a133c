import path from 'node:path';
import type { HomeUser } from '../os/home-files.js';
import type { RootTree } from '../os/root.js';
import { sshdOracle } from '../os/sshd-oracle.js';
import { systemKeysFileProblem } from '../os/system-keys-file.js';
import { splitArgs } from '../parsers/sshd-config.js';
import { PLAIN_CONNECTION } from './contexts.js';

// Where sshd reads a user's keys: AuthorizedKeysFile as the image's sshd says it applies to that
// user (`sshd -T -C user=U`, so a Match block's value counts), tokens expanded as sshd does
// (%% %h %u %U), relative paths taken from the home directory. The launch key goes to the first
// file that can be written safely.

export interface KeysFileTarget {
  /** The in-tree path to write. */
  file: string;
  /** Relative to the home directory when the file is inside it (written with StrictModes rules), else null. */
  inHome: string | null;
  /** Every file sshd reads for the user, expanded, in order. */
  sshdReads: string[];
  /** AuthorizedKeysCommand when one is set: sshd asks it too. */
  command: string | null;
  /** Files skipped before the chosen one, with why. */
  skipped: string[];
  /** Set when sshd could not be asked and the default was assumed. */
  assumed: string | null;
}

export const DEFAULT_KEYS_FILE = '.ssh/authorized_keys';

/** A token-expanded AuthorizedKeysFile entry as an absolute in-tree path, or null for a token sshd would not expand here. */
export function expandKeysFile(pattern: string, user: HomeUser): string | null {
  let bad = false;
  const expanded = pattern.replace(/%(.?)/g, (_m, t: string) => {
    if (t === '%') return '%';
    if (t === 'h') return user.home;
    if (t === 'u') return user.name;
    if (t === 'U') return String(user.uid);
    bad = true;
    return '';
  });
  if (bad) return null;
  return path.posix.normalize(expanded.startsWith('/') ? expanded : path.posix.join(user.home, expanded));
}

function relToHome(file: string, home: string): string | null {
  const rel = path.posix.relative(home, file);
  return rel === '' || rel.startsWith('..') || path.posix.isAbsolute(rel) ? null : rel;
}

export async function keysFileTarget(root: RootTree, user: HomeUser): Promise<KeysFileTarget> {
  let value: string;
  let command: string | null = null;
  let assumed: string | null = null;
  try {
    const oracle = await sshdOracle(root);
    const answer = (await oracle.effective({ specs: [{ user: user.name, ...PLAIN_CONNECTION }], throwawayKey: true })).answers[0] as Map<string, string[]>;
    value = (answer.get('authorizedkeysfile') ?? []).join(' ');
    const cmd = answer.get('authorizedkeyscommand')?.[0];
    if (cmd !== undefined && cmd !== 'none') command = cmd;
  } catch (err) {
    value = `${DEFAULT_KEYS_FILE} .ssh/authorized_keys2`;
    assumed = `sshd could not be asked where it reads keys (${(err as Error).message}); assumed its default`;
  }
  const patterns = splitArgs(value).filter((p) => p.toLowerCase() !== 'none');
  const sshdReads = patterns.map((p) => expandKeysFile(p, user)).filter((f): f is string => f !== null);
  const skipped: string[] = [];
  for (const file of sshdReads) {
    const inHome = relToHome(file, user.home);
    if (inHome !== null) return { file, inHome, sshdReads, command, skipped, assumed };
    const problem = await systemKeysFileProblem(root, file, user.uid);
    if (problem === null) return { file, inHome: null, sshdReads, command, skipped, assumed };
    skipped.push(`${file}: ${problem}`);
  }
  return { file: '', inHome: null, sshdReads, command, skipped, assumed };
}
