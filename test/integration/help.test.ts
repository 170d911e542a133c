import assert from 'node:assert/strict';
import { imprint } from '../support/cli.js';

// What a person typing at a terminal gets: a page per command, a short usage without one.

describe('help pages', function () {
  it('"imprint" alone prints a short usage on stderr and exits 2', async () => {
    const run = await imprint([]);
    assert.equal(run.code, 2);
    assert.equal(run.stdout, '');
    assert.match(run.stderr, /^Usage: imprint COMMAND \[OPTIONS\]\n/);
    assert.ok(run.stderr.split('\n').length <= 6, 'short');
  });

  for (const command of ['boot', 'verify-product', 'demo', 'status', 'config', 'clean']) {
    it(`imprint ${command} --help prints its own page, within 80 columns`, async () => {
      const run = await imprint([command, '--help']);
      assert.equal(run.code, 0, run.stderr);
      assert.match(run.stdout, new RegExp(`^Usage: imprint ${command}\\b`));
      assert.deepEqual(run.stdout.split('\n').filter((l) => l.length > 80), []);
      assert.equal((await imprint(['--help', command])).stdout, run.stdout, 'the same page with --help first');
    });
  }

  it('status --help documents every exit code status returns', async () => {
    const { STATUS_EXIT } = await import('../../agent/commands/status.js');
    const page = (await imprint(['status', '--help'])).stdout;
    for (const code of new Set(Object.values(STATUS_EXIT))) assert.match(page, new RegExp(`^ {2}${code} {2}\\S`, 'm'), `exit ${code}`);
  });
});
