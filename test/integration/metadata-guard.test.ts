import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { METADATA_SPELLINGS } from '../support/metadata-spellings.js';

// The test guard (IMPRINT_FORBID_METADATA_ADDRESS) refuses every spelling of a metadata
// address before a packet leaves. Proven in a network namespace this test creates, where the
// metadata ranges are routed on-link to a veth device: the first packet to any address there
// leaves a neighbour entry, and none appears. Nothing is sent to a metadata address from this
// machine's own namespace; in the test's namespace the device's peer answers nothing.

const SCRIPT = fileURLToPath(new URL('../support/guard-netns.ts', import.meta.url));
const REPO = fileURLToPath(new URL('../..', import.meta.url));


interface Outcome { results: Record<string, string>; after: string[]; controlResults: string[]; afterControls: string[] }

function inOwnNetns(urls: string[], controls: string[]): Promise<Outcome> {
  return new Promise((resolve, reject) => {
    execFile('unshare', ['--net', '--', process.execPath, '--import', 'tsx', SCRIPT, JSON.stringify(urls), JSON.stringify(controls)], {
      cwd: REPO, env: { PATH: process.env.PATH, IMPRINT_FORBID_METADATA_ADDRESS: '1' },
    }, (err, stdout, stderr) => (err ? reject(new Error(`${err.message}\n${stderr}`)) : resolve(JSON.parse(stdout) as Outcome)));
  });
}

describe('the metadata address guard (IMPRINT_FORBID_METADATA_ADDRESS)', function () {
  before(function () {
    if (process.getuid?.() !== 0) this.skip();
  });

  it('refuses every spelling of the metadata addresses before any packet leaves', async () => {
    const out = await inOwnNetns(METADATA_SPELLINGS, ['http://198.51.100.7', 'http://[2001:db8:1::7]']);
    for (const url of METADATA_SPELLINGS) assert.match(out.results[url] ?? '', /^refusing to contact /, `${url}: ${out.results[url]}`);
    assert.deepEqual(out.after, [], 'no packet went towards any address routed like the metadata ranges');
    // The probe sees: ordinary addresses routed the same way left their neighbour entries.
    assert.ok(out.controlResults.every((r) => !/refusing/.test(r)), out.controlResults.join('; '));
    assert.ok(out.afterControls.some((l) => l.startsWith('198.51.100.7 ')) && out.afterControls.some((l) => l.startsWith('2001:db8:1::7 ')), out.afterControls.join('; '));
  });
});
