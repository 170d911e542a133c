import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { TaskRecorder } from '../../agent/boot/report.js';
import type { TaskContext } from '../../agent/boot/task.js';
import { parseConfig } from '../../agent/config.js';
import { Console } from '../../agent/os/console.js';
import { RootTree } from '../../agent/os/root.js';
import { BACKGROUND_NICE } from '../../agent/os/priority.js';
import { hostKeysLateTask, hostKeysTask } from '../../agent/tasks/host-keys.js';
import { removeScratch, scratchImage } from '../support/tree.js';

// Issue 12: the RSA key sshd does not wait for (OpenSSH < 9.8: this machine's 9.2 judges the
// scratch tree) is generated at the lowest CPU priority, and so the lowest best-effort I/O
// level, while the keys sshd starts on keep the boot's own. Read from the kernel (/proc), with
// the real ssh-keygen.

class QuietConsole extends Console {
  constructor() {
    super({ json: false, verbose: false });
  }
  override info(): void {}
  override warn(): void {}
  override block(): void {}
}

/** nice of a process, field 19 of /proc/PID/stat (after the parenthesised command name). */
function niceOf(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[16]);
}

describe('host keys: background generation yields the cores', function () {
  this.timeout(300_000);
  let root = '';
  beforeEach(async () => {
    root = await scratchImage();
  });
  afterEach(async () => {
    await removeScratch(root);
  });

  it('runs the late RSA ssh-keygen at a lower priority (BACKGROUND_NICE) while the fast keys keep the boot\'s priority', async () => {
    const out = new QuietConsole();
    // 8192 bits: a prime search of seconds, so the process is surely still there to be read.
    const ctx: TaskContext = { root: new RootTree(root), config: parseConfig('host_keys:\n  rsa_bits: 8192\n', 'test.yaml'), instance: { id: 'local-hint', source: 'override' }, facts: {} };
    await hostKeysTask.run(ctx, new TaskRecorder('host-keys', 'local', out));
    const pending = ctx.facts.pendingHostKeys;
    assert.ok(pending, 'RSA is left to the background on OpenSSH < 9.8');
    const rsa = pending.keys.find((k) => k.key.type === 'rsa');
    assert.ok(rsa?.pid !== undefined, 'its ssh-keygen was started');
    assert.equal(niceOf(rsa.pid), BACKGROUND_NICE, 'the background ssh-keygen runs at a lower priority');
    assert.equal(niceOf(process.pid), 0, 'the boot itself keeps its priority');
    await hostKeysLateTask.run(ctx, new TaskRecorder('host-keys-late', 'local', out));
  });
});
