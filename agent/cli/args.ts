import { parseArgs } from 'node:util';
import { flagError } from './flag-error.js';
import { didYouMean, metadataUrlProblem, parseDuration } from '../config.js';
import { ImprintError } from '../os/errors.js';
import { isPlatformName, PLATFORM_NAMES, type PlatformName } from '../metadata/platforms/names.js';

export const COMMANDS = ['boot', 'verify-product', 'demo', 'status', 'config', 'clean', 'version', 'help'] as const;
/** Commands that parse their own arguments (dispatched before parseCli). */
export const OWN_ARGUMENT_COMMANDS = ['emulate', 'seal', 'audit', 'known-hosts'] as const;
export type Command = (typeof COMMANDS)[number];

export interface CliArgs {
  command: Command;
  root: string;
  config?: string;
  dryRun: boolean;
  json: boolean;
  verbose: boolean;
  instanceId?: string;
  metadataUrl?: string;
  metadataDeadlineMs?: number;
  /** --platform: skip detection. */
  platform?: PlatformName;
  /** --wireserver-url: Azure's wireserver (tests point it at the emulator). */
  wireserverUrl?: string;
  keep: boolean;
  /** (status) Block until the boot has finished. */
  wait: boolean;
  /** (status) Every task with its outcome, time and actions. */
  long: boolean;
  /** (config) check or show. */
  action?: 'check' | 'show';
  /** (help) The command whose page to print ("imprint status --help"). */
  topic?: string;
}

const OPTIONS = {
  root: { type: 'string' },
  config: { type: 'string' },
  'dry-run': { type: 'boolean' },
  json: { type: 'boolean' },
  verbose: { type: 'boolean' },
  'instance-id': { type: 'string' },
  'metadata-url': { type: 'string' },
  'metadata-deadline': { type: 'string' },
  platform: { type: 'string' },
  'wireserver-url': { type: 'string' },
  keep: { type: 'boolean' },
  wait: { type: 'boolean' },
  long: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
  version: { type: 'boolean' },
} as const;

export function parseCli(argv: string[]): CliArgs {
  let parsed;
  try {
    parsed = parseArgs({ args: argv, options: OPTIONS, allowPositionals: true, strict: true });
  } catch (err) {
    throw new ImprintError(flagError(err, Object.keys(OPTIONS)), 'usage');
  }
  const { values, positionals } = parsed;
  let command: Command = values.help ? 'help' : values.version ? 'version' : 'help';
  const topic = values.help && (COMMANDS as readonly string[]).includes(positionals[0] ?? '') ? positionals[0] : undefined;
  if (topic !== undefined && topic !== 'help' && topic !== 'version') return { ...parseCli([]), topic };
  if (positionals.length > 0 && !values.help) {
    const word = positionals[0] as string;
    if (!(COMMANDS as readonly string[]).includes(word)) throw new ImprintError(`unknown command "${word}"${didYouMean(word, [...COMMANDS, ...OWN_ARGUMENT_COMMANDS])}`, 'usage');
    command = word as Command;
  }
  const action = command === 'config' ? (positionals[1] as 'check' | 'show' | undefined) : undefined;
  if (command === 'config' && action !== 'check' && action !== 'show') {
    throw new ImprintError(action === undefined ? 'config needs check or show ("imprint config check")' : `unknown config action "${action}"${didYouMean(action, ['check', 'show'])}: check or show`, 'usage');
  }
  if (positionals.length > (action === undefined ? 1 : 2)) throw new ImprintError(`unexpected argument "${positionals[action === undefined ? 1 : 2]}"`, 'usage');
  if (values['instance-id'] !== undefined && !/^[A-Za-z0-9._-]{1,128}$/.test(values['instance-id'])) {
    throw new ImprintError('--instance-id takes letters, digits, ".", "_" and "-" (at most 128)', 'usage');
  }
  const url = values['metadata-url'];
  const urlProblem = url === undefined ? null : metadataUrlProblem(url);
  if (urlProblem) throw new ImprintError(`--metadata-url ${urlProblem}`, 'usage');
  const deadline = values['metadata-deadline'] === undefined ? undefined : parseDuration(values['metadata-deadline']);
  if (deadline === null || (deadline !== undefined && (deadline < 1 || deadline > 3_600_000))) {
    throw new ImprintError('--metadata-deadline takes a duration such as 120s, 500ms or 2m (at most 1h)', 'usage');
  }
  const platform = values.platform;
  if (platform !== undefined && !isPlatformName(platform)) {
    throw new ImprintError(`--platform takes one of ${PLATFORM_NAMES.join(', ')}, not "${platform}"${didYouMean(platform, PLATFORM_NAMES)}`, 'usage');
  }
  const wireserver = values['wireserver-url'];
  const wireProblem = wireserver === undefined ? null : metadataUrlProblem(wireserver);
  if (wireProblem) throw new ImprintError(`--wireserver-url ${wireProblem}`, 'usage');
  return {
    command,
    ...(platform === undefined ? {} : { platform }),
    ...(wireserver === undefined ? {} : { wireserverUrl: wireserver.replace(/\/$/, '') }),
    ...(url === undefined ? {} : { metadataUrl: url.replace(/\/$/, '') }),
    ...(deadline === undefined ? {} : { metadataDeadlineMs: deadline }),
    root: values.root ?? '/',
    ...(values.config === undefined ? {} : { config: values.config }),
    dryRun: values['dry-run'] ?? false,
    json: values.json ?? false,
    verbose: values.verbose ?? false,
    ...(values['instance-id'] === undefined ? {} : { instanceId: values['instance-id'] }),
    keep: values.keep ?? false,
    wait: values.wait ?? false,
    long: values.long ?? false,
    ...(action === undefined ? {} : { action }),
  };
}
