// imprint on a really booted Debian 12: systemd as init in systemd-nspawn, sshd, the metadata
// emulator at 169.254.169.254 in its own namespace, and logins from that namespace.

import assert from 'node:assert/strict';
import { performance } from 'node:perf_hooks';
import { consoleFingerprintBlocks, type Container, type Testbed } from './harness.js';
import { hostKeyFingerprints, writeImprintConfig } from './image.js';
import { sleep, waitFor } from './proc.js';
import { IMAGE_PASSWORD, IMPRINT_CONFIG, Lab, USER, acquireSuite, parseShow, releaseSuite, type Golden, type Key, type Suite } from './suite.js';

const LOGIN_DEADLINE_MS = 90_000;

function log(line: string): void {
  process.stderr.write(`      ${line}\n`);
}

/** Fingerprints as a sorted list, for comparisons and messages. */
function fps(m: Map<string, string>): string[] {
  return [...m.entries()].map(([t, f]) => `${t} ${f}`).sort();
}

function bootsOnConsole(text: string): number {
  return text.match(/^Welcome to Debian GNU\/Linux/gm)?.length ?? 0;
}

/** Password logins as root and debian with the image's password: refused, and not even offered. */
async function assertNoPasswordLogin(bed: Testbed): Promise<void> {
  for (const user of ['root', USER]) {
    const r = await bed.passwordLogin(user, IMAGE_PASSWORD);
    assert.notEqual(r.code, 0, `a password login as ${user} worked`);
    assert.match(r.stderr, /Permission denied/, `password login as ${user}: expected "Permission denied": ${r.stderr.slice(-400)}`);
    assert.ok(!r.methods.includes('password') && !r.methods.includes('keyboard-interactive'), `sshd still offers ${r.methods.join(',')} to ${user}`);
  }
}

/**
 * Waits (bounded) until sshd offers all the host key types the image had and the console shows
 * a fingerprint block; returns both. The RSA key may join a little after the first login.
 */
async function settledHostKeys(bed: Testbed, c: Container, types: string[], bootsBefore = 0): Promise<{ offered: Map<string, string>; block: Map<string, string> }> {
  return waitFor('all host key types offered and a fingerprint block on the console', async () => {
    const offered = await bed.scanHostKeys().catch(() => new Map<string, string>());
    const text = c.console().split(/^Welcome to Debian GNU\/Linux/m).slice(bootsBefore + 1).join('');
    const block = consoleFingerprintBlocks(text)[0];
    return types.every((t) => offered.has(t)) && block ? { offered, block } : null;
  }, 60_000, 200);
}

/** The journal of one boot, imprint and ssh, in order (root login needed: via nsenter). */
async function bootJournal(c: Container): Promise<string[]> {
  const r = await c.exec(['journalctl', '-b', '--no-pager', '-o', 'short-monotonic', '-u', 'imprint.service', '-u', 'ssh.service']);
  return r.stdout.split('\n');
}

async function dumpOnFailure(this: Mocha.Context, lab: Lab): Promise<void> {
  if (this.currentTest?.state === 'failed') process.stderr.write(`${await lab.diagnostics()}\n`);
}

describe('e2e: imprint on a booted Debian 12 (systemd-nspawn)', function () {
  this.timeout(600_000);
  let suite: Suite;
  let golden: Golden;
  before(async function () {
    this.timeout(900_000);
    suite = await acquireSuite();
    golden = await suite.golden('imprint');
    for (const n of golden.notes) log(`image: ${n}`);
  });
  after(async () => { await releaseSuite(); });

  describe('an instance: first boot, reboot, then a clone with a new instance-id', () => {
    const lab = new Lab(() => suite, 'inst');
    let keyA: Key;
    let keyB: Key;
    let tree: string;
    let c: Container;
    let bed: Testbed;
    let firstKeys: Map<string, string>;
    let shadowBefore: string;
    let authorizedBefore: string;
    const instanceA = 'i-0e2e0000000000a01';
    const instanceB = 'i-0e2e0000000000b02';
    after(async () => { await lab.teardown(); });
    afterEach(async function () { await dumpOnFailure.call(this, lab); });

    it('first boot: the launch key from the emulator logs in as debian, and every login after the first works', async () => {
      keyA = await suite.newKey('a');
      keyB = await suite.newKey('b');
      tree = await lab.tree(golden.dir, 'a');
      const emu = await lab.startEmulator({ instanceId: instanceA, keys: [keyA.public] });
      bed = lab.bed as Testbed;
      c = await lab.boot(tree, 'first');
      const login = await c.waitForLogin(keyA.private, USER, LOGIN_DEADLINE_MS);
      log(`first key login ${Math.round(login.ms)} ms after container start (${login.attempts} attempts; before it: ${login.lastError.split('\n')[0] || 'none'})`);
      // No login may fail once one has worked (e.g. while a late host key type joins sshd).
      const failures: string[] = [];
      let tries = 0;
      const until = performance.now() + 3_000;
      while (performance.now() < until) {
        const r = await bed.ssh(keyA.private, USER, 'true', 10_000);
        tries++;
        if (r.code !== 0) failures.push(`${Math.round(performance.now() - c.startedAt)} ms: ${r.stderr.trim()}`);
        await sleep(50);
      }
      assert.deepEqual(failures, [], `${failures.length} of ${tries} logins failed after the first one worked`);
      assert.equal((await bed.sshOk(keyA.private, USER, 'id -un')).trim(), USER);
      assert.equal((await bed.sshOk(keyA.private, USER, 'sudo -n id -un')).trim(), 'root', 'the default user has its sudo rule');
      assert.ok(emu.requests().some((l) => /GET \/latest\/meta-data\/public-keys\/0\/openssh-key 200/.test(l)), `the emulator served the key:\n${emu.requests().join('\n')}`);
    });

    it('password logins with the image password are refused for root and debian (keys only; accounts locked)', async () => {
      await assertNoPasswordLogin(bed);
      const shadow = await bed.sshOk(keyA.private, USER, 'sudo -n grep -E "^(root|debian):" /etc/shadow');
      for (const line of shadow.trim().split('\n')) assert.match(line, /^\w+:!/, `not locked: ${line.split(':')[0]}`);
      const effective = await bed.sshOk(keyA.private, USER, 'sudo -n sshd -T');
      assert.match(effective, /^passwordauthentication no$/m);
      assert.match(effective, /^kbdinteractiveauthentication no$/m);
      shadowBefore = shadow;
    });

    it('host keys: sshd offers new ones, which match the console fingerprint block and the files', async () => {
      const { offered, block } = await settledHostKeys(bed, c, [...golden.baked.keys()]);
      log(`baked: ${fps(golden.baked).join(', ')}`);
      log(`offered: ${fps(offered).join(', ')}`);
      for (const [type, fp] of offered) assert.ok(![...golden.baked.values()].includes(fp), `the ${type} host key is the image's baked one`);
      assert.deepEqual(fps(block), fps(offered), 'console fingerprint block vs ssh-keyscan');
      assert.deepEqual(fps(await hostKeyFingerprints(tree)), fps(offered), 'ssh-keyscan vs /etc/ssh/*.pub');
      firstKeys = offered;
    });

    it('imprint status --wait, from inside the instance: done, exit 0, the launch key\'s file named', async () => {
      const r = await bed.ssh(keyA.private, USER, 'imprint status --wait --json');
      assert.equal(r.code, 0, r.stderr);
      const status = JSON.parse(r.stdout) as { state: string; report: { formatVersion: number; tasks: { task: string; status: string; actions: string[] }[] } | null };
      assert.equal(status.state, 'done');
      assert.equal(status.report?.formatVersion, 1);
      const keys = status.report?.tasks.find((t) => t.task === 'authorized-keys');
      assert.equal(keys?.status, 'done');
      assert.match(keys?.actions.join('\n') ?? '', /into \/home\/debian\/\.ssh\/authorized_keys/);
      const long = await bed.ssh(keyA.private, USER, 'imprint status --long');
      assert.match(long.stdout, /^ {2}host-keys +done/m);
    });

    it('imprint.service is active with its STATUS line', async () => {
      const show = parseShow(await bed.sshOk(keyA.private, USER, 'systemctl show -p ActiveState,SubState,Result,StatusText,ExecMainStatus,Type imprint.service'));
      const status = await bed.sshOk(keyA.private, USER, 'systemctl status --no-pager imprint.service; true');
      log(`systemctl status imprint.service:\n${status.split('\n').slice(0, 8).map((l) => `        ${l}`).join('\n')}`);
      assert.equal(show.ActiveState, 'active', JSON.stringify(show));
      assert.ok(['exited', 'running'].includes(show.SubState ?? ''), JSON.stringify(show));
      assert.equal(show.Result, 'success', JSON.stringify(show));
      assert.ok((show.StatusText ?? '') !== '', `no STATUS= text: ${JSON.stringify(show)}`);
      assert.match(status, /^\s*Status: "/m);
    });

    it('sshd started only after imprint was ready (host keys in place)', async () => {
      const imprint = parseShow(await bed.sshOk(keyA.private, USER, 'systemctl show -p ExecMainStartTimestampMonotonic,ActiveEnterTimestampMonotonic imprint.service'));
      const ssh = parseShow(await bed.sshOk(keyA.private, USER, 'systemctl show -p InactiveExitTimestampMonotonic,ExecMainStartTimestampMonotonic,ActiveEnterTimestampMonotonic ssh.service'));
      const ready = Number(imprint.ActiveEnterTimestampMonotonic);
      const sshStart = Number(ssh.InactiveExitTimestampMonotonic);
      log(`imprint started ${imprint.ExecMainStartTimestampMonotonic} µs, ready ${ready} µs; ssh.service starting ${sshStart} µs, active ${ssh.ActiveEnterTimestampMonotonic} µs (monotonic)`);
      assert.ok(ready > 0 && sshStart > 0, JSON.stringify({ imprint, ssh }));
      assert.ok(sshStart >= ready, `ssh.service started at ${sshStart} µs, before imprint was ready at ${ready} µs`);
      const journal = await bed.sshOk(keyA.private, USER, 'sudo -n journalctl -b --no-pager -o short-monotonic -u imprint.service -u ssh.service');
      const lines = journal.split('\n');
      const fpLine = lines.findIndex((l) => /BEGIN SSH HOST KEY FINGERPRINTS|imprint.*generated/.test(l));
      const listening = lines.findIndex((l) => /sshd\[\d+\]: Server listening/.test(l));
      assert.ok(fpLine >= 0 && listening >= 0 && fpLine < listening, `journal order (host keys, then sshd listening):\n${journal.slice(-3000)}`);
    });

    it('imprint audit on the live instance: sshd keys-only, and the listening sshd port with its program', async () => {
      // audit exits 1 when it finds something at or above high; the JSON report is what is checked.
      const text = await bed.sshOk(keyA.private, USER, 'sudo -n imprint audit --json; true');
      interface AuditFinding { severity: string; message: string; facts?: Record<string, unknown> }
      interface AuditCheck { id: string; status: string; findings: AuditFinding[]; detail: string }
      const report = JSON.parse(text) as { live: boolean; checks: AuditCheck[] };
      assert.equal(report.live, true);
      const check = (id: string): AuditCheck => {
        const found = report.checks.find((x) => x.id === id);
        assert.ok(found, `no ${id} check in ${report.checks.map((x) => x.id).join(', ')}`);
        return found;
      };
      const auth = check('sshd.authentication');
      assert.ok(auth.findings.some((f) => f.facts?.keysOnly === true), JSON.stringify(auth));
      for (const id of ['sshd.password-authentication', 'sshd.kbd-interactive-authentication', 'sshd.permit-empty-passwords']) {
        assert.equal(check(id).findings.length, 0, `${id}: ${JSON.stringify(check(id).findings)}`);
      }
      const listening = check('services.listening').findings;
      const sshd = listening.filter((f) => f.facts?.port === 22 && String(f.facts?.program ?? '').endsWith('/sshd'));
      assert.ok(sshd.length > 0, `sshd's port 22 not listed with its program: ${JSON.stringify(listening)}`);
      log(`audit: ${report.checks.length} checks; listening: ${listening.map((f) => f.message).join(' | ')}`);
    });

    it('reboot with the same instance-id: nothing regenerated', async () => {
      authorizedBefore = await bed.sshOk(keyA.private, USER, 'cat ~/.ssh/authorized_keys');
      const before = bootsOnConsole(c.console());
      const rebootAt = performance.now();
      await bed.ssh(keyA.private, USER, 'sudo -n systemctl reboot', 15_000);
      await waitFor('the container to reboot', () => bootsOnConsole(c.console()) > before || !c.running, 60_000);
      if (!c.running) c = await lab.boot(tree, 'reboot'); // nspawn did not restart it itself
      const login = await c.waitForLogin(keyA.private, USER, LOGIN_DEADLINE_MS, 50, rebootAt);
      log(`key login ${Math.round(login.ms)} ms after the reboot command`);
      const offered = await bed.scanHostKeys();
      assert.deepEqual(fps(offered), fps(firstKeys), 'host keys changed across a reboot');
      assert.deepEqual(fps(await hostKeyFingerprints(tree)), fps(firstKeys));
      assert.equal(await bed.sshOk(keyA.private, USER, 'sudo -n grep -E "^(root|debian):" /etc/shadow'), shadowBefore, 'passwords re-randomized on a reboot');
      assert.equal(await bed.sshOk(keyA.private, USER, 'cat ~/.ssh/authorized_keys'), authorizedBefore, 'authorized_keys rewritten on a reboot');
      const show = parseShow(await bed.sshOk(keyA.private, USER, 'systemctl show -p ActiveState,Result imprint.service'));
      assert.equal(show.ActiveState, 'active', JSON.stringify(show));
      const second = c.console().split(/^Welcome to Debian GNU\/Linux/m).slice(-1)[0] ?? '';
      const imprintLines = second.split('\n').filter((l) => /imprint(\[\d+\])?: /.test(l));
      log(`imprint on the console at the reboot:\n${imprintLines.map((l) => `        ${l}`).join('\n')}`);
      assert.ok(!imprintLines.some((l) => /generated|locked|new instance|first boot/.test(l)), `imprint redid work on a reboot:\n${imprintLines.join('\n')}`);
    });

    it('a clone of the instance with a new instance-id: host keys regenerated, the first instance\'s key gone', async () => {
      await c.stop();
      const clone = await lab.tree(tree, 'b');
      const emu = await lab.startEmulator({ instanceId: instanceB, keys: [keyB.public] });
      c = await lab.boot(clone, 'clone');
      const login = await c.waitForLogin(keyB.private, USER, LOGIN_DEADLINE_MS);
      log(`clone: key login ${Math.round(login.ms)} ms after start`);
      const { offered, block } = await settledHostKeys(bed, c, [...golden.baked.keys()]);
      for (const [type, fp] of offered) {
        assert.notEqual(firstKeys.get(type), fp, `the clone kept the first instance's ${type} host key`);
        assert.ok(![...golden.baked.values()].includes(fp), `the clone has the image's baked ${type} host key`);
      }
      assert.deepEqual(fps(block), fps(offered), 'console fingerprint block vs ssh-keyscan');
      const oldLogin = await bed.ssh(keyA.private, USER, 'true');
      assert.notEqual(oldLogin.code, 0, 'the first instance\'s launch key still logs in on the clone');
      const ak = await bed.sshOk(keyB.private, USER, 'cat ~/.ssh/authorized_keys');
      const keyABody = keyA.public.split(' ')[1] as string;
      const keyBBody = keyB.public.split(' ')[1] as string;
      assert.ok(!ak.includes(keyABody), `the first instance's key is still in authorized_keys:\n${ak}`);
      assert.ok(ak.includes(keyBBody));
      assert.match(ak, new RegExp(`^# imprint: launch keys for instance ${instanceB}`, 'm'));
      assert.ok(!ak.includes(instanceA), `authorized_keys still names ${instanceA}:\n${ak}`);
      await assertNoPasswordLogin(bed);
      assert.ok(emu.requests().length > 0);
    });
    it('on the clone, sshd did not start before the clone\'s own host keys were in place', async () => {
      const journal = await bootJournal(c);
      const generated = journal.findIndex((l) => /imprint\[\d+\]: host-keys: generated /.test(l));
      const listening = journal.findIndex((l) => /sshd\[\d+\]: Server listening/.test(l));
      const excerpt = journal.filter((l) => /imprint\[\d+\]: (instance|host-keys|metadata)|Server listening|Started imprint/.test(l)).join('\n');
      assert.ok(generated >= 0 && listening >= 0, `journal:\n${journal.join('\n').slice(-3000)}`);
      assert.ok(generated < listening, `sshd was listening (with the first instance's host keys) before imprint made the clone's own:\n${excerpt}`);
    });
  });

  describe('fault cases (each a first boot)', () => {
    const lab = new Lab(() => suite, 'fault');
    let key: Key;
    before(async () => { key = await suite.newKey('fault'); });
    afterEach(async function () {
      await dumpOnFailure.call(this, lab);
      await lab.teardown();
    });

    for (const ms of [1500, 3000]) {
      it(`metadata slow to answer (slow=${ms}, default config): the key arrives late, then login works`, async () => {
        const tree = await lab.tree(golden.dir, `slow${ms}`);
        const emu = await lab.startEmulator({ instanceId: `i-0e2e000000000${ms}`, keys: [key.public], scenarios: [`slow=${ms}`] });
        const c = await lab.boot(tree, `slow${ms}`);
        const login = await c.waitForLogin(key.private, USER, LOGIN_DEADLINE_MS);
        log(`slow=${ms}: key login ${Math.round(login.ms)} ms after start (${login.attempts} attempts; before it: ${login.lastError.split('\n')[0] || 'none'})`);
        assert.ok(login.ms >= ms, 'the login cannot precede the first late answer');
        const bed = lab.bed as Testbed;
        await assertNoPasswordLogin(bed);
        log(`emulator: ${emu.requests().length} requests: ${emu.requests().slice(0, 6).join(' | ')}`);
        assert.ok(emu.requests().some((l) => /openssh-key 200/.test(l)));
        const show = parseShow(await bed.sshOk(key.private, USER, 'systemctl show -p ActiveState,Result imprint.service'));
        assert.equal(show.Result, 'success', JSON.stringify(show));
      });
    }

    it('metadata unreachable for the whole deadline (10s): the unit fails clearly; sshd runs with fresh host keys and no password login', async () => {
      const tree = await lab.tree(golden.dir, 'unreachable');
      await writeImprintConfig(tree, `${IMPRINT_CONFIG}metadata: {deadline: 10s}\n`);
      const bed = await lab.testbed(); // no emulator: nothing answers at 169.254.169.254
      const c = await lab.boot(tree, 'unreachable');
      const sshUpAt = await waitFor('sshd to answer', async () => {
        const r = await bed.inMeta('ssh-keyscan', ['-T', '2', '-t', 'ed25519', '169.254.0.2'], { timeoutMs: 10_000 });
        return r.stdout.includes('ssh-ed25519') ? performance.now() - c.startedAt : null;
      }, LOGIN_DEADLINE_MS, 100);
      log(`unreachable: sshd answered ${Math.round(sshUpAt)} ms after start`);
      const failed = await waitFor('imprint.service to end', async () => {
        const r = await c.exec(['systemctl', 'show', '-p', 'ActiveState,SubState,Result,StatusText,ExecMainStatus', 'imprint.service']);
        const show = parseShow(r.stdout);
        return show.ActiveState === 'failed' || (show.ActiveState === 'active' && show.SubState === 'exited') ? show : null;
      }, 60_000, 250);
      const since = performance.now() - c.startedAt;
      log(`unreachable: imprint.service ${failed.ActiveState}/${failed.SubState} result=${failed.Result} status=${JSON.stringify(failed.StatusText)} exit=${failed.ExecMainStatus} (${Math.round(since)} ms after start)`);
      await sleep(300); // the console lines of the failure are written just before the exit
      const consoleText = c.console();
      const imprintLines = consoleText.split('\n').filter((l) => /imprint/.test(l));
      log(`console:\n${imprintLines.slice(-12).map((l) => `        ${l}`).join('\n')}`);
      assert.equal(failed.ActiveState, 'failed', `imprint.service should fail without metadata on a first boot: ${JSON.stringify(failed)}`);
      assert.ok(imprintLines.some((l) => /imprint(\[\d+\])?: metadata: error: /.test(l)), 'no "imprint[pid]: metadata: error:" line on the console');
      assert.ok(!imprintLines.some((l) => /imprint\[\d+\]: imprint: /.test(l)), 'a doubled "imprint[pid]: imprint:" prefix');
      assert.ok(/Failed to start.*imprint|imprint\.service: (Main process exited|Failed with result)/i.test(consoleText) || imprintLines.some((l) => /imprint(\[\d+\])?: boot: error: /.test(l)), 'the failure is not reported on the console');
      // What an operator without a login sees through the console agent: status names the failure.
      const status = await c.exec(['imprint', 'status', '--wait', '--long'], 60_000).catch((err: { code?: number; stdout?: string }) => ({ code: err.code ?? -1, stdout: err.stdout ?? '' }));
      log(`imprint status --wait --long:\n${status.stdout.split('\n').slice(0, 12).map((l) => `        ${l}`).join('\n')}`);
      assert.match(status.stdout, /^status: failed\n {2}failed: authorized-keys \(no metadata\)/);
      assert.match(status.stdout, /^metadata: none: .*no usable answer within 10 s/m);
      const offered = await bed.scanHostKeys();
      for (const [type, fp] of offered) assert.ok(![...golden.baked.values()].includes(fp), `sshd offers the baked ${type} key`);
      const block = consoleFingerprintBlocks(consoleText)[0];
      assert.ok(block, 'no fingerprint block on the console');
      for (const [type, fp] of offered) assert.equal(block.get(type), fp);
      await assertNoPasswordLogin(bed);
      const ssh = await c.exec(['systemctl', 'is-active', 'ssh.service']);
      assert.equal(ssh.stdout.trim(), 'active');
      const shadow = await c.exec(['grep', '-E', '^(root|debian):', '/etc/shadow']);
      for (const line of shadow.stdout.trim().split('\n')) assert.match(line, /^\w+:!/, `not locked: ${line.split(':')[0]}`);
    });

    it('an IMDSv1-only service (the token PUT answers 404): the key is fetched without a token, login works', async () => {
      const tree = await lab.tree(golden.dir, 'v1');
      const emu = await lab.startEmulator({ instanceId: 'i-0e2e0000000001a01', keys: [key.public], scenarios: ['imdsv1-only'] });
      const c = await lab.boot(tree, 'imdsv1');
      const login = await c.waitForLogin(key.private, USER, LOGIN_DEADLINE_MS);
      log(`IMDSv1-only: key login ${Math.round(login.ms)} ms after start`);
      const reqs = emu.requests();
      log(`emulator: ${reqs.slice(0, 4).join(' | ')}`);
      assert.ok(reqs.some((l) => /^emulate: PUT \/latest\/api\/token 404/.test(l)), reqs.join('\n'));
      assert.ok(reqs.some((l) => /GET \/latest\/meta-data\/public-keys\/0\/openssh-key 200 .*token=no/.test(l)), reqs.join('\n'));
      await assertNoPasswordLogin(lab.bed as Testbed);
    });
  });
});
