import { readFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { flagError } from '../cli/flag-error.js';
import { ConfigError } from '../config.js';
import { parseEmulatorFile, type EmulatorFile } from '../metadata/emulator/config-file.js';
import { behaviour, scenarioHelp } from '../metadata/emulator/scenarios.js';
import { parseScenario, ScenarioError, scenarioLabel, startEmulator, type EmulatorOptions, type Scenario } from '../metadata/emulator.js';
import { ImprintError, errorMessage } from '../os/errors.js';
import { EMULATED_PLATFORMS, isEmulatedPlatform, startPlatformEmulator } from '../metadata/emulator/platforms.js';

// `imprint emulate`: flags and YAML → startEmulator, then serve until SIGINT/SIGTERM.

export const EMULATE_HELP = `Usage: imprint emulate [options]

A local EC2-compatible instance metadata service (IMDSv1 and IMDSv2) for testing images
and imprint itself, with fault scenarios. It serves:
  PUT /latest/api/token                         an IMDSv2 token (TTL header 1..21600)
  /latest/meta-data/                            listing; instance-id, ami-id, instance-type,
                                                hostname, local-ipv4, placement/...
  /latest/meta-data/public-keys/                N=name lines; N/openssh-key is the key
  /latest/meta-data/product-codes               one code a line (404 when there are none)
  /latest/dynamic/instance-identity/document    the identity document (JSON)
  /latest/dynamic/instance-identity/rsa2048     its PKCS#7 signature (with --identity-key)
  /latest/dynamic/instance-identity/pkcs7       the same signature
Every request is logged on stdout: "emulate: METHOD PATH STATUS N bytes MS ms token=yes|no";
token values are never printed.

Options:
  --listen HOST:PORT       Address to listen on (default 127.0.0.1:1338; port 0 picks a free
                           port; IPv6 as [::1]:1338). The first line printed is the address.
  --config FILE            YAML with the instance's data (below); flags override it.
  --instance-id ID         Default: i- and 17 random hex digits.
  --key KEY                A public key line "type base64 comment", repeatable; its key pair
                           name is the comment, else key-N. Replaces the keys of --config.
  --product-code CODE      Repeatable; replaces product_codes of --config.
  --region REGION          Identity document fields (default us-east-1, 123456789012,
  --account-id ID            a random ami-..., t3.micro).
  --image-id AMI
  --instance-type TYPE
  --identity-key KEY.pem   Sign the identity document with this key and certificate
  --identity-cert CERT.pem   (both needed; without them rsa2048 and pkcs7 answer 404).
  --identity-embed-cert    Put the signer certificate into the PKCS#7 (AWS does not).
  --scenario NAME[=ARG]    A fault scenario, repeatable (see below).
  --platform NAME          Speak another cloud's dialect instead of EC2's: ${EMULATED_PLATFORMS.join(', ')}.
                           Requests without the header that cloud requires are refused; for
                           azure the same address is also the wireserver and prints each ready
                           report it receives. The token scenarios apply to EC2 only.
  --user NAME              (--platform) The login the keys are for: GCE's key user, Azure's
                           adminUsername, Akamai's user (default cloud-user).
  --hostname NAME          (--platform) The host name served.
  --user-key USER=KEY      (--platform gce, akamai) A key for another login than --user,
                           repeatable: GCE serves it as "USER:KEY".
  -h, --help               Print this help.

Scenarios:
${scenarioHelp('  ', 92).join('\n')}

Config file (every key optional; unknown keys are errors):
  instance_id: i-0123456789abcdef0
  keys:                    # strings, or {name, key} mappings
    - ssh-ed25519 AAAAC3Nza... alice
    - { name: deploy, key: "ssh-ed25519 AAAAC3Nza... ci" }
  product_codes: [abcdefghijklmnopqrstuvwxy]
  identity: { region, availability_zone, account_id, image_id, instance_type,
              architecture, private_ip, pending_time,
              marketplace_product_codes: [...], billing_products: [...] }

Exit status: 0 stopped by SIGINT/SIGTERM, 1 could not start, 2 usage or config error.
`;

const OPTIONS = {
  listen: { type: 'string' },
  config: { type: 'string' },
  'instance-id': { type: 'string' },
  key: { type: 'string', multiple: true },
  'product-code': { type: 'string', multiple: true },
  region: { type: 'string' },
  'account-id': { type: 'string' },
  'image-id': { type: 'string' },
  'instance-type': { type: 'string' },
  'identity-key': { type: 'string' },
  'identity-cert': { type: 'string' },
  'identity-embed-cert': { type: 'boolean' },
  scenario: { type: 'string', multiple: true },
  platform: { type: 'string' },
  user: { type: 'string' },
  hostname: { type: 'string' },
  'user-key': { type: 'string', multiple: true },
  help: { type: 'boolean', short: 'h' },
} as const;

/** Where the command writes, and what stops it; tests replace the signals with an AbortSignal. */
export interface EmulateIo {
  out(text: string): void;
  err(text: string): void;
  stop?: AbortSignal;
}

const processIo: EmulateIo = {
  out: (t) => process.stdout.write(t),
  err: (t) => process.stderr.write(t),
};

class UsageError extends Error {}

export function parseListen(text: string): { host: string; port: number } {
  const m = /^\[([0-9A-Fa-f:.%\w]+)\]:(\d{1,5})$/.exec(text) ?? /^([^:[\]\s]+):(\d{1,5})$/.exec(text);
  const port = m ? Number.parseInt(m[2] as string, 10) : NaN;
  if (!m || port > 65535) throw new UsageError(`--listen takes HOST:PORT (e.g. 127.0.0.1:1338 or [::1]:1338), not "${text}"`);
  return { host: m[1] as string, port };
}

function parseFlags(argv: string[]) {
  let parsed;
  try {
    parsed = parseArgs({ args: argv, options: OPTIONS, allowPositionals: true, strict: true });
  } catch (err) {
    throw new UsageError(`emulate: ${flagError(err, Object.keys(OPTIONS))}`);
  }
  if (parsed.positionals.length > 0) throw new UsageError(`emulate: unexpected argument "${parsed.positionals[0]}"`);
  return parsed.values;
}

async function readConfig(file: string): Promise<EmulatorFile> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    throw new ConfigError([`${file}: cannot read the config: ${(err as NodeJS.ErrnoException).code ?? errorMessage(err)}`]);
  }
  return parseEmulatorFile(text, file);
}

/** Flags over the config file; lists given as flags replace the file's lists. */
async function emulatorOptions(argv: string[], io: EmulateIo): Promise<EmulatorOptions | 'help'> {
  const v = parseFlags(argv);
  if (v.help) return 'help';
  const listen = parseListen(v.listen ?? '127.0.0.1:1338');
  if ((v['identity-key'] === undefined) !== (v['identity-cert'] === undefined)) throw new UsageError('emulate: --identity-key and --identity-cert go together');
  if (v['identity-embed-cert'] && v['identity-key'] === undefined) throw new UsageError('emulate: --identity-embed-cert needs --identity-key and --identity-cert');
  for (const [flag, value] of [['--instance-id', v['instance-id']], ...(v.key ?? []).map((k) => ['--key', k]), ...(v['product-code'] ?? []).map((c) => ['--product-code', c])] as const) {
    if (value !== undefined && (value.trim() === '' || /[\0-\x1f\x7f]/.test(value))) throw new UsageError(`emulate: ${flag} must not be empty or hold control characters`);
  }
  let scenarios: Scenario[];
  try {
    scenarios = (v.scenario ?? []).map(parseScenario);
    behaviour(scenarios);
  } catch (err) {
    throw new UsageError(`emulate: --scenario: ${errorMessage(err)}`);
  }
  const file = v.config === undefined ? {} : await readConfig(v.config);
  const identity = { ...file.identity };
  if (v.region !== undefined) identity.region = v.region;
  if (v['account-id'] !== undefined) identity.accountId = v['account-id'];
  if (v['image-id'] !== undefined) identity.imageId = v['image-id'];
  if (v['instance-type'] !== undefined) identity.instanceType = v['instance-type'];
  const instanceId = v['instance-id'] ?? file.instanceId;
  const keys = v.key ?? file.keys;
  const productCodes = v['product-code'] ?? file.productCodes;
  return {
    listen, scenarios, identity,
    log: (line) => io.out(`${line}\n`),
    ...(instanceId === undefined ? {} : { instanceId }),
    ...(keys === undefined ? {} : { keys }),
    ...(productCodes === undefined ? {} : { productCodes }),
    ...(v['identity-key'] && v['identity-cert'] ? { signing: { key: v['identity-key'], cert: v['identity-cert'], embedCert: v['identity-embed-cert'] ?? false } } : {}),
  };
}

function untilStopped(stop: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      process.off('SIGINT', done);
      process.off('SIGTERM', done);
      stop?.removeEventListener('abort', done);
      resolve();
    };
    if (stop) {
      if (stop.aborted) return resolve();
      stop.addEventListener('abort', done);
    } else {
      process.on('SIGINT', done);
      process.on('SIGTERM', done);
    }
  });
}

/** `--platform NAME`: another cloud's dialect (agent/metadata/emulator/platforms.ts). */
async function emulatePlatform(argv: string[], io: EmulateIo): Promise<number | null> {
  let v;
  try {
    v = parseFlags(argv);
  } catch {
    return null; // emulatorOptions reports it
  }
  if (v.platform === undefined || v.platform === 'ec2' || v.help) return null;
  const platform = v.platform;
  try {
    if (!isEmulatedPlatform(platform)) throw new UsageError(`emulate: --platform takes ec2 or one of ${EMULATED_PLATFORMS.join(', ')}, not "${platform}"`);
    for (const flag of ['config', 'product-code', 'identity-key', 'identity-cert', 'identity-embed-cert', 'region', 'account-id', 'image-id', 'instance-type'] as const) {
      if (v[flag] !== undefined) throw new UsageError(`emulate: --${flag} is EC2's and does not apply to --platform ${platform}`);
    }
    if (v['user-key'] && platform !== 'gce' && platform !== 'akamai') throw new UsageError(`emulate: --user-key applies to --platform gce and akamai only`);
    const userKeys = (v['user-key'] ?? []).map((text) => {
      const m = /^([a-z_][a-z0-9_.-]{0,31})=(\S.*)$/.exec(text);
      if (!m) throw new UsageError(`emulate: --user-key takes USER=KEY, not "${text.slice(0, 40)}"`);
      return { user: m[1] as string, key: m[2] as string };
    });
    const keys = [...(v.key ?? []), ...userKeys];
    const scenarios = (v.scenario ?? []).map(parseScenario);
    const emulator = await startPlatformEmulator({
      platform, scenarios, listen: parseListen(v.listen ?? '127.0.0.1:1338'), log: (line) => io.out(`${line}\n`),
      ...(v['instance-id'] ? { instanceId: v['instance-id'] } : {}), ...(keys.length > 0 ? { keys } : {}),
      ...(v.user ? { user: v.user } : {}), ...(v.hostname ? { hostname: v.hostname } : {}),
      onReady: () => io.out('emulate: wireserver received a ready report\n'),
    });
    io.out(`emulate: listening on ${emulator.url}\n`);
    io.out(`emulate: platform ${platform}, instance ${emulator.instanceId}, ${keys.length} key(s), scenarios: ${scenarios.map(scenarioLabel).join(', ') || 'none'}\n`);
    await untilStopped(io.stop);
    await emulator.close();
    io.out('emulate: stopped\n');
    return 0;
  } catch (err) {
    if (err instanceof UsageError || err instanceof ScenarioError) {
      io.err(`imprint: ${err.message}\nimprint: see "imprint emulate --help"\n`);
      return 2;
    }
    if (err instanceof ImprintError) {
      io.err(`imprint: error: emulate: ${err.message}\n`);
      return 1;
    }
    throw err;
  }
}

export async function emulateCommand(argv: string[], io: EmulateIo = processIo): Promise<number> {
  const other = await emulatePlatform(argv, io);
  if (other !== null) return other;
  let options: EmulatorOptions | 'help';
  try {
    options = await emulatorOptions(argv, io);
  } catch (err) {
    if (err instanceof ConfigError) {
      for (const p of err.problems) io.err(`imprint: ${p}\n`);
      return 2;
    }
    if (err instanceof UsageError || err instanceof ScenarioError) {
      io.err(`imprint: ${err.message}\nimprint: see "imprint emulate --help"\n`);
      return 2;
    }
    throw err;
  }
  if (options === 'help') {
    io.out(EMULATE_HELP);
    return 0;
  }
  let emulator;
  try {
    emulator = await startEmulator(options);
  } catch (err) {
    if (err instanceof ScenarioError) {
      io.err(`imprint: emulate: --scenario: ${err.message}\n`);
      return 2;
    }
    if (err instanceof ImprintError) {
      io.err(`imprint: error: emulate: ${err.message}\n`);
      return 1;
    }
    throw err;
  }
  io.out(`emulate: listening on ${emulator.url}\n`);
  const keys = options.keys?.length ?? 0;
  const scenarios = options.scenarios?.map(scenarioLabel).join(', ') || 'none';
  io.out(`emulate: instance ${emulator.instanceId}, ${keys} key${keys === 1 ? '' : 's'}, product codes: ${options.productCodes?.join(', ') || 'none'}, identity document ${options.signing ? 'signed' : 'unsigned'}, scenarios: ${scenarios}\n`);
  await untilStopped(io.stop);
  await emulator.close();
  io.out('emulate: stopped\n');
  return 0;
}
