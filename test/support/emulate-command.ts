import { emulateCommand } from '../../agent/commands/emulate.js';

/**
 * Runs `imprint emulate ARGV` in this process; `whileRunning` gets the URL it says it listens
 * on, and the emulator is stopped (as by Ctrl-C) when it returns.
 */
export async function runEmulateCommand(argv: string[], whileRunning?: (base: string) => Promise<void>): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const stop = new AbortController();
  let listening: (url: string) => void = () => undefined;
  const url = new Promise<string>((resolve) => { listening = resolve; });
  const code = emulateCommand(argv, {
    out: (t) => {
      out += t;
      const m = /^emulate: listening on (\S+)$/m.exec(out);
      if (m) listening(m[1] as string);
    },
    err: (t) => { err += t; },
    stop: stop.signal,
  });
  if (whileRunning) {
    const base = await Promise.race([url, code.then(() => '')]);
    try {
      if (base) await whileRunning(base);
    } finally {
      stop.abort();
    }
  }
  return { code: await code, out, err };
}
