// Bundles agent/main.ts and its dependencies into one CommonJS file (dist/imprint.cjs): the
// input of the single binary, and what the tests run, so they test what ships.
import { build } from 'esbuild';
import { readFile } from 'node:fs/promises';

const pkg = JSON.parse(await readFile(new URL('../package.json', import.meta.url), 'utf8'));
await build({
  entryPoints: [new URL('../agent/main.ts', import.meta.url).pathname],
  outfile: new URL('../dist/imprint.cjs', import.meta.url).pathname,
  bundle: true,
  platform: 'node',
  target: 'node20',
  format: 'cjs',
  banner: { js: '#!/usr/bin/env node' },
  define: { IMPRINT_VERSION: JSON.stringify(pkg.version) },
  legalComments: 'none',
  logLevel: 'warning',
});
