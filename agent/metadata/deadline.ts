import { randomInt } from 'node:crypto';

/** One overall deadline for the network phase, and the backoff between attempts within it. */
export class Deadline {
  readonly at: number;

  constructor(readonly totalMs: number, private readonly now: () => number = () => performance.now()) {
    this.at = now() + totalMs;
  }

  remaining(): number {
    return Math.max(0, this.at - this.now());
  }

  get expired(): boolean {
    return this.remaining() <= 0;
  }

  /** Exponential backoff with full jitter (100 ms doubling to 2 s), never past the deadline. */
  backoffMs(attempt: number): number {
    const cap = Math.min(2_000, 100 * 2 ** Math.min(attempt, 10));
    return Math.min(this.remaining(), randomInt(Math.max(1, Math.floor(cap / 2)), cap + 1));
  }
}

/** The rest of a deadline, which can be ended early: the losers of a race between addresses stop at once. */
export class StoppableDeadline extends Deadline {
  private stopped = false;

  constructor(parent: Deadline) {
    super(parent.remaining());
  }

  stop(): void {
    this.stopped = true;
  }

  override remaining(): number {
    return this.stopped ? 0 : super.remaining();
  }
}

/** Resolves after ms; with unref, the timer alone does not keep the process alive (a race's loser). */
export function delay(ms: number, opts: { unref?: boolean } = {}): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    if (opts.unref) timer.unref();
  });
}
