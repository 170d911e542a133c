// The harness itself: it refuses to run outside its namespaces, and its password-login check can
// see a password login (on the floor image, which has no provisioning, one works).

import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { Container, Emulator, Testbed, META_ADDR } from './harness.js';
import { mustRun, run } from './proc.js';
import { IMAGE_PASSWORD, Lab, USER, acquireSuite, releaseSuite, type Key, type Suite } from './suite.js';

describe('e2e harness', function () {
  this.timeout(600_000);
  let suite: Suite;
  before(async () => { suite = await acquireSuite(); });
  after(async () => { await releaseSuite(); });

  describe('refuses to start when its namespaces are not in place', () => {
    let bed: Testbed | undefined;
    afterEach(async () => { await bed?.destroy(); bed = undefined; });

    it('accepts the testbed it made: two namespaces, one veth pair, the metadata address only inside', async () => {
      bed = await Testbed.create();
      await bed.verify();
      const host = (await mustRun('ip', ['-o', 'addr', 'show'])).stdout;
      assert.ok(!host.includes(META_ADDR), 'the metadata address must not be on this machine');
      assert.ok(existsSync(`/run/netns/${bed.meta}`) && existsSync(`/run/netns/${bed.inst}`));
    });

    it('refuses when a namespace is missing: no emulator, no container', async () => {
      bed = await Testbed.create();
      await mustRun('ip', ['netns', 'delete', bed.inst]);
      await assert.rejects(bed.verify(), /refuses to start: network namespace .*-inst is missing/);
      await assert.rejects(Emulator.start(bed, { instanceId: 'i-0', keys: [] }), /refuses to start/);
      await assert.rejects(Container.boot(bed, suite.ws.dir, { machine: 'never', consoleFile: suite.ws.path('never.log') }), /refuses to start/);
    });

    it('refuses when the pair is gone or an extra address appears', async () => {
      bed = await Testbed.create();
      await mustRun('ip', ['-n', bed.meta, 'addr', 'add', '169.254.1.1/16', 'dev', bed.vethMeta]);
      await assert.rejects(bed.verify(), /refuses to start: .*has 169\.254\.169\.254\/16,169\.254\.1\.1\/16/);
      await mustRun('ip', ['-n', bed.meta, 'link', 'delete', bed.vethMeta]);
      await assert.rejects(bed.verify(), /refuses to start: .*interfaces lo, expected/);
    });

    it('with the wireserver and a router: accepts exactly them; refuses an emulator elsewhere or a lost route', async () => {
      bed = await Testbed.create({ extraServiceAddresses: ['168.63.129.16'], router: '10.1.1.1' });
      await bed.verify();
      await assert.rejects(Emulator.start(bed, { instanceId: 'i-0', keys: [], address: '10.9.9.9' }), /10\.9\.9\.9 is not an address of the testbed/);
      await mustRun('ip', ['-n', bed.inst, 'route', 'delete', '168.63.129.16/32']);
      await assert.rejects(bed.verify(), /refuses to start: .*no route to 168\.63\.129\.16/);
    });

    it('refuses when a namespace has a default route', async () => {
      bed = await Testbed.create();
      await mustRun('ip', ['-n', bed.inst, 'route', 'add', 'default', 'via', META_ADDR]);
      await assert.rejects(bed.verify(), /refuses to start: .*unexpected route/);
    });
  });

  describe('the floor image (no provisioning, key pre-baked)', () => {
    const lab = new Lab(() => suite, 'floor');
    let key: Key;
    after(async () => { await lab.teardown(); });
    afterEach(async function () {
      if (this.currentTest?.state === 'failed') process.stderr.write(`${await lab.diagnostics()}\n`);
    });

    it('boots; the pre-baked key logs in; and a password login WORKS there, so the refusal checks can see one', async () => {
      key = await suite.newKey('floor');
      const golden = await suite.golden('floor', key);
      const tree = await lab.tree(golden.dir, 'a');
      const c = await lab.boot(tree, 'floor');
      const login = await c.waitForLogin(key.private, USER, 60_000);
      process.stderr.write(`      floor: first key login ${Math.round(login.ms)} ms after start (${login.attempts} attempts)\n`);
      const bed = lab.bed as Testbed;
      assert.ok(bed.inInstanceNamespace(await c.leader()), 'the container runs in the instance namespace');
      assert.equal((await bed.sshOk(key.private, USER, 'id -un')).trim(), USER);
      const pw = await bed.passwordLogin(USER, IMAGE_PASSWORD);
      assert.equal(pw.code, 0, `sshpass with the image password should log in on the floor image: ${pw.stderr.slice(-500)}`);
      assert.ok(pw.methods.includes('password'), `password offered: ${pw.methods.join(',')}`);
      const wrong = await bed.passwordLogin(USER, 'not-the-password');
      assert.notEqual(wrong.code, 0);
      const scan = await bed.scanHostKeys();
      assert.deepEqual(new Set(scan.values()), new Set(golden.baked.values()), 'the floor keeps the baked host keys');
      const r = await run('true', []);
      assert.equal(r.code, 0);
    });
  });
});
