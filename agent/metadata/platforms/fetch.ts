import type { MetadataConfig } from '../../config.js';
import { ImprintError } from '../../os/errors.js';
import { BodyError, type HttpResponse } from '../../os/http.js';
import type { Deadline } from '../deadline.js';
import { RetryingHttp } from '../retrying-http.js';
import type { Ec2Hooks } from '../ec2.js';

// The HTTP side every network dialect shares: one bounded client (agent/os/http.ts: size
// limit, UTF-8, per-request timeout), retries of transient failures and 5xx answers with
// backoff until the phase's deadline, and the dialect's required headers on every request.

export type Hooks = Ec2Hooks;

export interface Request {
  method?: 'GET' | 'PUT' | 'POST';
  headers?: Record<string, string>;
  body?: string;
  /** Another base URL than the service's (Azure's wireserver). */
  base?: string;
}

export class PlatformHttp {
  private readonly http: RetryingHttp;

  constructor(
    readonly base: string,
    private readonly config: MetadataConfig,
    private readonly deadline: Deadline,
    private readonly hooks: Hooks,
    /** Headers the dialect requires on every request (Metadata-Flavor: Google, Metadata: true). */
    private readonly always: Record<string, string> = {},
  ) {
    // A dialect's reads are a handful of documents: a few sockets, as for EC2's key fan-out.
    this.http = new RetryingHttp({ maxBodyBytes: config.maxBodyBytes, maxConnections: 4, requestTimeoutMs: config.requestTimeoutMs }, hooks);
  }

  async close(): Promise<void> {
    await this.http.close();
  }

  /** One request, retried while the failure is transient (no answer, 5xx), until the deadline. */
  async send(path: string, req: Request = {}): Promise<HttpResponse> {
    return this.http.send(req.method ?? 'GET', req.base ?? this.base, path, { ...this.always, ...req.headers }, this.deadline, { body: req.body });
  }

  /** The body of a 200; null on 404; anything else is an error naming the path. */
  async get(path: string, req: Request = {}): Promise<string | null> {
    const res = await this.send(path, req);
    if (res.status === 200) return res.body;
    if (res.status === 404) return null;
    throw new ImprintError(`${path}: HTTP ${res.status}${res.status === 400 || res.status === 403 ? ' (the service refused the request)' : ''}`);
  }

  /** A value we can do without: a body too large or not UTF-8 is one rejected line, not a failed phase. */
  async optional(path: string, rejected: string[], req: Request = {}): Promise<string | null> {
    try {
      return await this.get(path, req);
    } catch (err) {
      if (!(err instanceof BodyError)) throw err;
      rejected.push(err.message);
      return null;
    }
  }

  /** A JSON document (an object); errors name the path. */
  async json(path: string, req: Request = {}): Promise<Record<string, unknown> | null> {
    const text = await this.get(path, req);
    if (text === null) return null;
    return parseObject(text, path);
  }
}

export function parseObject(text: string, where: string): Record<string, unknown> {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    throw new ImprintError(`${where}: not JSON: ${(err as Error).message}`);
  }
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) throw new ImprintError(`${where}: not a JSON object`);
  return doc as Record<string, unknown>;
}
