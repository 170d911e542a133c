import { timingSafeEqual } from 'node:crypto';
import { access, constants } from 'node:fs/promises';
import { ImprintError } from './errors.js';
import { run } from './exec.js';

// crypt(3) for `imprint audit`'s default-password check. Node has none, so a child process does
// the hashing: perl's crypt() is libc's (libxcrypt on Debian 12, so every scheme the system
// itself accepts: yescrypt, sha512, sha256, md5, bcrypt, des), and perl-base is Essential on
// Debian. openssl passwd is the fallback for $1$, $5$ and $6$. The stored hash and the
// candidates go through stdin, never argv (a command line is visible to every user in ps);
// results are compared here in constant time and never printed or returned.

const PERL = '/usr/bin/perl';
const OPENSSL = '/usr/bin/openssl';

// Reads the setting (the stored hash: crypt uses its scheme, cost and salt), then one candidate a
// line; prints crypt(candidate, setting) a line ("*" when the scheme is unsupported).
const PERL_SCRIPT = 'binmode STDIN; binmode STDOUT; my $s = <STDIN>; chomp $s; '
  + 'while (my $p = <STDIN>) { chomp $p; my $h = crypt($p, $s); print((defined $h ? $h : q{*}), "\\n"); }';

async function executable(file: string): Promise<boolean> {
  return access(file, constants.X_OK).then(() => true, () => false);
}

function same(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

export type CryptTool = 'perl' | 'openssl';

export interface CryptResult {
  /** Index of the first candidate whose hash equals the stored one; null when none does. */
  match: number | null;
  tool: CryptTool;
}

/** Why a hash cannot be tested here (unsupported scheme, no tool); null when it can. */
export async function cryptAvailable(hash: string): Promise<{ tool: CryptTool } | { problem: string }> {
  if (await executable(PERL)) return { tool: 'perl' };
  if (/^\$[156]\$/.test(hash) && (await executable(OPENSSL))) return { tool: 'openssl' };
  return { problem: `no tool here can compute this hash scheme (needs ${PERL}${/^\$[156]\$/.test(hash) ? ` or ${OPENSSL}` : ''})` };
}

/**
 * Whether any candidate password produces the stored hash, with the system's crypt. Candidates
 * must be single lines. The hash is handled as a secret: stdin only, never in an error message.
 */
export async function cryptMatch(hash: string, candidates: readonly string[]): Promise<CryptResult> {
  if (/[\n\r]/.test(hash)) throw new ImprintError('internal: a password hash with a line break');
  if (candidates.some((c) => /[\n\r]/.test(c))) throw new ImprintError('internal: a candidate password with a line break');
  const available = await cryptAvailable(hash);
  if ('problem' in available) throw new ImprintError(available.problem, 'command');
  let outputs: string[];
  if (available.tool === 'perl') {
    const result = await run(PERL, ['-e', PERL_SCRIPT], { input: `${hash}\n${candidates.map((c) => `${c}\n`).join('')}`, timeoutMs: 120_000 });
    outputs = result.stdout.split('\n');
  } else {
    // openssl takes the salt (not the hash) as an argument: "$6$rounds=N$salt$..." → "rounds=N$salt".
    const m = /^\$([156])\$((?:rounds=\d+\$)?[^$]*)\$/.exec(hash);
    if (!m) throw new ImprintError('unsupported hash layout for openssl passwd', 'command');
    const result = await run(OPENSSL, ['passwd', `-${m[1]}`, '-salt', m[2] as string, '-stdin'], { input: candidates.map((c) => `${c}\n`).join(''), timeoutMs: 120_000 });
    outputs = result.stdout.split('\n');
  }
  for (let i = 0; i < candidates.length; i += 1) {
    const out = outputs[i] ?? '';
    if (out !== '' && out !== '*' && same(out, hash)) return { match: i, tool: available.tool };
  }
  return { match: null, tool: available.tool };
}
