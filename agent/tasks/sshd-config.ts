import { unlink } from 'node:fs/promises';
import type { Task, TaskContext } from '../boot/task.js';
import type { TaskRecorder } from '../boot/report.js';
import { errorMessage, ImprintError } from '../os/errors.js';
import { listTreeDir, readTreeText, shredTreeFile, statTree, writeTreeFileAtomic } from '../os/files.js';
import { sshdOracle } from '../os/sshd-oracle.js';
import { MAIN_CONFIG } from '../sshd/config-set.js';
import { normalValue, type Setting } from '../sshd/desired.js';
import { proveKeysOnly, settlePlan, type KeysOnlyProof } from '../sshd/keys-only.js';

// Keys-only sshd for every user and every Match context (the decisions are in sshd/keys-only.ts):
// the candidate files are checked by the image's own sshd before they replace anything, in one
// sandbox start that also proves keys-only with `sshd -T -C` for every login context. The
// written files are then read back and compared byte for byte with what sshd checked (and rolled
// back if they differ): sshd is not started a second time on the boot's path. The report's
// `effective` settings are that proof's.

export { DROP_IN, planSshdConfig } from '../sshd/keys-only.js';

// Check files of older versions (written beside the real ones), removed if a killed run left them.
const OLD_CHECK_PREFIX = '.imprint-check-';

async function removeStaleChecks(ctx: TaskContext): Promise<void> {
  for (const dir of ['/etc/ssh', '/etc/ssh/sshd_config.d']) {
    for (const name of await listTreeDir(ctx.root, dir)) {
      if (name.startsWith(OLD_CHECK_PREFIX)) await unlink(ctx.root.path(`${dir}/${name}`)).catch(() => undefined);
    }
  }
}

function unmet(settings: Setting[], effective: Map<string, string[]>): string[] {
  const problems: string[] = [];
  for (const s of settings.filter((x) => x.required)) {
    const got = effective.get(s.keyword.toLowerCase())?.[0];
    if (got === undefined || normalValue(got) !== normalValue(s.value)) problems.push(`${s.keyword} is ${got ?? 'unset'}, not ${s.value}`);
  }
  return problems;
}

const REPORTED = ['passwordauthentication', 'kbdinteractiveauthentication', 'permitrootlogin', 'pubkeyauthentication', 'permitemptypasswords', 'usedns', 'usepam', 'authenticationmethods', 'port', 'hostkey', 'authorizedkeysfile'];

export const sshdConfigTask: Task = {
  name: 'sshd-config',
  phase: 'local',
  after: ['host-keys'],

  disabledBecause: (config) => (config.sshd.enabled ? null : 'sshd.enabled is false'),

  async plan(ctx) {
    if ((await statTree(ctx.root, MAIN_CONFIG)) === null) return [`skip: no ${MAIN_CONFIG} (sshd is not installed)`];
    // The same staged check as a real run (nothing is written): a setting sshd rejects fails the dry run too.
    const oracle = await sshdOracle(ctx.root);
    const settled = await settlePlan(ctx.root, ctx.config, oracle, true);
    if (settled.rejected.length > 0) {
      throw new ImprintError(`${settled.rejected.map((r) => r.problem).join('; ')}; a real run would apply the keys-only settings without ${settled.rejected.length === 1 ? 'it' : 'them'} and exit 1`);
    }
    const proof = settled.proof ?? (await proveKeysOnly(ctx.root, oracle, { throwawayKey: true }));
    const lines = settled.plan.changes.length === 0
      ? ['no change: sshd already keeps the keys-only settings']
      : [`mode: ${settled.plan.mode}`, ...settled.plan.changes.map((c) => `would ${c}`)];
    lines.push(`checked with sshd -T for ${proof.contexts.length} login contexts (${oracle.mode}): ${proof.failures.length === 0 ? 'keys-only in every one' : `still taking passwords: ${proof.failures.join('; ')}`}`);
    return lines;
  },

  async run(ctx: TaskContext, rec: TaskRecorder) {
    if ((await statTree(ctx.root, MAIN_CONFIG)) === null) {
      rec.action(`no ${MAIN_CONFIG}: sshd is not installed, nothing to harden`);
      return 'skipped';
    }
    await removeStaleChecks(ctx);
    const oracle = await sshdOracle(ctx.root);
    rec.verbose(`checking with sshd in ${oracle.mode} mode`);
    const { plan, settings, rejected, runs, starts, proof: checked } = await settlePlan(ctx.root, ctx.config, oracle, false);
    for (const r of rejected) rec.warn(r.problem);

    let proof: KeysOnlyProof;
    let proofStarts = 0;
    if (plan.candidates.size > 0 && checked) {
      const previous = new Map<string, { text: string | null; mode: number; uid: number; gid: number }>();
      for (const file of plan.candidates.keys()) {
        const info = await statTree(ctx.root, file);
        previous.set(file, { text: await readTreeText(ctx.root, file), mode: info ? info.mode & 0o7777 : 0o644, uid: info?.uid ?? 0, gid: info?.gid ?? 0 });
      }
      try {
        for (const [file, text] of plan.candidates) {
          const old = previous.get(file);
          await writeTreeFileAtomic(ctx.root, file, text, { mode: old?.mode ?? 0o644, uid: old?.uid ?? 0, gid: old?.gid ?? 0 });
        }
        // What sshd will read is what it checked, byte for byte: its verdict on the staged
        // copies holds for the files (staging only renames the Include chain, see staging.ts).
        for (const [file, text] of plan.candidates) {
          if ((await readTreeText(ctx.root, file)) !== text) throw new ImprintError(`${file} does not read back as written`);
        }
      } catch (err) {
        for (const [file, old] of previous) {
          if (old.text === null) await shredTreeFile(ctx.root, file);
          else await writeTreeFileAtomic(ctx.root, file, old.text, old);
        }
        throw new ImprintError(`the written configuration is not the one sshd checked; rolled back to the old files: ${errorMessage(err)}`);
      }
      for (const change of plan.changes) rec.action(change);
      proof = checked;
    } else {
      rec.action('sshd already keeps the keys-only settings; no file changed');
      proof = await proveKeysOnly(ctx.root, oracle);
      proofStarts = proof.starts;
    }

    const effective = proof.global;
    const summary = Object.fromEntries(REPORTED.filter((k) => effective.has(k)).map((k) => [k, (effective.get(k) as string[]).join(', ')]));
    rec.detail('mode', plan.mode);
    rec.detail('checkedWith', oracle.mode);
    rec.detail('effective', summary);
    rec.detail('contexts', proof.contexts.length);
    // sshd -T runs, and the processes started for them: on a tree, one sandbox for the check
    // and every context's proof together.
    rec.detail('sshdRuns', proofStarts > 0 ? proof.runs : runs);
    rec.detail('sshdStarts', starts + proofStarts);
    rec.action(`effective: ${['passwordauthentication', 'kbdinteractiveauthentication', 'pubkeyauthentication', 'permitrootlogin', 'permitemptypasswords'].map((k) => `${k} ${summary[k] ?? '?'}`).join(', ')}`);
    const problems = [
      ...rejected.map((r) => r.problem),
      ...unmet(settings, effective).map((p) => `sshd does not keep keys-only settings: ${p}`),
      ...proof.failures.map((f) => `sshd still takes passwords for ${f}`),
    ];
    if (problems.length > 0) {
      const core = rejected.length > 0 && proof.failures.length === 0 ? ' (the keys-only settings were applied without the rejected ones)' : '';
      throw new ImprintError(`${problems.join('; ')}${core}`);
    }
    rec.action(`keys-only for every login context: sshd -T -C for ${proof.contexts.length} contexts (users × Match blocks) agrees`);
    return undefined;
  },
};
