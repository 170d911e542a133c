import { parseCli, type CliArgs } from './cli/args.js';
import { COMMAND_HELP, SHORT_USAGE } from './cli/command-help.js';
import { HELP } from './cli/help.js';
import { bootCommand } from './commands/boot.js';
import { ConfigError } from './config.js';
import { Console } from './os/console.js';
import { ImprintError, errorMessage } from './os/errors.js';
import { ParseError } from './parsers/errors.js';
import { notificationsSent } from './os/systemd-notify.js';
import { EXIT_LOCKED, RunLockBusy } from './os/run-lock.js';
import { VERSION } from './version.js';

// argv → command → exit status (0 done, 1 a task failed, 2 usage or config error, 70 internal
// error, 75 another run holds the tree's lock).

/** EX_SOFTWARE: a bug in imprint (an unexpected exception), never a task's reported failure. */
const EXIT_INTERNAL = 70;

function internalError(err: unknown): number {
  process.stderr.write(`imprint: internal error: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  return EXIT_INTERNAL;
}

// A rejection nobody handled or an exception outside any await chain is a bug: say so and exit
// 70 at once, rather than Node's default (exit 1, which reads as "a task failed, the rest ran").
process.on('unhandledRejection', (err) => process.exit(internalError(err)));
process.on('uncaughtException', (err) => process.exit(internalError(err)));

function usageFailure(err: unknown, json: boolean): number {
  const problems = err instanceof ConfigError ? err.problems : [errorMessage(err)];
  if (json) process.stdout.write(`${JSON.stringify({ status: 'error', exitCode: 2, errors: problems })}\n`);
  for (const p of problems) process.stderr.write(`imprint: ${p}\n`);
  if (!(err instanceof ConfigError)) process.stderr.write('imprint: see "imprint help"\n');
  return 2;
}

async function dispatch(args: CliArgs): Promise<number> {
  const out = new Console({ json: args.json, verbose: args.verbose, journal: process.env.JOURNAL_STREAM !== undefined && !args.json });
  switch (args.command) {
    case 'help':
      process.stdout.write((args.topic === undefined ? undefined : COMMAND_HELP[args.topic]) ?? HELP);
      return 0;
    case 'version':
      process.stdout.write(args.json ? `${JSON.stringify({ version: VERSION })}\n` : `imprint ${VERSION}\n`);
      return 0;
    case 'boot': {
      const report = await bootCommand(args, out);
      if (args.json) process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
      return report.exitCode;
    }
    case 'verify-product': {
      const { verifyProductCommand } = await import('./commands/verify-product.js');
      const { code, check } = await verifyProductCommand(args, out);
      if (args.json) process.stdout.write(`${JSON.stringify({ command: 'verify-product', ok: code === 0, check }, null, 2)}\n`);
      return code;
    }
    case 'status': {
      const { statusCommand } = await import('./commands/status.js');
      return statusCommand(args);
    }
    case 'config': {
      const { configCommand } = await import('./commands/config.js');
      return configCommand(args);
    }
    case 'clean': {
      const { cleanCommand } = await import('./commands/clean.js');
      return cleanCommand(args);
    }
    case 'demo': {
      const { demoCommand } = await import('./demo/demo.js');
      return demoCommand(args);
    }
  }
}

export async function main(argv: string[]): Promise<number> {
  // No command is a usage error (scripts that lost their arguments must not look successful).
  if (argv.length === 0) {
    process.stderr.write(SHORT_USAGE);
    return 2;
  }
  // emulate has flags of its own (--listen, --key, --scenario...): it parses them itself.
  if (argv[0] === 'emulate') {
    const { emulateCommand } = await import('./commands/emulate.js');
    return emulateCommand(argv.slice(1));
  }
  if (argv[0] === 'seal') {
    const { sealCommand } = await import('./commands/seal.js');
    return sealCommand(argv.slice(1));
  }
  if (argv[0] === 'known-hosts') {
    const { knownHostsCommand } = await import('./commands/known-hosts.js');
    return knownHostsCommand(argv.slice(1));
  }
  if (argv[0] === 'audit') {
    const { auditCommand } = await import('./commands/audit.js');
    return auditCommand(argv.slice(1));
  }
  let args: CliArgs;
  try {
    args = parseCli(argv);
  } catch (err) {
    return usageFailure(err, argv.includes('--json'));
  }
  try {
    return await dispatch(args);
  } catch (err) {
    if (err instanceof ConfigError || (err instanceof ImprintError && (err.code === 'usage' || err.code === 'config'))) return usageFailure(err, args.json);
    if (err instanceof RunLockBusy) {
      if (args.json) process.stdout.write(`${JSON.stringify({ status: 'locked', exitCode: EXIT_LOCKED, error: err.message })}\n`);
      process.stderr.write(`imprint: ${err.message}\n`);
      return EXIT_LOCKED;
    }
    if (err instanceof ImprintError || err instanceof ParseError) {
      process.stderr.write(`imprint: error: ${err.message}\n`);
      return 1;
    }
    return internalError(err);
  }
}

main(process.argv.slice(2)).then(async (code) => {
  // A notification sent after we exit carries the PID of a dead process: systemd 257 loses it
  // (the unit fails with "protocol"). Every READY=/STATUS= is handed over first.
  await notificationsSent();
  // Exit now rather than when the event loop drains: V8 would first finish compiling the HTTP
  // parser's WebAssembly in the background (~130 ms measured) for nothing. stdout and stderr
  // are synchronous for files, pipes and terminals on Linux, so no output is lost.
  process.exit(code);
});
