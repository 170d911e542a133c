import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export const CLI = fileURLToPath(new URL('../../dist/imprint.cjs', import.meta.url));

export interface CliRun {
  code: number;
  stdout: string;
  stderr: string;
  signal: NodeJS.Signals | null;
}

/** Runs the bundled CLI (what ships) with an argument array; never throws on a non-zero exit. */
export function imprint(args: string[], env: NodeJS.ProcessEnv = {}): Promise<CliRun> {
  return new Promise((resolve) => {
    execFile(process.execPath, [CLI, ...args], { env: { PATH: process.env.PATH, IMPRINT_FORBID_METADATA_ADDRESS: '1', ...env }, maxBuffer: 16 * 1024 * 1024 }, (err, stdout, stderr) => {
      const e = err as (NodeJS.ErrnoException & { code?: number | string; signal?: NodeJS.Signals }) | null;
      resolve({ code: typeof e?.code === 'number' ? e.code : e ? -1 : 0, stdout, stderr, signal: e?.signal ?? null });
    });
  });
}
