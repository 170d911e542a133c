// Bundles the agent into dist/imprint.cjs (what the tests run and the binary ships) and its
// heavy libraries into dist/imprint-vendor.cjs, required lazily from the first on first use.
// packaging/build-binary.mjs imports agentBuildOptions() for the single-file SEA bundle.
import { build } from 'esbuild';
import { readFile } from 'node:fs/promises';
import { pathToFileURL } from 'node:url';

const here = (p) => new URL(p, import.meta.url).pathname;
const pkg = JSON.parse(await readFile(here('../package.json'), 'utf8'));
const VENDORED = ['undici', 'pkijs', 'asn1js'];

/** Resolves `import ... from 'undici'` to a loader that requires the vendor bundle beside us. */
const vendorLoader = {
  name: 'vendor-loader',
  setup(b) {
    b.onResolve({ filter: new RegExp(`^(${VENDORED.join('|')})$`) }, (args) => ({ path: args.path, namespace: 'vendor' }));
    b.onLoad({ filter: /.*/, namespace: 'vendor' }, (args) => ({
      contents: `module.exports = require(require('node:path').join(__dirname, 'imprint-vendor.cjs'))[${JSON.stringify(args.path)}];`,
      loader: 'js',
    }));
  },
};

const common = { bundle: true, platform: 'node', target: 'node20', format: 'cjs', legalComments: 'none', logLevel: 'warning' };

/**
 * esbuild options for the agent bundle. `single: true` inlines the vendored libraries too (one
 * self-contained file, no banner), for the single executable, which can embed only one script.
 */
export function agentBuildOptions({ single = false, outfile = here('../dist/imprint.cjs'), target = common.target } = {}) {
  return {
    ...common,
    target,
    entryPoints: [here('../agent/main.ts')],
    outfile,
    ...(single ? {} : { banner: { js: '#!/usr/bin/env node' } }),
    define: { IMPRINT_VERSION: JSON.stringify(pkg.version) },
    plugins: single ? [] : [vendorLoader],
  };
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  await Promise.all([
    build(agentBuildOptions()),
    build({ ...common, entryPoints: [here('./vendor-entry.cjs')], outfile: here('../dist/imprint-vendor.cjs') }),
  ]);
}
