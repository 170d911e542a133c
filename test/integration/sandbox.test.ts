import assert from 'node:assert/strict';
import { mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { runSandboxed } from '../../agent/os/sandbox.js';
import { sandboxSeccompFilter } from '../../agent/os/seccomp.js';

// The sandbox every image program runs in (os/sandbox.ts), checked from inside with the real
// bubblewrap and this machine's shell: no capability, no_new_privs, a seccomp filter, its own
// pid namespace and /proc, nothing writable of what it is shown, data copied in, not bound.

const HOST_PROGRAMS = ['/usr', '/bin', '/lib', '/lib64', '/etc/ld.so.cache'].map((d) => ({ from: d, to: d, optional: true }));

describe('os/sandbox: what a sandboxed program can do', function () {
  this.timeout(120_000);
  let scratch = '';
  beforeEach(async () => {
    scratch = await mkdtemp(path.join(tmpdir(), 'imprint-sandbox-'));
  });
  afterEach(async () => {
    await rm(scratch, { recursive: true, force: true });
  });

  it('has no capability, no_new_privs, a seccomp filter, its own pid namespace, and nothing of the host it may write', async () => {
    await writeFile(path.join(scratch, 'shown'), 'x');
    const outside = path.join(scratch, 'escaped');
    const script = [
      'grep -E "^(CapEff|CapBnd|NoNewPrivs|Seccomp):" /proc/self/status',
      'echo "pids: $(ls -d /proc/[0-9]* | wc -l)"',
      'echo "init: $(cat /proc/1/comm)"',
      'echo "uidmap: $(cat /proc/self/uid_map | tr -s " ")"',
      `echo bad > /shown/x 2>/dev/null && echo wrote-shown`,
      `echo bad > /proc/1/root${outside} 2>/dev/null && echo wrote-outside`,
      'cat /run/given/secret; stat -c "%a" /run/given/secret',
    ].join('\n');
    const out = await runSandboxed({
      roBinds: [...HOST_PROGRAMS, { from: scratch, to: '/shown' }],
      files: [{ at: '/run/given/secret', data: 'copied-in\n', mode: 0o600 }],
    }, '/bin/sh', ['-c', script]);
    const lines = out.stdout;
    assert.match(lines, /^CapEff:\s+0+$/m);
    assert.match(lines, /^CapBnd:\s+0+$/m);
    assert.match(lines, /^NoNewPrivs:\s+1$/m);
    assert.match(lines, sandboxSeccompFilter() ? /^Seccomp:\s+2$/m : /^Seccomp:/m);
    // Its own pid namespace: pid 1 is bubblewrap's init, not this machine's, and only the few
    // processes of the script are there (how many at the instant ls looks depends on the
    // scheduler; this machine has hundreds).
    assert.match(lines, /^init: bwrap$/m, `a pid namespace of its own: ${lines}`);
    assert.ok(Number(/pids: (\d+)/.exec(lines)?.[1]) <= 8, `a pid namespace of its own: ${lines}`);
    assert.doesNotMatch(lines, /wrote-/);
    assert.match(lines, /copied-in\n600/);
    await assert.rejects(stat(outside));
  });

  it('cannot make a user namespace of its own (--disable-userns, and unshare is in the seccomp filter)', async () => {
    const out = await runSandboxed({ roBinds: HOST_PROGRAMS, okCodes: [1] }, '/usr/bin/unshare', ['--user', 'true']);
    assert.match(out.stderr, /Operation not permitted/);
  });
});
