import { Agent, errors as undiciErrors, request } from 'undici';
import { ImprintError } from './errors.js';

// The agent's only way onto the network: one undici Agent with connect, header and body
// deadlines and a response size bound, and bodies checked to be UTF-8. Nothing here retries:
// the metadata client decides what a failure means.

export interface HttpOptions {
  maxBodyBytes: number;
}

export interface HttpResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

/** A body we will not use (too large, not UTF-8): a problem with that value, not the service. */
export class BodyError extends ImprintError {}

/** A failure worth retrying: no connection, no route, a timeout. */
export class TransientHttpError extends ImprintError {
  constructor(message: string) {
    super(message, 'command');
    this.name = 'TransientHttpError';
  }
}

const LINK_LOCAL_METADATA = new Set(['169.254.169.254', '[fd00:ec2::254]']);

/**
 * Test guard: with IMPRINT_FORBID_METADATA_ADDRESS=1 (the test suites set it), a request to
 * the real metadata address from this machine's own network namespace is refused outright.
 */
function guard(url: URL): void {
  if (process.env.IMPRINT_FORBID_METADATA_ADDRESS === '1' && LINK_LOCAL_METADATA.has(url.hostname)) {
    throw new ImprintError(`refusing to contact ${url.hostname}: IMPRINT_FORBID_METADATA_ADDRESS is set (tests use a loopback endpoint)`, 'usage');
  }
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

export class HttpClient {
  private readonly agent: Agent;

  constructor(private readonly opts: HttpOptions) {
    this.agent = new Agent({ connect: { timeout: 2_000 }, maxResponseSize: opts.maxBodyBytes, pipelining: 1, keepAliveTimeout: 5_000 });
  }

  async send(method: 'GET' | 'PUT', url: string, headers: Record<string, string>, timeoutMs: number): Promise<HttpResponse> {
    const target = new URL(url);
    guard(target);
    timeoutMs = Math.max(1, Math.floor(timeoutMs));
    const signal = AbortSignal.timeout(timeoutMs);
    try {
      const res = await request(target, {
        method, headers, signal, dispatcher: this.agent, headersTimeout: timeoutMs, bodyTimeout: timeoutMs,
      });
      const chunks: Buffer[] = [];
      let size = 0;
      for await (const chunk of res.body) {
        size += (chunk as Buffer).length;
        if (size > this.opts.maxBodyBytes) {
          res.body.destroy();
          throw new BodyError(`${target.pathname}: response larger than ${this.opts.maxBodyBytes} bytes`);
        }
        chunks.push(chunk as Buffer);
      }
      let body: string;
      try {
        body = utf8.decode(Buffer.concat(chunks));
      } catch {
        throw new BodyError(`${target.pathname}: response is not valid UTF-8`);
      }
      return { status: res.statusCode, headers: res.headers, body };
    } catch (err) {
      if (err instanceof ImprintError) throw err;
      if (err instanceof undiciErrors.ResponseExceededMaxSizeError) throw new BodyError(`${target.pathname}: response larger than ${this.opts.maxBodyBytes} bytes`);
      const e = err as Error & { code?: unknown; cause?: { code?: unknown } };
      const timedOut = ['AbortError', 'TimeoutError', 'HeadersTimeoutError', 'BodyTimeoutError', 'ConnectTimeoutError'].includes(e.name);
      const code = typeof e.code === 'string' ? e.code : typeof e.cause?.code === 'string' ? e.cause.code : e.name;
      throw new TransientHttpError(`${method} ${target.pathname}: ${timedOut ? `no answer within ${timeoutMs} ms` : failureInWords(code)}`);
    }
  }

  async close(): Promise<void> {
    await this.agent.close();
  }
}

/** Network failures in an operator's words: the HTTP library's error codes mean nothing on a console. */
const FAILURES: Record<string, string> = {
  UND_ERR_SOCKET: 'the connection was closed without an answer',
  UND_ERR_CLOSED: 'the connection was closed without an answer',
  ECONNRESET: 'the connection was reset',
  ECONNREFUSED: 'connection refused',
  EHOSTUNREACH: 'host unreachable',
  ENETUNREACH: 'network unreachable',
  EADDRNOTAVAIL: 'no address to connect from (network not up?)',
  EPIPE: 'the connection was closed while sending',
};

export function failureInWords(code: string): string {
  return FAILURES[code] ?? (code.startsWith('UND_ERR_') || code.endsWith('Error') ? 'the HTTP exchange failed' : code);
}
