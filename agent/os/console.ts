import { appendFileSync } from 'node:fs';

// Operator output: one line per action. Under systemd, stdout goes to the journal and the
// console (so the host key fingerprint block reaches the serial console). With --json the
// human lines move to stderr and stdout carries only the JSON report.

export interface ConsoleOptions {
  json: boolean;
  verbose: boolean;
  /** Prefix lines with syslog priorities (<4>) that journald understands. */
  journal?: boolean;
  /** Lines for a person's terminal (the demo): each line made to fit, blocks shortened. */
  screen?: { fit(line: string): string[]; elide(line: string): string; paint(priority: number, line: string): string };
}

export class Console {
  private readonly stream: NodeJS.WritableStream;

  constructor(private readonly opts: ConsoleOptions) {
    this.stream = opts.json ? process.stderr : process.stdout;
  }

  private write(priority: number, text: string): void {
    // The journal names the program itself ("imprint[123]: "): no second "imprint: ".
    if (this.opts.screen) {
      const screen = this.opts.screen;
      this.stream.write(`${screen.fit(`imprint: ${text}`).map((l) => screen.paint(priority, l)).join('\n')}\n`);
      return;
    }
    this.stream.write(this.opts.journal ? `<${priority}>${text}\n` : `imprint: ${text}\n`);
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

  /**
   * Verbatim lines (the host key blocks): tools grep the console for these exact markers, so
   * they must appear once and unprefixed. Under systemd, stdout reaches the console through
   * the journal, which prefixes every line: the block goes to /dev/console as it is, as
   * cloud-init does, and to the journal only when there is no console to write to.
   */
  block(lines: string[]): void {
    if (this.opts.journal) {
      try {
        appendFileSync(process.env.IMPRINT_TEST_CONSOLE ?? '/dev/console', `${lines.join('\r\n')}\r\n`);
        return;
      } catch {
        /* no console (a container without one): the journal gets the block */
      }
    }
    const screen = this.opts.screen;
    this.stream.write(`${(screen ? lines.map((l) => screen.elide(l)) : lines).join('\n')}\n`);
  }
}
