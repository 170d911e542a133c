import { appendFileSync } from 'node:fs';

// Operator output: one line per action. Under systemd, stdout goes to the journal and the
// console (so the host key fingerprint block reaches the serial console). With --json the
// human lines move to stderr and stdout carries only the JSON report.

export interface ConsoleOptions {
  json: boolean;
  verbose: boolean;
  /** Prefix lines with syslog priorities (<4>) that journald understands. */
  journal?: boolean;
}

export class Console {
  private readonly stream: NodeJS.WritableStream;

  constructor(private readonly opts: ConsoleOptions) {
    this.stream = opts.json ? process.stderr : process.stdout;
  }

  private write(priority: number, text: string): void {
    const prefix = this.opts.journal ? `<${priority}>` : '';
    this.stream.write(`${prefix}imprint: ${text}\n`);
  }

  info(scope: string, message: string): void {
    this.write(6, `${scope}: ${message}`);
  }

  warn(scope: string, message: string): void {
    this.write(4, `${scope}: warning: ${message}`);
  }

  error(scope: string, message: string): void {
    this.write(3, `${scope}: error: ${message}`);
  }

  detail(scope: string, message: string): void {
    if (this.opts.verbose) this.write(7, `${scope}: ${message}`);
  }

  /** Verbatim lines (the fingerprint block): tools grep the console for these exact markers. */
  block(lines: string[]): void {
    this.stream.write(`${lines.join('\n')}\n`);
    // Under systemd the journal prefixes every line it forwards to the console; the block is
    // also written to /dev/console as it is, as cloud-init does, for tools that parse it.
    if (this.opts.journal) {
      try {
        appendFileSync('/dev/console', `${lines.join('\r\n')}\r\n`);
      } catch {
        /* no console (a container without one): the journal copy is there */
      }
    }
  }
}
