import { ImprintError } from '../os/errors.js';
import { HttpClient, TransientHttpError, type HttpResponse } from '../os/http.js';
import { delay, type Deadline } from './deadline.js';
import type { Ec2Hooks } from './ec2.js';

// The retry loop every metadata dialect shares (EC2 and the other platforms): one bounded
// client, transient failures and 5xx answers retried with backoff until the deadline, and a
// per-request timeout that grows when the service is slower than configured, so a slow service
// still answers.

export interface RetryOptions {
  body?: string;
  /** The phase's deadline, reported to `waiting` (defaults to the request's own deadline). */
  phase?: Deadline;
  /** The error for an expired deadline (default: an ImprintError with the message). */
  expired?: (message: string) => Error;
}

export class RetryingHttp {
  private readonly http: HttpClient;
  private timeoutMs: number;

  constructor(opts: { maxBodyBytes: number; maxConnections: number; requestTimeoutMs: number }, private readonly hooks: Ec2Hooks) {
    this.http = new HttpClient({ maxBodyBytes: opts.maxBodyBytes, maxConnections: opts.maxConnections });
    this.timeoutMs = opts.requestTimeoutMs;
  }

  async close(): Promise<void> {
    await this.http.close();
  }

  /** `method base+path`, retried while the failure is transient (no answer, 5xx), until `deadline`. */
  async send(method: 'GET' | 'PUT' | 'POST', base: string, path: string, headers: Record<string, string>, deadline: Deadline, opts: RetryOptions = {}): Promise<HttpResponse> {
    let lastProblem = 'no attempt made';
    for (let attempt = 0; ; attempt += 1) {
      if (deadline.expired) {
        const seconds = deadline.totalMs / 1000;
        const message = `metadata service at ${base} gave no usable answer within ${Number.isInteger(seconds) ? seconds : seconds.toFixed(1)} s (last: ${lastProblem})`;
        throw opts.expired ? opts.expired(message) : new ImprintError(message);
      }
      const started = performance.now();
      try {
        const res = await this.http.send(method, `${base}${path}`, headers, Math.min(this.timeoutMs, deadline.remaining()), opts.body);
        this.hooks.log?.(`${method} ${path} ${res.status} ${Math.round(performance.now() - started)} ms`);
        if (res.status < 500) return res;
        lastProblem = `${method} ${path}: HTTP ${res.status}`;
      } catch (err) {
        if (!(err instanceof TransientHttpError)) throw err;
        lastProblem = err.message;
        if (/no answer within/.test(err.message)) this.timeoutMs = Math.min(this.timeoutMs * 2, 60_000);
        this.hooks.log?.(`${method} ${path} failed: ${err.message}`);
      }
      const wait = deadline.backoffMs(attempt);
      this.hooks.waiting?.(`waiting for the metadata service (${lastProblem})`, opts.phase ?? deadline);
      await delay(wait);
    }
  }
}
