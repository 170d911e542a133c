// Real boots (issues 10 and 12): time from starting `systemd-nspawn -b` to the first key login,
// on Debian 12 and Debian 13, for imprint and for the no-provisioning floor (launch key pre-baked),
// quiet and under a CPU load this script makes (2 busy `sh` loops per CPU, started right before
// the container and killed by PID as soon as the login worked). On Debian 13 it also boots imprint
// with `host_keys: {types: [ed25519, ecdsa]}`: the difference is what RSA costs there (OpenSSH
// 10: RSA is generated before READY). Reuses the e2e harness (test/e2e/suite.ts, harness.ts):
// network namespaces of its own, the emulator at 169.254.169.254 only inside them, one container
// at a time, everything torn down at the end (also on Ctrl-C). As root, after building imprint:
//
//   node --import tsx test/bench/first-login.ts [--rounds N] [--releases bookworm,trixie]
//        [--imprint FILE] [--rsa-variant trixie|all|none] [--no-load] [--json FILE]
//
//   --imprint FILE   the build under test: a .deb, or a single binary (with this checkout's units/);
//                    default: what the e2e tests pick from dist/ (newest .deb, else
//                    dist/imprint-linux-x64, else node + dist/imprint.cjs).
//   --rounds N       boots per variant and condition (default 3). Every round boots each variant
//                    of each release quiet and loaded, in rotating order.
//
// Measured, not asserted: it exits non-zero only when a boot went wrong (no key login).
import { spawn } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { cpus, loadavg } from 'node:os';
import { resolve } from 'node:path';
import { killPid, trackedPids } from '../e2e/proc.js';
import { IMPRINT_CONFIG, Lab, Suite, USER, bootMilestones, type Key } from '../e2e/suite.js';
import { writeImprintConfig } from '../e2e/image.js';
import type { DebianSuite } from '../support/debian-rootfs.js';

interface Options { rounds: number; releases: DebianSuite[]; rsaVariant: 'trixie' | 'all' | 'none'; load: boolean; json: string | null }

function parseArgs(argv: string[]): Options {
  const o: Options = { rounds: 3, releases: ['bookworm', 'trixie'], rsaVariant: 'trixie', load: true, json: null };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const v = (): string => {
      const x = argv[++i];
      if (x === undefined) throw new Error(`${a} needs a value`);
      return x;
    };
    if (a === '--rounds') o.rounds = Number(v());
    else if (a === '--releases') o.releases = v().split(',') as DebianSuite[];
    else if (a === '--rsa-variant') o.rsaVariant = v() as Options['rsaVariant'];
    else if (a === '--no-load') o.load = false;
    else if (a === '--json') o.json = resolve(v());
    else if (a === '--imprint') {
      const file = resolve(v());
      if (file.endsWith('.deb')) process.env.IMPRINT_E2E_DEB = file;
      else if (/\.(c?js|mjs)$/.test(file)) throw new Error(`--imprint ${file}: a bundle is taken only from this checkout's dist/ (IMPRINT_E2E_AGENT=bundle); give a .deb or a single binary`);
      else process.env.IMPRINT_E2E_BINARY = file;
    } else throw new Error(`unknown argument ${a} (see the comment at the top of test/bench/first-login.ts)`);
  }
  if (!Number.isInteger(o.rounds) || o.rounds < 1) throw new Error('--rounds must be a positive integer');
  for (const r of o.releases) if (!['bookworm', 'trixie', 'bullseye'].includes(r)) throw new Error(`unknown release ${r}`);
  if (!['trixie', 'all', 'none'].includes(o.rsaVariant)) throw new Error('--rsa-variant must be trixie, all or none');
  return o;
}

// ---- the CPU load ------------------------------------------------------------------------------

const burners = new Set<number>();
function startLoad(): void {
  for (let i = 0; i < 2 * cpus().length; i++) {
    const child = spawn('sh', ['-c', 'while :; do :; done'], { stdio: 'ignore' });
    if (child.pid === undefined) continue;
    burners.add(child.pid);
    trackedPids.add(child.pid); // killed by the harness's emergency cleanup too
  }
}
function stopLoad(): void {
  for (const pid of burners) {
    killPid(pid, 'SIGKILL');
    trackedPids.delete(pid);
  }
  burners.clear();
}

// ---- statistics ----------------------------------------------------------------------------------

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length === 0 ? NaN : s.length % 2 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2;
}
const sec = (ms: number): string => (Number.isFinite(ms) ? (ms / 1000).toFixed(2) : '—');
const signedSec = (ms: number): string => (Number.isFinite(ms) ? `${ms >= 0 ? '+' : ''}${(ms / 1000).toFixed(2)}` : '—');

type VariantId = 'floor' | 'imprint' | 'imprint-no-rsa';
const LABEL: Record<VariantId, string> = {
  floor: 'floor: no provisioning, launch key pre-baked',
  imprint: 'imprint, default key types',
  'imprint-no-rsa': 'imprint, host_keys.types [ed25519, ecdsa]',
};
const NO_RSA_CONFIG = `${IMPRINT_CONFIG}host_keys: {types: [ed25519, ecdsa]}\n`;

interface Boot { loginMs: number; marks: Record<string, number> }

async function main(): Promise<void> {
  const o = parseArgs(process.argv.slice(2));
  const started = Date.now();
  const loadBefore = loadavg().map((x) => x.toFixed(2)).join(' ');
  const conditions = o.load ? ['quiet', 'loaded'] : ['quiet'];
  const setups: { debian: DebianSuite; suite: Suite; lab: Lab; key: Key; variants: VariantId[]; goldens: Record<string, string> }[] = [];
  // results[release][condition][variant] = boots, index = round
  const results = new Map<string, Boot[]>();
  const at = (d: string, c: string, v: string): Boot[] => {
    const k = `${d}/${c}/${v}`;
    if (!results.has(k)) results.set(k, []);
    return results.get(k) as Boot[];
  };
  try {
    for (const debian of o.releases) {
      const suite = await Suite.create(debian);
      const lab = new Lab(() => suite, `bench-${debian}`);
      const entry = { debian, suite, lab, key: await suite.newKey(`bench-${debian}`), variants: [] as VariantId[], goldens: {} as Record<string, string> };
      setups.push(entry);
      entry.goldens.floor = (await suite.golden('floor', entry.key)).dir;
      entry.goldens.imprint = (await suite.golden('imprint')).dir;
      entry.variants = ['floor', 'imprint'];
      if (o.rsaVariant === 'all' || o.rsaVariant === debian) entry.variants.push('imprint-no-rsa');
      await lab.startEmulator({ instanceId: `i-0be7c400000000${debian === 'trixie' ? 13 : 12}`, keys: [entry.key.public] });
    }
    for (let round = 0; round < o.rounds; round++) {
      const condOrder = round % 2 === 0 ? conditions : [...conditions].reverse();
      for (const cond of condOrder) {
        for (const s of setups) {
          const order = s.variants.map((_, i) => s.variants[(i + round) % s.variants.length] as VariantId);
          for (const v of order) {
            const tree = await s.lab.tree(s.goldens[v === 'floor' ? 'floor' : 'imprint'] as string, `${v}-${cond}-${round}`);
            if (v === 'imprint-no-rsa') await writeImprintConfig(tree, NO_RSA_CONFIG);
            if (cond === 'loaded') startLoad();
            let boot: Boot;
            try {
              const c = await s.lab.boot(tree, `${v}-${cond}-${round}`);
              const login = await c.waitForLogin(s.key.private, USER, 180_000, 50);
              stopLoad();
              const marks = await bootMilestones(c, v === 'floor' ? null : 'imprint.service');
              boot = { loginMs: login.ms, marks };
              await c.stop();
            } finally {
              stopLoad();
            }
            at(s.debian, cond, v).push(boot);
            process.stderr.write(`  round ${round + 1}/${o.rounds} ${s.debian} ${cond} ${v}: first key login ${Math.round(boot.loginMs)} ms (${Object.entries(boot.marks).map(([k, ms]) => `${k} ${Math.round(ms)}`).join(', ')})\n`);
            await s.suite.ws.remove(tree);
          }
        }
      }
    }
  } finally {
    stopLoad();
    for (const s of setups) {
      await s.lab.teardown().catch((e: Error) => process.stderr.write(`teardown: ${e.message}\n`));
      await s.suite.destroy().catch((e: Error) => process.stderr.write(`workspace: ${e.message}\n`));
    }
  }

  // ---- report ----
  const out: string[] = [];
  const agent = setups[0]?.suite.agent.describe ?? '?';
  out.push(`First key login after \`systemd-nspawn -b\` (real boots, e2e harness): ${o.rounds} boots per variant and condition`);
  out.push('');
  out.push(`- imprint: ${agent}`);
  out.push(`- load average (1/5/15 min): ${loadBefore} before, ${loadavg().map((x) => x.toFixed(2)).join(' ')} after; "loaded" = ${2 * cpus().length} busy sh loops on the host (2 per CPU) from just before the container starts until the first login worked`);
  out.push(`- command: node --import tsx test/bench/first-login.ts ${process.argv.slice(2).join(' ')}`.trimEnd());
  out.push('- login polled every 50 ms from the metadata namespace (`ssh -i key debian@169.254.0.2 true`, a new ssh each attempt); milestones are systemd\'s monotonic timestamps inside the container');
  out.push('');
  const marks = ['unit started', 'unit ready', 'sshd active', 'launch key written'];
  const verdicts: string[] = [];
  for (const s of setups) {
    const release = s.debian === 'trixie' ? 'Debian 13 (trixie)' : s.debian === 'bookworm' ? 'Debian 12 (bookworm)' : `Debian 11 (${s.debian})`;
    out.push(`#### ${release}`);
    out.push('');
    out.push('| condition | variant | first key login, median (s) | runs (ms) | − floor (median of paired differences, s) | / floor (median of paired ratios) | ' + marks.join(' | ') + ' (medians, ms) |');
    out.push(`|---|---|---:|---|---:|---:|${marks.map(() => '---:').join('|')}|`);
    for (const cond of conditions) {
      const floor = at(s.debian, cond, 'floor');
      for (const v of s.variants) {
        const boots = at(s.debian, cond, v);
        const logins = boots.map((b) => b.loginMs);
        const diffs = boots.map((b, i) => b.loginMs - (floor[i] as Boot).loginMs);
        const ratios = boots.map((b, i) => b.loginMs / (floor[i] as Boot).loginMs);
        const m = marks.map((k) => {
          const xs = boots.map((b) => b.marks[k]).filter((x): x is number => x !== undefined);
          return xs.length ? String(Math.round(median(xs))) : '—';
        });
        out.push(`| ${cond} | ${LABEL[v]} | ${sec(median(logins))} | ${logins.map((x) => Math.round(x)).join(', ')} | ${v === 'floor' ? '—' : signedSec(median(diffs))} | ${v === 'floor' ? '—' : median(ratios).toFixed(2)} | ${m.join(' | ')} |`);
      }
    }
    out.push('');
    const pairedDiff = (cond: string, a: VariantId, b: VariantId, f: (x: Boot) => number | undefined): number => {
      const A = at(s.debian, cond, a);
      const B = at(s.debian, cond, b);
      return median(A.map((x, i) => (f(x) ?? NaN) - (f(B[i] as Boot) ?? NaN)).filter(Number.isFinite));
    };
    const quietDiff = pairedDiff('quiet', 'imprint', 'floor', (x) => x.loginMs);
    const rows: [string, string, boolean][] = [[`imprint − floor, quiet: ${signedSec(quietDiff)} s`, '≤ +0.25 s', quietDiff <= 250]];
    if (o.load) {
      const A = at(s.debian, 'loaded', 'imprint');
      const F = at(s.debian, 'loaded', 'floor');
      const ratio = median(A.map((x, i) => x.loginMs / (F[i] as Boot).loginMs));
      rows.push([`imprint / floor, loaded: ${ratio.toFixed(2)}`, '≤ 1.3', ratio <= 1.3]);
    }
    out.push(`Issue 12 targets, ${release}:`);
    out.push('');
    out.push('| measured | target | |');
    out.push('|---|---|---|');
    for (const [what, target, ok] of rows) {
      out.push(`| ${what} | ${target} | ${ok ? 'PASS' : 'MISS'} |`);
      verdicts.push(ok ? 'PASS' : 'MISS');
    }
    out.push('');
    if (s.variants.includes('imprint-no-rsa')) {
      out.push(`What RSA costs on ${release} (imprint default − imprint without rsa, median of paired differences, s):`);
      out.push('');
      out.push('| condition | first key login | unit ready (READY=1) | launch key written |');
      out.push('|---|---:|---:|---:|');
      for (const cond of conditions) {
        const d = (f: (x: Boot) => number | undefined): string => signedSec(pairedDiff(cond, 'imprint', 'imprint-no-rsa', f));
        out.push(`| ${cond} | ${d((x) => x.loginMs)} | ${d((x) => x.marks['unit ready'])} | ${d((x) => x.marks['launch key written'])} |`);
      }
      out.push('');
    }
  }
  out.push(`Benchmark wall time: ${((Date.now() - started) / 1000).toFixed(0)} s.`);
  process.stdout.write(`${out.join('\n')}\n`);
  if (o.json) {
    await writeFile(o.json, `${JSON.stringify({ options: o, agent, results: Object.fromEntries(results) }, null, 2)}\n`);
  }
}

try {
  await main();
} catch (err) {
  stopLoad();
  process.stderr.write(`\nbenchmark error: ${err instanceof Error ? err.stack ?? err.message : String(err)}\n`);
  process.exitCode = 1;
}
