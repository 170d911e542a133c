import { readFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { flagError } from '../cli/flag-error.js';
import { ConsoleBlockError, knownHostsLines, verifiedHostKeys } from '../known-hosts/console-blocks.js';

// `imprint known-hosts [FILE|-] --host NAME...`, on the user's side: the console output of a
// new instance (aws ec2 get-console-output, a serial log) → known_hosts lines for its host keys,
// each checked against the fingerprint block, so the first SSH connection needs no trust.

export const KNOWN_HOSTS_HELP = `Usage: imprint known-hosts [FILE|-] --host NAME [--host NAME]...

Read a console log (FILE, or stdin for - or no FILE), take the last boot's
"SSH HOST KEY KEYS" block, check every key against the "SSH HOST KEY
FINGERPRINTS" block, and print known_hosts lines for the hosts named:

  aws ec2 get-console-output --instance-id i-0abc --output text \\
    | imprint known-hosts --host 203.0.113.7 >> ~/.ssh/known_hosts

Lines may carry a prefix (a cloud's "ec2: ", journald's). A key the
fingerprints do not list, or a listed fingerprint without its key, refuses all.

Options:
  --host NAME   A name or address the instance is reached by (repeatable);
                NAME:PORT or [NAME]:PORT for a port other than 22.
  -h, --help    Print this help.

Exit status: 0 lines printed, 1 no verified keys (nothing printed), 2 usage.
`;

export async function knownHostsCommand(argv: string[]): Promise<number> {
  const options = { host: { type: 'string', multiple: true }, help: { type: 'boolean', short: 'h' } } as const;
  let parsed;
  try {
    parsed = parseArgs({ args: argv, options, allowPositionals: true, strict: true });
  } catch (err) {
    process.stderr.write(`imprint: known-hosts: ${flagError(err, Object.keys(options))}\n`);
    return 2;
  }
  if (parsed.values.help) {
    process.stdout.write(KNOWN_HOSTS_HELP);
    return 0;
  }
  const hosts = parsed.values.host ?? [];
  const bad = hosts.find((h) => !/^[A-Za-z0-9.:[\]_-]+$/.test(h));
  if (hosts.length === 0 || bad !== undefined || parsed.positionals.length > 1) {
    process.stderr.write(`imprint: known-hosts: ${bad !== undefined ? `"${bad}" is not a host name or address` : parsed.positionals.length > 1 ? 'one console log at a time' : 'name the instance with --host NAME'} (see imprint known-hosts --help)\n`);
    return 2;
  }
  const source = parsed.positionals[0] ?? '-';
  let text: string;
  try {
    text = await readFile(source === '-' ? '/dev/stdin' : source, 'utf8');
  } catch (err) {
    process.stderr.write(`imprint: known-hosts: ${source}: cannot read it: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}\n`);
    return 1;
  }
  try {
    const { keys, fingerprints } = verifiedHostKeys(text);
    for (const line of fingerprints) process.stderr.write(`imprint: known-hosts: verified ${line}\n`);
    process.stdout.write(`${knownHostsLines(hosts, keys).join('\n')}\n`);
    return 0;
  } catch (err) {
    if (!(err instanceof ConsoleBlockError)) throw err;
    process.stderr.write(`imprint: known-hosts: ${err.message}\n`);
    return 1;
  }
}
