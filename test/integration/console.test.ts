import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { imprint } from '../support/cli.js';
import { removeScratch, scratchImage } from '../support/tree.js';

// What reaches the journal and the console under systemd (JOURNAL_STREAM set): lines without a
// second "imprint: " (the journal prints "imprint[pid]: " itself), and the host key blocks
// once, unprefixed, on the console. The console is a scratch file here (IMPRINT_TEST_CONSOLE),
// never this machine's /dev/console.

describe('console and journal output under systemd', function () {
  let root: string;
  let dir: string;
  beforeEach(async () => {
    root = await scratchImage();
    dir = await mkdtemp(path.join(tmpdir(), 'imprint-console-'));
  });
  afterEach(async () => {
    await removeScratch(root);
    await rm(dir, { recursive: true, force: true });
  });

  it('journal lines carry a priority and no doubled prefix; the blocks go to the console once, whole, with RSA', async () => {
    const consoleFile = path.join(dir, 'console');
    await writeFile(consoleFile, '');
    const run = await imprint(['boot', '--root', root], { JOURNAL_STREAM: '8:12345', IMPRINT_TEST_CONSOLE: consoleFile });
    assert.equal(run.code, 0, run.stderr);
    const lines = run.stdout.trimEnd().split('\n');
    assert.deepEqual(lines.filter((l) => !/^<[3-7]>[a-z-]+: /.test(l)), [], 'every journal line is "<priority>scope: message"');
    assert.doesNotMatch(run.stdout, /imprint: /);
    assert.doesNotMatch(run.stdout, /-----BEGIN SSH HOST KEY/, 'the blocks are not in the journal when the console takes them');
    const consoleText = await readFile(consoleFile, 'utf8');
    assert.equal(consoleText.match(/-----BEGIN SSH HOST KEY FINGERPRINTS-----/g)?.length, 1);
    assert.equal(consoleText.match(/-----BEGIN SSH HOST KEY KEYS-----/g)?.length, 1);
    assert.match(consoleText, /^3072 SHA256:\S+ root@demo-image \(RSA\)\r$/m, 'the one block has the late RSA key');
    assert.match(consoleText, /^ssh-rsa AAAA\S+\r$/m);
  });

  it('with no console to write to, the journal gets the block once', async () => {
    const run = await imprint(['boot', '--root', root], { JOURNAL_STREAM: '8:12345', IMPRINT_TEST_CONSOLE: path.join(dir, 'missing-dir/console') });
    assert.equal(run.code, 0, run.stderr);
    assert.equal(run.stdout.match(/-----BEGIN SSH HOST KEY FINGERPRINTS-----/g)?.length, 1);
  });
});
