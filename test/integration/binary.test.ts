import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { readdir, readFile, realpath, stat } from 'node:fs/promises';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { HELP } from '../../agent/cli/help.js';
import { ed25519Line } from '../../agent/metadata/emulator/keys.js';
import { VERSION } from '../../agent/version.js';
import { hostKeyPairs } from '../support/checks.js';
import { DEMO_USER, FAST_KEYS_CONFIG, removeScratch, scratchImage, writeConfig } from '../support/tree.js';

// The single executable (npm run build:binary → dist/imprint-linux-<arch>, Node 24 inside) run
// as it ships: no node, no node_modules. Skipped when it has not been built; under CI it must
// have been (.ci/run builds it before the tests).

const REPO = fileURLToPath(new URL('../..', import.meta.url));
const ARCH = process.arch === 'arm64' ? 'arm64' : 'x64';
const BINARY = fileURLToPath(new URL(`../../dist/imprint-linux-${ARCH}`, import.meta.url));
const PACKAGE = JSON.parse(await readFile(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
/** The help text as the bundle has it: the version is filled in at bundle time. */
const HELP_TEXT = HELP.replaceAll(VERSION, PACKAGE.version);
const CI = Boolean(process.env.CI) && !/^(0|false|no)$/i.test(process.env.CI ?? '');

interface Run {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Runs file with args and a small, node-free environment; never throws on a non-zero exit. */
function run(file: string, args: string[], env: NodeJS.ProcessEnv = {}): Promise<Run> {
  return new Promise((resolve) => {
    execFile(file, args, { env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin', IMPRINT_FORBID_METADATA_ADDRESS: '1', ...env }, maxBuffer: 16 * 1024 * 1024 }, (err, stdout, stderr) => {
      const e = err as (NodeJS.ErrnoException & { code?: number | string; signal?: NodeJS.Signals }) | null;
      resolve({ code: e ? (typeof e.code === 'number' ? e.code : null) : 0, signal: e?.signal ?? null, stdout, stderr });
    });
  });
}

/** The shared libraries `ldd` says the binary loads: [path as the loader asks for it, the file it is]. */
async function sharedLibraries(): Promise<[string, string][]> {
  const { stdout } = await run('ldd', [BINARY]);
  assert.doesNotMatch(stdout, /not found/, `ldd ${BINARY}:\n${stdout}`);
  const paths = [...stdout.matchAll(/(?:=> |^\s*)(\/\S+)/gm)].map((m) => m[1] as string);
  return Promise.all(paths.map(async (p) => [p, await realpath(p)] as [string, string]));
}

describe(`the single binary (dist/imprint-linux-${ARCH})`, function () {
  this.timeout(60_000);

  before(async function () {
    const built = await stat(BINARY).catch(() => null);
    const newer = built && (await newestSource());
    const problem = !built
      ? `${BINARY} has not been built`
      : newer && newer.mtimeMs > built.mtimeMs
        ? `${BINARY} is older than ${path.relative(REPO, newer.file)}`
        : null;
    if (!problem) return;
    if (CI) throw new Error(`${problem}: CI must run \`npm run build:binary\` before the tests`);
    process.stderr.write(`      skipped: ${problem} (npm run build:binary)\n`);
    this.skip();
  });

  it('prints the version of package.json, and nothing on stderr', async () => {
    const r = await run(BINARY, ['version']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, `imprint ${PACKAGE.version}\n`);
    assert.equal(r.stderr, '', 'no SEA warning, no rejected code cache');
    const json = await run(BINARY, ['version', '--json']);
    assert.deepEqual(JSON.parse(json.stdout), { version: PACKAGE.version });
  });

  it('prints the help text', async () => {
    const r = await run(BINARY, ['help']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, HELP_TEXT);
    const bad = await run(BINARY, ['no-such-command']);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /imprint help/);
  });

  it('ignores NODE_OPTIONS (a root agent takes no code from its environment)', async () => {
    const r = await run(BINARY, ['version'], { NODE_OPTIONS: '--require /nonexistent/preload.js --max-old-space-size=64' });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, `imprint ${PACKAGE.version}\n`);
    assert.equal(r.stderr, '');
  });

  it('boot --root: exit 0 and new host keys on a scratch demo image', async () => {
    const root = await scratchImage();
    try {
      await writeConfig(root, FAST_KEYS_CONFIG);
      const baked = new Map((await hostKeyPairs(root)).map((k) => [k.name, k.fingerprint]));
      const r = await run(BINARY, ['boot', '--root', root]);
      assert.equal(r.code, 0, `${r.stdout}\n${r.stderr}`);
      const fresh = await hostKeyPairs(root);
      for (const name of ['ssh_host_ed25519_key', 'ssh_host_ecdsa_key']) {
        const key = fresh.find((k) => k.name === name);
        assert.ok(key, `${name} exists`);
        assert.notEqual(key.fingerprint, baked.get(name), `${name} is new`);
        assert.match(r.stdout, new RegExp(key.fingerprint.replace(/[+/]/g, '\\$&')), `${name}'s fingerprint is printed`);
      }
    } finally {
      await removeScratch(root);
    }
  });

  it('needs only the C/C++ runtime: ldd lists system libraries, nothing from Node', async () => {
    const libs = await sharedLibraries();
    const names = libs.map(([p]) => p.split('/').pop() as string);
    const allowed = /^(ld-linux-(x86-64|aarch64)\.so\.\d|lib(c|m|dl|pthread|rt|gcc_s|stdc\+\+)\.so\.[\d.]+)$/;
    for (const name of names) assert.match(name, allowed, `unexpected shared library ${name}`);
    assert.ok(names.some((n) => n.startsWith('libc.so')), 'links libc');
  });

  it('runs in a sandbox holding only itself and the libraries ldd lists (no node anywhere)', async () => {
    // The root is an empty tmpfs: no /usr, no /bin, no PATH entries that exist.
    const binds = (await sharedLibraries()).flatMap(([asked, file]) => ['--ro-bind', file, asked]);
    const sandbox = [...binds, '--ro-bind', BINARY, '/imprint', '--proc', '/proc', '--dev', '/dev', '--clearenv', '--setenv', 'PATH', '/usr/bin:/bin', '--'];
    const noNode = await run('bwrap', [...sandbox, '/imprint', 'version']);
    assert.equal(noNode.code, 0, noNode.stderr);
    assert.equal(noNode.stdout, `imprint ${PACKAGE.version}\n`);
    const help = await run('bwrap', [...sandbox, '/imprint', 'help']);
    assert.equal(help.code, 0, help.stderr);
    assert.equal(help.stdout, HELP_TEXT);
  });

  it('emulate --listen 127.0.0.1:0 starts and answers a token PUT', async () => {
    const emu = await startEmulate(['--listen', '127.0.0.1:0']);
    try {
      const res = await fetch(`${emu.url}/latest/api/token`, { method: 'PUT', headers: { 'x-aws-ec2-metadata-token-ttl-seconds': '60' } });
      assert.equal(res.status, 200);
      assert.equal(res.headers.get('x-aws-ec2-metadata-token-ttl-seconds'), '60');
      assert.match(await res.text(), /^[A-Za-z0-9_-]{40,}$/);
    } finally {
      assert.deepEqual(await emu.stop(), [0, null], `emulate stops with 0 on SIGTERM: ${emu.stderr()}`);
    }
  });

  it('boot --root --metadata-url against its own emulator: the launch key arrives (HTTP client inside the binary)', async () => {
    const launchKey = ed25519Line('launch@binary-test');
    const emu = await startEmulate(['--listen', '127.0.0.1:0', '--instance-id', 'i-0b1a2b3c4d5e6f701', '--key', launchKey]);
    const root = await scratchImage();
    try {
      await writeConfig(root, `${FAST_KEYS_CONFIG}default_user:\n  name: ${DEMO_USER}\n`);
      const r = await run(BINARY, ['boot', '--root', root, '--metadata-url', emu.url, '--json']);
      assert.equal(r.code, 0, `${r.stdout}\n${r.stderr}`);
      const report = JSON.parse(r.stdout) as { metadata: { source: string; instanceId: string; protocol: string } | null };
      assert.equal(report.metadata?.source, 'ec2');
      assert.equal(report.metadata?.protocol, 'IMDSv2');
      assert.equal(report.metadata?.instanceId, 'i-0b1a2b3c4d5e6f701');
      const keys = await readFile(path.join(root, `home/${DEMO_USER}/.ssh/authorized_keys`), 'utf8');
      assert.ok(keys.includes(launchKey), keys);
    } finally {
      await removeScratch(root);
      await emu.stop();
    }
  });
});

/** `imprint emulate ARGS` from the binary; resolves once it has printed the address it listens on. */
async function startEmulate(args: string[]): Promise<{ url: string; stop(): Promise<[number | null, NodeJS.Signals | null]>; stderr(): string }> {
  const child = spawn(BINARY, ['emulate', ...args], { env: { PATH: '/usr/bin:/bin' }, stdio: ['ignore', 'pipe', 'pipe'] });
  const exited = new Promise<[number | null, NodeJS.Signals | null]>((resolve) => child.on('exit', (code, signal) => resolve([code, signal])));
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d));
  const stop = async (): Promise<[number | null, NodeJS.Signals | null]> => {
    if (child.pid !== undefined && child.exitCode === null && child.signalCode === null) process.kill(child.pid, 'SIGTERM');
    return exited;
  };
  try {
    const first = await new Promise<string>((resolve, reject) => {
      createInterface({ input: child.stdout }).once('line', resolve);
      child.once('exit', () => reject(new Error(`emulate exited before listening: ${stderr}`)));
      setTimeout(() => reject(new Error(`emulate printed no address within 10 s: ${stderr}`)), 10_000).unref();
    });
    const url = /listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(first)?.[1];
    if (!url) throw new Error(`emulate's first line does not name its address: ${first}`);
    return { url, stop, stderr: () => stderr };
  } catch (err) {
    await stop();
    throw err;
  }
}

/** The most recently modified input of the binary: agent sources, package.json, the build scripts. */
async function newestSource(): Promise<{ file: string; mtimeMs: number } | null> {
  const files = ['package.json', 'packaging/bundle.mjs', 'packaging/build-binary.mjs'].map((f) => path.join(REPO, f));
  for (const entry of await readdir(path.join(REPO, 'agent'), { recursive: true, withFileTypes: true })) {
    if (entry.isFile() && entry.name.endsWith('.ts')) files.push(path.join(entry.parentPath, entry.name));
  }
  let newest: { file: string; mtimeMs: number } | null = null;
  for (const file of files) {
    const { mtimeMs } = await stat(file);
    if (!newest || mtimeMs > newest.mtimeMs) newest = { file, mtimeMs };
  }
  return newest;
}
