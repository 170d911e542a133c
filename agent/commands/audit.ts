import { writeFile, rename, stat, unlink } from 'node:fs/promises';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { flagError } from '../cli/flag-error.js';
import { didYouMean } from '../config.js';
import { renderJson, renderJunit, renderTable } from '../audit/render.js';
import { CHECKS } from '../audit/registry.js';
import { runAudit } from '../audit/run.js';
import { isSeverity, SEVERITIES, type Severity } from '../audit/types.js';
import { errorMessage } from '../os/errors.js';
import { RootTree } from '../os/root.js';

// `imprint audit`: flags → runAudit → table (or JSON) on stdout, JUnit to a file, exit status
// by --fail-on. Parses its own flags, like emulate.

function checkList(): string {
  const width = Math.max(...CHECKS.map((c) => c.id.length));
  return CHECKS.map((c) => `  ${c.id.padEnd(width)}  ${c.severity.padEnd(8)}  ${c.title}`).join('\n');
}

export const AUDIT_HELP = `Usage: imprint audit [--root DIR] [--json] [--junit FILE] [--fail-on SEVERITY] [--verbose]

Reports what the image-sharing guidelines say a user of someone else's image must check:
password and root logins in sshd, extra SSH keys and accounts, default passwords, services,
open ports and processes, cron jobs and timers, start-up scripts that run remote code, log
forwarding, host keys, leftovers (what "imprint seal" would remove) and the firewall. It only
reads: nothing in the tree is changed.

Options:
  --root DIR          Audit an offline tree (a mounted image) instead of this system. Live-only
                      checks (processes, listening ports) are then skipped. sshd's settings come
                      from the image's own sshd in a read-only sandbox (bubblewrap), or from this
                      machine's sshd over the tree's /etc/ssh when the image has none.
  --json              Print the report as JSON on stdout ("format": "imprint-audit/1", described
                      by the JSON schema packaging/schema/audit-report.schema.json).
  --junit FILE        Also write a JUnit XML report: one testcase per check, a failure for
                      findings at or above --fail-on, an error for a check that could not run.
  --fail-on SEVERITY  info, low, medium, high (default) or critical: exit 1 when a finding is at
                      or above it, or a check that looks for such problems could not run.
  --verbose           Also list every check with its status and the guideline it comes from.
  -h, --help          Print this help.

Every finding has a severity and evidence: the file (or /proc table), the line, the value.
Secrets are never printed: password hashes and private keys are described, not shown.
Run it as root: /etc/shadow, other users' homes and processes are readable only by root, and a
check that cannot read what it needs is reported as "could not run" (and fails at --fail-on).

Checks (id, highest severity, what):
${checkList()}

Exit status: 0 nothing at or above --fail-on, 1 something was (or a check could not run),
2 usage error.
`;

const OPTIONS = {
  root: { type: 'string' },
  json: { type: 'boolean' },
  junit: { type: 'string' },
  'fail-on': { type: 'string' },
  verbose: { type: 'boolean', short: 'v' },
  help: { type: 'boolean', short: 'h' },
} as const;

class UsageError extends Error {}

interface AuditFlags {
  root: string;
  json: boolean;
  junit: string | null;
  failOn: Severity;
  verbose: boolean;
  help: boolean;
}

function parseFlags(argv: string[]): AuditFlags {
  let parsed;
  try {
    parsed = parseArgs({ args: argv, options: OPTIONS, allowPositionals: true, strict: true });
  } catch (err) {
    throw new UsageError(`audit: ${flagError(err, Object.keys(OPTIONS))}`);
  }
  const v = parsed.values;
  if (parsed.positionals.length > 0) throw new UsageError(`audit: unexpected argument "${parsed.positionals[0]}"`);
  const failOn = v['fail-on'] ?? 'high';
  if (!isSeverity(failOn)) throw new UsageError(`audit: --fail-on takes one of ${SEVERITIES.join(', ')}, not "${failOn}"${didYouMean(failOn, [...SEVERITIES])}`);
  if (v.root !== undefined && v.root.trim() === '') throw new UsageError('audit: --root needs a directory');
  if (v.junit !== undefined && v.junit.trim() === '') throw new UsageError('audit: --junit needs a file name');
  return { root: v.root ?? '/', json: v.json ?? false, junit: v.junit ?? null, failOn, verbose: v.verbose ?? false, help: v.help ?? false };
}

/** Writes the JUnit file beside its final name, then renames it in (a reader never sees half). */
async function writeReportFile(file: string, text: string): Promise<void> {
  const target = path.resolve(file);
  const temp = path.join(path.dirname(target), `.${path.basename(target)}.${process.pid}.tmp`);
  try {
    await writeFile(temp, text, { mode: 0o644, flag: 'wx' });
    await rename(temp, target);
  } catch (err) {
    await unlink(temp).catch(() => undefined);
    throw err;
  }
}

export async function auditCommand(argv: string[], io: { out: NodeJS.WritableStream; err: NodeJS.WritableStream } = { out: process.stdout, err: process.stderr }): Promise<number> {
  let flags: AuditFlags;
  try {
    flags = parseFlags(argv);
  } catch (err) {
    if (err instanceof UsageError) {
      io.err.write(`imprint: ${err.message}\nimprint: see "imprint audit --help"\n`);
      return 2;
    }
    throw err;
  }
  if (flags.help) {
    io.out.write(AUDIT_HELP);
    return 0;
  }
  const info = await stat(flags.root).catch(() => null);
  if (!info?.isDirectory()) {
    io.err.write(`imprint: audit: --root ${flags.root}: not a directory\nimprint: see "imprint audit --help"\n`);
    return 2;
  }
  if (flags.junit !== null) {
    const dir = await stat(path.dirname(path.resolve(flags.junit))).catch(() => null);
    if (!dir?.isDirectory()) {
      io.err.write(`imprint: audit: --junit ${flags.junit}: its directory does not exist\n`);
      return 2;
    }
  }
  const report = await runAudit(new RootTree(flags.root), { failOn: flags.failOn });
  io.out.write(flags.json ? renderJson(report) : renderTable(report, flags.verbose));
  if (flags.junit !== null) {
    try {
      await writeReportFile(flags.junit, renderJunit(report));
    } catch (err) {
      io.err.write(`imprint: audit: cannot write ${flags.junit}: ${errorMessage(err)}\n`);
      return 1;
    }
  }
  for (const c of report.checks) if (c.status === 'error') io.err.write(`imprint: audit: ${c.id} could not run: ${c.detail ?? ''}\n`);
  return report.exitCode;
}
