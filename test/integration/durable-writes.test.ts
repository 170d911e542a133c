import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { access, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { CLI } from '../support/cli.js';
import { FAST_KEYS_CONFIG, removeScratch, scratchImage, writeConfig } from '../support/tree.js';

// Issue 12: no fsync that crash safety does not need. Each flush of /etc/ssh on a cloud disk is
// a round trip to the storage; the boot made one per removed image key and two per new key.
// Counted with strace (the real system calls of the real binary): the image's key files are
// overwritten and synced (the old keys must not stay on disk) but their removals need no
// directory flush of their own, and a new key pair is made durable by one.

const exec = promisify(execFile);

describe('durable writes: the syncs a boot makes', function () {
  this.timeout(300_000);
  let root = '';
  let scratch = '';

  before(async function () {
    if (!(await access('/usr/bin/strace').then(() => true, () => false))) {
      if (process.env.CI) throw new Error('CI installs strace (.ci/run)');
      this.skip();
    }
  });
  beforeEach(async () => {
    root = await scratchImage();
    scratch = await mkdtemp(path.join(tmpdir(), 'imprint-strace-'));
  });
  afterEach(async () => {
    await removeScratch(root);
    await rm(scratch, { recursive: true, force: true });
  });

  it('flushes /etc/ssh once per new key pair, and overwrites every old private key on disk', async () => {
    await writeConfig(root, FAST_KEYS_CONFIG);
    const trace = path.join(scratch, 'trace');
    await exec('strace', ['-f', '-qq', '-y', '-e', 'trace=fsync,fdatasync', '-o', trace, process.execPath, CLI, 'boot', '--root', root], {
      env: { PATH: process.env.PATH, IMPRINT_FORBID_METADATA_ADDRESS: '1' },
    });
    const calls = (await readFile(trace, 'utf8')).split('\n').map((l) => /(?:fsync|fdatasync)\(\d+<([^>]*)>/.exec(l)?.[1]).filter((p): p is string => p !== undefined);
    const etcSsh = path.join(root, 'etc/ssh');
    assert.equal(calls.filter((p) => p === etcSsh).length, 2, `one /etc/ssh flush per new key pair (ed25519, ecdsa): ${calls.join(', ')}`);
    for (const key of ['ssh_host_ed25519_key', 'ssh_host_ecdsa_key', 'ssh_host_rsa_key']) {
      assert.ok(calls.includes(path.join(etcSsh, key)), `the image's ${key} was overwritten and synced before its removal`);
    }
  });
});
