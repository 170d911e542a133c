import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { imprint } from '../support/cli.js';

// The Packer template's default image gets a non-root login user: its provisioner line, run
// as written (in a bubblewrap sandbox whose /etc/imprint is a scratch directory), writes a
// drop-in that imprint reads as default_user.

const exec = promisify(execFile);
const TEMPLATE = path.resolve(path.dirname(new URL(import.meta.url).pathname), '../../packaging/packer/imprint.pkr.hcl');

describe('the Packer template', function () {
  let tree: string;
  beforeEach(async () => {
    tree = await mkdtemp(path.join(tmpdir(), 'imprint-packer-'));
    await mkdir(path.join(tree, 'etc/imprint'), { recursive: true });
  });
  afterEach(async () => {
    await rm(tree, { recursive: true, force: true });
  });

  it('defaults to a non-root login user, written as a drop-in that config check accepts', async () => {
    const hcl = await readFile(TEMPLATE, 'utf8');
    const login = /variable "login_user" \{[^}]*default\s+= "([^"]*)"/.exec(hcl);
    assert.equal(login?.[1], 'admin', 'the default login user');
    assert.match(hcl, /"LOGIN_USER=\$\{var\.login_user\}"/);
    // The provisioner line, as an HCL string literal (its escapes are JSON's).
    const literal = /^\s*("if \[ -n \\"\$LOGIN_USER\\" \].*"),$/m.exec(hcl)?.[1];
    assert.ok(literal, 'the provisioner line that writes the drop-in');
    const command = JSON.parse(literal) as string;
    await exec('bwrap', ['--ro-bind', '/', '/', '--tmpfs', '/etc', '--bind', path.join(tree, 'etc/imprint'), '/etc/imprint', '--dev', '/dev', '--',
      'sh', '-eu', '-c', command], { env: { PATH: process.env.PATH, LOGIN_USER: 'admin' } });
    const show = await imprint(['config', 'show', '--root', tree, '--json']);
    assert.equal(show.code, 0, show.stderr);
    const json = JSON.parse(show.stdout) as { config: { default_user: { name: string; sudo: string } | null }; origins: Record<string, string> };
    assert.equal(json.config.default_user?.name, 'admin');
    assert.equal(json.origins.default_user, `${path.join(tree, 'etc/imprint/imprint.yaml.d/50-packer-login-user.yaml')}:1`);
  });
});
