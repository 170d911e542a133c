// What systemd does with a sealed machine-id, booted: Debian 11 (systemd 247), 12 (252) and 13
// (257), each tree sealed by imprint (machine-id operation only) with and without --first-boot,
// then booted once in systemd-nspawn. A unit in the tree records what the booted system saw and
// powers the container off; the tree is read after nspawn has exited. This is the evidence for
// seal's default (an empty machine-id) and for --first-boot ("uninitialized"), and it keeps
// holding it against new releases.
//
// The image builder's choices the probe stands for: apt-daily-upgrade.timer disabled (its link
// removed, as `systemctl disable` does) and a unit of the builder's own, installed and never
// enabled. Neither is named in a preset file, so systemd's preset default ("enable") applies
// to both whenever presets are applied. nspawn: --private-network, --register=no, no console
// input; the container's machine-id comes from systemd in the guest (nspawn hands it a random
// $container_uuid when the tree has none, where a VM would get its SMBIOS UUID).

import assert from 'node:assert/strict';
import { readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { childEnv, run } from './proc.js';
import { imprint } from '../support/cli.js';
import { DEBIAN_RELEASES, IMAGE_MACHINE_ID, debianRootfsTarball, removeTree, unpackRootfs } from '../support/debian-rootfs.js';

const BOOT_DEADLINE_MS = 90_000;

const RECORDER = `#!/bin/sh
# Runs once multi-user.target is reached; writes what this boot saw, then powers off.
out=/var/lib/first-boot-probe/record
mkdir -p /var/lib/first-boot-probe
{
  echo "machine-id=$(cat /etc/machine-id)"
  echo "builder-unit=$(systemctl is-enabled first-boot-probe-builder-off.service)"
  echo "apt-daily-upgrade=$(systemctl is-enabled apt-daily-upgrade.timer)"
  if [ -e /var/lib/first-boot-probe/condition-first-boot ]; then echo condition-first-boot=ran; else echo condition-first-boot=skipped; fi
} > "$out.new"
mv "$out.new" "$out"
`;

const UNITS: Record<string, string> = {
  'first-boot-probe-builder-off.service': `[Unit]
Description=probe: a unit the image builder installed and left disabled
[Service]
Type=oneshot
ExecStart=/bin/true
[Install]
WantedBy=multi-user.target
`,
  'first-boot-probe-condition.service': `[Unit]
Description=probe: ConditionFirstBoot=yes
ConditionFirstBoot=yes
[Service]
Type=oneshot
ExecStart=/bin/sh -c 'mkdir -p /var/lib/first-boot-probe && : > /var/lib/first-boot-probe/condition-first-boot'
[Install]
WantedBy=multi-user.target
`,
  'first-boot-probe-record.service': `[Unit]
Description=probe: record what this boot saw, then power off
After=multi-user.target first-boot-probe-condition.service first-boot-probe-builder-off.service systemd-machine-id-commit.service first-boot-complete.target
[Service]
Type=oneshot
ExecStart=/usr/local/sbin/first-boot-probe-record
ExecStartPost=/bin/systemctl poweroff --no-block
[Install]
WantedBy=multi-user.target
`,
};

async function installProbe(tree: string): Promise<void> {
  const units = join(tree, 'etc/systemd/system');
  for (const [name, text] of Object.entries(UNITS)) await writeFile(join(units, name), text);
  await writeFile(join(tree, 'usr/local/sbin/first-boot-probe-record'), RECORDER, { mode: 0o755 });
  for (const name of ['first-boot-probe-condition.service', 'first-boot-probe-record.service']) {
    await symlink(`/etc/systemd/system/${name}`, join(units, 'multi-user.target.wants', name));
  }
  // The builder's `systemctl disable apt-daily-upgrade.timer`.
  await rm(join(units, 'timers.target.wants/apt-daily-upgrade.timer'));
}

interface Observed {
  machineIdInside: string;
  machineIdAfter: string;
  builderUnit: string;
  aptDailyUpgrade: string;
  conditionFirstBoot: string;
  bootMs: number;
}

let boots = 0;

/** Boots the tree until the probe powers it off; what it recorded, and the tree's machine-id afterwards. */
async function bootOnce(tree: string, systemd: number): Promise<Observed> {
  const machine = `imprint-mid-${process.pid}-${++boots}`;
  // systemd 256+ refuses this host's hybrid cgroup hierarchy unless nspawn gives it cgroup v2.
  const env = childEnv(systemd >= 256 ? { SYSTEMD_NSPAWN_UNIFIED_HIERARCHY: '1' } : {});
  const r = await run('systemd-nspawn', ['--quiet', '--register=no', '--keep-unit', `--machine=${machine}`, '--private-network',
    '--resolv-conf=off', '--timezone=off', '--link-journal=no', '--console=pipe', '-D', tree, '-b'], { env, timeoutMs: BOOT_DEADLINE_MS });
  const record = await readFile(join(tree, 'var/lib/first-boot-probe/record'), 'utf8').catch(() => null);
  assert.ok(!r.timedOut, `the container did not power off within ${BOOT_DEADLINE_MS / 1000} s:\n${r.stdout.slice(-3000)}`);
  assert.ok(record !== null, `the probe recorded nothing (nspawn exit ${r.code}):\n${r.stdout.slice(-3000)}${r.stderr.slice(-2000)}`);
  const field = (key: string): string => {
    const line = record.split('\n').find((l) => l.startsWith(`${key}=`));
    assert.ok(line !== undefined, `no ${key} in the record:\n${record}`);
    return line.slice(key.length + 1);
  };
  return {
    machineIdInside: field('machine-id'),
    machineIdAfter: (await readFile(join(tree, 'etc/machine-id'), 'utf8')).trim(),
    builderUnit: field('builder-unit'),
    aptDailyUpgrade: field('apt-daily-upgrade'),
    conditionFirstBoot: field('condition-first-boot'),
    bootMs: r.ms,
  };
}

/** Unpacks the release, seals its machine-id as imprint does (with or without --first-boot), boots it once. */
async function sealAndBoot(tarball: string, systemd: number, firstBoot: boolean): Promise<Observed> {
  const tree = await unpackRootfs(tarball);
  try {
    await installProbe(tree);
    const seal = await imprint(['seal', '--root', tree, '--operations', 'machine-id', ...(firstBoot ? ['--first-boot'] : [])]);
    assert.equal(seal.code, 0, seal.stderr);
    const sealed = await readFile(join(tree, 'etc/machine-id'), 'utf8');
    assert.equal(sealed, firstBoot ? 'uninitialized\n' : '', 'what seal left in /etc/machine-id');
    return await bootOnce(tree, systemd);
  } finally {
    await removeTree(tree);
  }
}

function assertNewMachineIdCommitted(o: Observed): void {
  assert.match(o.machineIdInside, /^[0-9a-f]{32}$/, 'the booted system has a valid machine-id');
  assert.notEqual(o.machineIdInside, IMAGE_MACHINE_ID, 'a new machine-id, not the image\'s');
  assert.equal(o.machineIdAfter, o.machineIdInside, 'the new machine-id is written to the tree\'s /etc/machine-id');
}

for (const { suite, release, systemd } of DEBIAN_RELEASES) {
  describe(`e2e machine-id after seal: Debian ${release} (systemd ${systemd}) booted`, function () {
    this.timeout(300_000);
    let tarball: string | null = null;
    before(async function () {
      tarball = await debianRootfsTarball(suite);
      if (!tarball) this.skip();
    });

    it('seal default (empty file): a new machine-id is written; no first-boot mode (presets not applied, ConditionFirstBoot= skipped)', async () => {
      const o = await sealAndBoot(tarball as string, systemd, false);
      process.stderr.write(`      empty: ${JSON.stringify(o)}\n`);
      assertNewMachineIdCommitted(o);
      assert.equal(o.conditionFirstBoot, 'skipped');
      assert.equal(o.builderUnit, 'disabled', 'the builder\'s disabled unit stays disabled');
      assert.equal(o.aptDailyUpgrade, 'disabled', 'apt-daily-upgrade.timer stays disabled');
    });

    it('seal --first-boot ("uninitialized"): a new machine-id is committed; first-boot mode (ConditionFirstBoot= runs, presets re-enable disabled units)', async () => {
      const o = await sealAndBoot(tarball as string, systemd, true);
      process.stderr.write(`      uninitialized: ${JSON.stringify(o)}\n`);
      assertNewMachineIdCommitted(o);
      assert.equal(o.conditionFirstBoot, 'ran');
      assert.equal(o.builderUnit, 'enabled', 'preset-all enabled the unit the builder left disabled');
      assert.equal(o.aptDailyUpgrade, 'enabled', 'preset-all re-enabled apt-daily-upgrade.timer');
    });
  });
}

