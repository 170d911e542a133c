import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseCli } from '../../agent/cli/args.js';
import { CONFIG_CHECKS, configCommand } from '../../agent/commands/config.js';

// `imprint config check` runs every check of CONFIG_CHECKS on a config that parsed (sshd's
// verdict on sshd.settings plugs in there); a check's problems fail it with exit 2 and are
// shown with their line and caret, and a check that throws is a problem, not a crash.

async function captured(run: () => Promise<number>): Promise<{ code: number; stdout: string; stderr: string }> {
  const out: string[] = [];
  const err: string[] = [];
  const [o, e] = [process.stdout.write.bind(process.stdout), process.stderr.write.bind(process.stderr)];
  process.stdout.write = ((chunk: string) => out.push(chunk) > 0) as typeof process.stdout.write;
  process.stderr.write = ((chunk: string) => err.push(chunk) > 0) as typeof process.stderr.write;
  try {
    return { code: await run(), stdout: out.join(''), stderr: err.join('') };
  } finally {
    process.stdout.write = o;
    process.stderr.write = e;
  }
}

describe('config check: pluggable checks', () => {
  let root: string;
  beforeEach(async () => {
    root = await mkdtemp(path.join(tmpdir(), 'imprint-config-checks-'));
    await mkdir(path.join(root, 'etc/imprint'), { recursive: true });
    await writeFile(path.join(root, 'etc/imprint/imprint.yaml'), 'sshd:\n  settings:\n    MaxAuthTries: 0\n');
  });
  afterEach(async () => {
    CONFIG_CHECKS.length = 0;
    await rm(root, { recursive: true, force: true });
  });

  it('a check\'s problems make exit 2, each with its line and caret; a throwing check is reported', async () => {
    const file = path.join(root, 'etc/imprint/imprint.yaml');
    CONFIG_CHECKS.push({ name: 'sshd', run: async (_root, config) => (config.sshd.settings.MaxAuthTries === '0' ? [`${file}:3:19: sshd -T: MaxAuthTries 0 refused (stand-in for sshd's verdict)`] : []) });
    CONFIG_CHECKS.push({ name: 'broken', run: async () => { throw new Error('no sshd here'); } });
    const result = await captured(() => configCommand(parseCli(['config', 'check', '--root', root])));
    assert.equal(result.code, 2);
    assert.equal(result.stdout, '');
    assert.equal(result.stderr, [
      `imprint: ${file}:3:19: sshd -T: MaxAuthTries 0 refused (stand-in for sshd's verdict)`,
      '      MaxAuthTries: 0',
      '                    ^',
      'imprint: broken: could not check: no sshd here',
      '',
    ].join('\n'));
  });

  it('no check, or checks that find nothing: exit 0', async () => {
    CONFIG_CHECKS.push({ name: 'quiet', run: async () => [] });
    const result = await captured(() => configCommand(parseCli(['config', 'check', '--root', root])));
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, /^config OK: /);
  });
});
