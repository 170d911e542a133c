import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parse as parseYaml } from 'yaml';
import { validateSchema } from '../support/audit-formats.js';
import { imprint } from '../support/cli.js';
import { removeScratch, scratchImage, writeConfig } from '../support/tree.js';

// `imprint config check` / `config show` on scratch trees with the bundled CLI, drop-ins in
// /etc/imprint/imprint.yaml.d, and the config's JSON Schema against the shipped example.

const REPO = path.resolve(path.dirname(new URL(import.meta.url).pathname), '../..');
const CONFIG_SCHEMA = JSON.parse(await readFile(path.join(REPO, 'packaging/schema/config.schema.json'), 'utf8')) as Record<string, never>;

describe('imprint config check / show', function () {
  let root: string;
  const main = (): string => path.join(root, 'etc/imprint/imprint.yaml');
  const dropIn = (name: string): string => path.join(root, 'etc/imprint/imprint.yaml.d', name);

  beforeEach(async () => {
    root = await mkdtemp(path.join(tmpdir(), 'imprint-config-'));
    await mkdir(path.join(root, 'etc/imprint/imprint.yaml.d'), { recursive: true });
  });
  afterEach(async () => {
    await rm(root, { recursive: true, force: true });
  });

  it('check: no file is the built-in defaults, exit 0', async () => {
    const run = await imprint(['config', 'check', '--root', root]);
    assert.equal(run.code, 0, run.stderr);
    assert.equal(run.stdout, 'config OK: no config file (the built-in defaults)\n');
  });

  it('check: every problem of every file, each with its line and a caret under the column, exit 2', async () => {
    await writeFile(main(), 'host_keys:\n  enabled: yes\nrsa_bits: 4096\n');
    await writeFile(dropIn('50-builder.yaml'), 'metadata:\n  deadline: 2 minutes\n');
    const run = await imprint(['config', 'check', '--root', root]);
    assert.equal(run.code, 2);
    assert.equal(run.stdout, '');
    assert.equal(run.stderr, [
      `imprint: ${main()}:2:12: host_keys.enabled must be true or false ("yes" is a string in YAML 1.2: write true)`,
      '    enabled: yes',
      '             ^',
      `imprint: ${main()}:3:1: unknown key "rsa_bits"; rsa_bits belongs under host_keys`,
      '  rsa_bits: 4096',
      '  ^',
      `imprint: ${dropIn('50-builder.yaml')}:2:13: metadata.deadline must be a duration such as "120s" or "500ms" (a bare number is seconds), between 1000 ms and 3600 s`,
      '    deadline: 2 minutes',
      '              ^',
      '',
    ].join('\n'));
    const json = await imprint(['config', 'check', '--root', root, '--json']);
    assert.equal(json.code, 2);
    assert.equal((JSON.parse(json.stdout) as { errors: string[] }).errors.length, 3);
  });

  it('drop-ins apply after the main file in name order; show names where each value came from', async () => {
    await writeFile(main(), 'host_keys:\n  rsa_bits: 4096\n  types: [rsa]\n');
    await writeFile(dropIn('20-late.yaml'), 'host_keys:\n  types: [ecdsa]\n');
    await writeFile(dropIn('10-early.yaml'), 'host_keys:\n  types: [ed25519]\nmetadata:\n  deadline: 90\n');
    await writeFile(dropIn('30-not-yaml.conf'), 'host_keys: [ignored, not .yaml]\n');
    const check = await imprint(['config', 'check', '--root', root]);
    assert.equal(check.code, 0, check.stderr);
    const show = await imprint(['config', 'show', '--root', root]);
    assert.equal(show.code, 0, show.stderr);
    assert.match(show.stdout, new RegExp(`^ {2}types: \\[ecdsa\\] +# ${dropIn('20-late.yaml')}:2$`, 'm'));
    assert.match(show.stdout, new RegExp(`^ {2}rsa_bits: 4096 +# ${main()}:2$`, 'm'));
    assert.match(show.stdout, new RegExp(`^ {2}deadline: 90s +# ${dropIn('10-early.yaml')}:4$`, 'm'), 'a bare number is shown with its unit');
    assert.match(show.stdout, /^ {2}request_timeout: 2s +# default$/m);
    const json = JSON.parse((await imprint(['config', 'show', '--root', root, '--json'])).stdout) as { files: string[]; config: { host_keys: { types: string[] } }; origins: Record<string, string> };
    assert.deepEqual(json.files, [main(), dropIn('10-early.yaml'), dropIn('20-late.yaml')]);
    assert.deepEqual(json.config.host_keys.types, ['ecdsa']);
    assert.equal(json.origins['host_keys.types'], `${dropIn('20-late.yaml')}:2`);
    // boot reads the same layers: the drop-in's key type is the one it would generate.
    const boot = await imprint(['boot', '--root', root, '--dry-run']);
    assert.match(boot.stdout, /would generate ecdsa/);
    assert.doesNotMatch(boot.stdout, /would generate (ed25519|rsa)/);
  });

  it('a bad drop-in stops boot with exit 2, naming the drop-in', async () => {
    await writeFile(dropIn('50-builder.yaml'), 'passwords:\n  enabled: no\n');
    const boot = await imprint(['boot', '--root', root, '--dry-run']);
    assert.equal(boot.code, 2);
    assert.match(boot.stderr, new RegExp(`${dropIn('50-builder.yaml')}:2:12: passwords\\.enabled must be true or false`));
  });

  it('check: an sshd.settings entry the image\'s sshd rejects is an error at its line, with a caret; an accepted one is fine', async () => {
    const image = await scratchImage();
    try {
      await writeConfig(image, 'sshd:\n  settings:\n    X11Forwarding: "no"\n    NoSuchOption: "yes"\n');
      const run = await imprint(['config', 'check', '--root', image]);
      assert.equal(run.code, 2, run.stdout + run.stderr);
      assert.match(run.stderr, /imprint\.yaml:4:5: sshd rejects NoSuchOption yes/);
      assert.match(run.stderr, /\n {2} {4}NoSuchOption: "yes"\n {2} {4}\^/);
      assert.doesNotMatch(run.stderr, /X11Forwarding/);
      await writeConfig(image, 'sshd:\n  settings:\n    X11Forwarding: "no"\n');
      const good = await imprint(['config', 'check', '--root', image]);
      assert.equal(good.code, 0, good.stderr);
    } finally {
      await removeScratch(image);
    }
  });

  it('usage: config needs check or show', async () => {
    const run = await imprint(['config']);
    assert.equal(run.code, 2);
    assert.match(run.stderr, /config needs check or show/);
    assert.match((await imprint(['config', 'chek'])).stderr, /unknown config action "chek" \(did you mean "check"\?\)/);
  });

  it('the config JSON Schema accepts the shipped example with every setting uncommented, and refuses what check refuses', async () => {
    const text = await readFile(path.join(REPO, 'packaging/imprint.yaml.example'), 'utf8');
    const uncommented = text.split('\n').filter((l) => !l.startsWith('##')).map((l) => l.replace(/^# /, '')).join('\n');
    assert.deepEqual(validateSchema(CONFIG_SCHEMA, parseYaml(uncommented)), []);
    assert.deepEqual(validateSchema(CONFIG_SCHEMA, parseYaml(text)), []);
    for (const bad of ['host_keys:\n  enabled: yes\n', 'rsa_bits: 4096\n', 'host_keys:\n  rsa_bits: 1024\n', 'metadata:\n  deadline: 2 minutes\n', 'default_user:\n  groups: [adm]\n']) {
      assert.notDeepEqual(validateSchema(CONFIG_SCHEMA, parseYaml(bad)), [], bad);
      await writeFile(main(), bad);
      assert.equal((await imprint(['config', 'check', '--root', root])).code, 2, bad);
    }
  });
});
