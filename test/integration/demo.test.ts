import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { CLI, imprint } from '../support/cli.js';

// `imprint demo` as a person meets it: a terminal 80 columns wide, colour only on a terminal
// (none with NO_COLOR, none in a pipe), and one line, no stack trace, when not run as root.
// The terminal is a real pseudo-terminal made by script(1).

function onTerminal(env: NodeJS.ProcessEnv): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile('script', ['-qec', `${process.execPath} ${CLI} demo`, '/dev/null'], { env: { PATH: process.env.PATH, TERM: 'xterm', IMPRINT_FORBID_METADATA_ADDRESS: '1', ...env }, maxBuffer: 16 * 1024 * 1024 },
      (err, stdout) => (err ? reject(err) : resolve(stdout)));
  });
}

describe('imprint demo on a screen', function () {
  it('in a pipe: every line fits 80 columns, no colour, and it ends with what changed', async () => {
    const run = await imprint(['demo']);
    assert.equal(run.code, 0, run.stderr);
    const long = run.stdout.split('\n').filter((l) => Array.from(l).length > 80);
    assert.deepEqual(long, []);
    assert.doesNotMatch(run.stdout, /\x1b\[/);
    assert.match(run.stdout, /^What changed \(boot took \d+ ms, exit status 0\):$/m);
    assert.match(run.stdout, /^ {2}PasswordAuthentication +yes +→ +no$/im);
    assert.match(run.stdout, /The demo tree has been removed \(use --keep to look at it\)\.\n$/);
  });

  it('on a terminal: colour marks the changes; NO_COLOR turns it off', async () => {
    const coloured = await onTerminal({});
    assert.match(coloured, /\x1b\[32m/, 'new values in green');
    assert.ok(coloured.replace(/\x1b\[[0-9;]*m/g, '').split(/\r?\n/).every((l) => Array.from(l).length <= 80), 'fits 80 columns');
    const plain = await onTerminal({ NO_COLOR: '1' });
    assert.doesNotMatch(plain, /\x1b\[/);
  });

  it('not as root: one line that says so, exit 1, no stack trace', async () => {
    const run = await new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
      execFile('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', '--', process.execPath, CLI, 'demo'], { env: { PATH: process.env.PATH } },
        (err, stdout, stderr) => resolve({ code: typeof (err as { code?: unknown } | null)?.code === 'number' ? (err as { code: number }).code : 0, stdout, stderr }));
    });
    assert.equal(run.code, 1);
    assert.equal(run.stdout, '');
    assert.match(run.stderr, /^imprint: error: .*run it as root \(sudo imprint demo\)\n$/);
  });
});
