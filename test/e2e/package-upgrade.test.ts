// A real first-boot package upgrade, booted: Debian 12 with the installed imprint and
// `packages: {upgrade: true}`. The image has a package of its own at version 1 (built here with
// dpkg-deb) and a local apt repository (file:, inside the image, made with dpkg-scanpackages)
// that offers version 2; the Debian mirrors are out of its sources (the instance's network is
// the testbed's, which has no route out). Evidence: version 2 is installed, by imprint's
// package-upgrade task, which started after sshd was listening, ran under its time bound and
// logged each command, as transient services beside imprint.service's sandbox. Before that
// change it failed here: apt-get update inside the sandbox met a read-only /var.

import assert from 'node:assert/strict';
import { appendFile, mkdir, readdir, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Testbed } from './harness.js';
import { mustRun, waitFor } from './proc.js';
import { Lab, USER, acquireSuite, parseShow, releaseSuite, type Golden, type Suite } from './suite.js';

const PACKAGE = 'imprint-upgrade-probe';
const REPO_IN_IMAGE = '/srv/imprint-upgrade-probe-repo';

function log(line: string): void {
  process.stderr.write(`      ${line}\n`);
}

/** A package of version `version` with one file that says which version it is. */
async function buildProbeDeb(workDir: string, version: string): Promise<string> {
  const root = join(workDir, `pkg-${version}`);
  await mkdir(join(root, 'DEBIAN'), { recursive: true });
  await mkdir(join(root, 'usr/share', PACKAGE), { recursive: true });
  await writeFile(join(root, 'DEBIAN/control'), `Package: ${PACKAGE}\nVersion: ${version}\nArchitecture: all\nMaintainer: imprint tests <tests@imprint.invalid>\nDescription: imprint e2e: a package to upgrade\n`);
  await writeFile(join(root, 'usr/share', PACKAGE, 'version'), `${version}\n`);
  const deb = join(workDir, `${PACKAGE}_${version}_all.deb`);
  await mustRun('dpkg-deb', ['--root-owner-group', '-Zgzip', '--build', root, deb]);
  return deb;
}

/** Offline, in the tree: version 1 installed, version 2 in a local repository, the only apt source. */
async function prepareImage(tree: string, workDir: string): Promise<void> {
  const v1 = await buildProbeDeb(workDir, '1');
  const v2 = await buildProbeDeb(workDir, '2');
  await mustRun('cp', [v1, join(tree, 'var/tmp/probe_1.deb')]);
  await mustRun('chroot', [tree, 'dpkg', '-i', '/var/tmp/probe_1.deb'], { timeoutMs: 60_000 });
  const repo = join(tree, REPO_IN_IMAGE.slice(1));
  await mkdir(repo, { recursive: true });
  await mustRun('cp', [v2, repo]);
  const packages = await mustRun('dpkg-scanpackages', ['--multiversion', '.', '/dev/null'], { cwd: repo });
  await writeFile(join(repo, 'Packages'), packages.stdout);
  for (const name of await readdir(join(tree, 'etc/apt/sources.list.d'))) {
    await rename(join(tree, 'etc/apt/sources.list.d', name), join(tree, 'etc/apt/sources.list.d', `${name}.disabled-by-test`));
  }
  await rename(join(tree, 'etc/apt/sources.list'), join(tree, 'etc/apt/sources.list.disabled-by-test')).catch(() => undefined);
  await writeFile(join(tree, 'etc/apt/sources.list.d/imprint-upgrade-probe.list'), `deb [trusted=yes] file:${REPO_IN_IMAGE} ./\n`);
  await appendFile(join(tree, 'etc/imprint/imprint.yaml'), 'packages: {upgrade: true, timeout: 5m}\n');
}

/** Journal lines of a boot as [microseconds since the epoch, text]. */
function journalLines(text: string): [number, string][] {
  return text.split('\n').map((l) => /^(\d+)\.(\d+) (.*)$/.exec(l)).filter((m): m is RegExpExecArray => m !== null)
    .map((m) => [Number(m[1]) * 1e6 + Number((m[2] as string).padEnd(6, '0').slice(0, 6)), m[3] as string]);
}

describe('e2e package upgrade: Debian 12 booted, packages.upgrade on, a local apt repository', function () {
  this.timeout(900_000);
  let suite: Suite;
  let golden: Golden;
  const lab = new Lab(() => suite, 'pkgup');
  before(async function () {
    this.timeout(1_200_000);
    suite = await acquireSuite('bookworm');
    golden = await suite.golden('imprint');
  });
  after(async () => { await lab.teardown(); await releaseSuite(); });
  afterEach(async function () {
    if (this.currentTest?.state === 'failed') process.stderr.write(`${await lab.diagnostics()}\n`);
    for (const c of lab.containers) if (c.running) await c.stop();
  });

  it('upgrades the image\'s package to the repository\'s version, in the background after sshd is up, bounded and logged', async () => {
    const key = await suite.newKey('pkgup');
    const tree = await lab.tree(golden.dir, 'upgrade');
    const work = suite.ws.path('pkgup-debs');
    await mkdir(work, { recursive: true });
    await prepareImage(tree, work);
    await lab.startEmulator({ instanceId: 'i-0e2e0000000012f01', keys: [key.public] });
    const c = await lab.boot(tree, 'upgrade');
    const login = await c.waitForLogin(key.private, USER, 120_000);
    log(`first key login ${Math.round(login.ms)} ms after container start`);
    const settled = await waitFor('package-upgrade finished', async () => {
      const j = await c.exec(['journalctl', '-b', '--no-pager', '-o', 'cat', '-u', 'imprint.service'], 15_000);
      return /package-upgrade: apt-get .* upgrade: done in|package-upgrade: error/.test(j.stdout) ? j.stdout : null;
    }, 300_000, 500);
    const version = (await c.exec(['dpkg-query', '-W', '-f=${Version}', PACKAGE])).stdout.trim();
    const file = (await c.exec(['cat', `/usr/share/${PACKAGE}/version`])).stdout.trim();
    log(`after the boot: ${PACKAGE} ${version} (file says ${file})`);
    const upgradeLines = settled.split('\n').filter((l) => l.includes('package-upgrade'));
    for (const l of upgradeLines) log(`journal: ${l}`);
    assert.equal(version, '2', `not upgraded; imprint said:\n${upgradeLines.join('\n')}`);
    assert.equal(file, '2');
    assert.ok(upgradeLines.some((l) => /apt-get -q update: done in \d+ s/.test(l)), upgradeLines.join('\n'));
    assert.ok(upgradeLines.some((l) => /apt-get .* upgrade: done in \d+ s/.test(l)), upgradeLines.join('\n'));
    // After sshd was up: sshd's "Server listening" comes before the upgrade's first command.
    const all = journalLines((await c.exec(['journalctl', '-b', '--no-pager', '-o', 'short-unix'], 15_000)).stdout);
    const listening = all.find(([, t]) => /sshd\[\d+\]: Server listening on/.test(t));
    const firstUpgrade = all.find(([, t]) => /package-upgrade/.test(t));
    assert.ok(listening && firstUpgrade, 'journal lines for sshd and the upgrade');
    assert.ok(listening[0] < firstUpgrade[0], `the upgrade (${firstUpgrade[1]}) was logged before sshd listened (${listening[1]})`);
    // Beside imprint.service's sandbox (read-only /usr and /var), as transient services.
    assert.ok(all.some(([, t]) => /imprint-package-upgrade-2\.service/.test(t)), 'no transient service for the upgrade in the journal');
    const dpkgSaid = (await c.exec(['journalctl', '-b', '--no-pager', '-o', 'cat', '-u', 'imprint-package-upgrade-2.service'], 15_000)).stdout;
    assert.match(dpkgSaid, new RegExp(`Unpacking ${PACKAGE} \\(2\\) over \\(1\\)`), 'apt\'s output is in the journal, under the transient service');
    // What the task relies on for its report: systemd-run --wait passes the exit status on.
    const status = await c.exec(['systemd-run', '--quiet', '--collect', '--wait', '--', 'sh', '-c', 'exit 7']);
    assert.equal(status.code, 7, status.stderr);
    const show = parseShow((await c.exec(['systemctl', 'show', '-p', 'ActiveState,Result', 'imprint.service'])).stdout);
    assert.equal(show.Result, 'success', JSON.stringify(show));
    assert.ok(lab.bed as Testbed);
  });
});
