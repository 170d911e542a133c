import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';

// The test-suite guard (test/support/guard.ts) fails a run in which the code under test leaves
// a rejection nobody handles, even when every assertion passed: mocha alone reports it passing.

const REPO = fileURLToPath(new URL('../..', import.meta.url));

describe('the test-suite guard', function () {
  it('fails a run whose code under test leaves an unhandled rejection, naming it', async () => {
    const result = await new Promise<{ code: number; out: string }>((resolve) => {
      execFile(process.execPath, ['node_modules/mocha/bin/mocha.js', '--no-config', '--node-option', 'import=tsx', '--require', 'test/support/guard.ts', 'test/support/fixtures/stray-rejection.ts'],
        { cwd: REPO, env: { PATH: process.env.PATH } }, (err, stdout, stderr) => {
          resolve({ code: typeof (err as { code?: unknown } | null)?.code === 'number' ? (err as { code: number }).code : 0, out: stdout + stderr });
        });
    });
    assert.notEqual(result.code, 0, result.out);
    assert.match(result.out, /unhandled rejection: Error: stray rejection from the code under test/);
  });
});
