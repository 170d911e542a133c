import { lookup as dnsLookup, type LookupAddress, type LookupOptions } from 'node:dns';
import { setFlagsFromString } from 'node:v8';
import { Agent, buildConnector, errors as undiciErrors, request } from 'undici';
import { ImprintError } from './errors.js';
import { isMetadataHost } from './metadata-address.js';
import { splitZone } from './zoned-url.js';

// undici parses HTTP with llhttp compiled to WebAssembly at the first connection. V8 compiles it
// with its baseline compiler, then recompiles the parser's hot functions with the optimizing one
// on background threads, and process.exit() waits for those jobs: about 0.6 s of CPU and of
// wall time at exit on a loaded host, measured, for a few small metadata answers the baseline
// code parses as fast. Baseline only, set before the first connection compiles the module.
setFlagsFromString('--liftoff-only');

// The agent's only way onto the network: one undici Agent with connect, header and body
// deadlines and a response size bound, and bodies checked to be UTF-8. Nothing here retries:
// the metadata client decides what a failure means.

export interface HttpOptions {
  maxBodyBytes: number;
  /** Sockets to one origin at most; further requests wait for one to be free. */
  maxConnections: number;
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

const guardOn = (): boolean => process.env.IMPRINT_FORBID_METADATA_ADDRESS === '1';

function refusal(host: string): ImprintError {
  return new ImprintError(`refusing to contact ${host}: IMPRINT_FORBID_METADATA_ADDRESS is set (tests use a loopback endpoint)`, 'usage');
}

/**
 * Test guard: with IMPRINT_FORBID_METADATA_ADDRESS=1 (the test suites set it), a request to a
 * cloud metadata address from this machine's own network namespace is refused before any
 * connection: every spelling of it (URL parsing makes one form of hex, octal, decimal and
 * dotted forms, ports, IPv6 zero runs; isMetadataHost knows 169.254.0.0/16, fd00:ec2::/64,
 * 100.100.100.200 and IPv4 inside IPv6), and host names that resolve to one (guardedLookup).
 */
function guard(url: URL): void {
  if (guardOn() && isMetadataHost(url.hostname)) throw refusal(url.hostname);
}

type LookupCallback = (err: NodeJS.ErrnoException | null, address: string | LookupAddress[], family?: number) => void;
type Lookup = (hostname: string, options: LookupOptions, callback: LookupCallback) => void;

/** A resolver that fails, before connect, on a name that resolves to a metadata address. */
export function guardedLookup(resolve: Lookup = dnsLookup as unknown as Lookup): Lookup {
  return (hostname, options, callback) => {
    resolve(hostname, options, (err, address, family) => {
      if (err) return callback(err, address, family);
      const addresses = Array.isArray(address) ? address.map((a) => a.address) : [address];
      const bad = addresses.find((a) => isMetadataHost(a));
      if (bad !== undefined) return callback(Object.assign(refusal(`${hostname} (${bad})`), { code: 'EIMPRINTGUARD' }), address, family);
      return callback(null, address, family);
    });
  };
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

export class HttpClient {
  private readonly agent: Agent;
  /** Link-local addresses asked for, with the interface each is reached through. */
  private readonly zones = new Map<string, string>();

  constructor(private readonly opts: HttpOptions) {
    const connector = buildConnector(guardOn() ? { timeout: 2_000, lookup: guardedLookup() } : { timeout: 2_000 });
    // undici hands the connector the host without brackets and, having parsed it with URL, without
    // a zone: a link-local address gets its interface back here (net.connect takes "fe80::1%eth0").
    const connect: buildConnector.connector = (o, callback) => {
      const zone = this.zones.get(o.hostname);
      connector(zone === undefined ? o : { ...o, hostname: `${o.hostname}%${zone}` }, callback);
    };
    this.agent = new Agent({ connect, connections: opts.maxConnections, maxResponseSize: opts.maxBodyBytes, pipelining: 1, keepAliveTimeout: 5_000 });
  }

  async send(method: 'GET' | 'PUT' | 'POST', url: string, headers: Record<string, string>, timeoutMs: number, payload?: string): Promise<HttpResponse> {
    let zoned;
    try {
      zoned = splitZone(url);
    } catch (err) {
      throw new ImprintError(`${url}: ${(err as Error).message}`);
    }
    const target = new URL(zoned.url);
    guard(target);
    if (zoned.zone !== null) {
      const bare = target.hostname.slice(1, -1);
      const known = this.zones.get(bare);
      // One client, one interface per address: the pool is keyed by origin, which has no zone.
      if (known !== undefined && known !== zoned.zone) throw new ImprintError(`${target.hostname}: asked through ${known} already, not ${zoned.zone}`);
      this.zones.set(bare, zoned.zone);
    }
    timeoutMs = Math.max(1, Math.floor(timeoutMs));
    const signal = AbortSignal.timeout(timeoutMs);
    try {
      const res = await request(target, {
        method, headers, signal, dispatcher: this.agent, headersTimeout: timeoutMs, bodyTimeout: timeoutMs,
        ...(payload === undefined ? {} : { body: payload }),
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
      if ((err as { code?: unknown }).code === 'EIMPRINTGUARD' || (err as { cause?: { code?: unknown } }).cause?.code === 'EIMPRINTGUARD') throw refusal(target.hostname);
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
