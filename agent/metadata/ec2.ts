import type { MetadataConfig } from '../config.js';
import { ImprintError } from '../os/errors.js';
import { BodyError, type HttpResponse } from '../os/http.js';
import { Deadline } from './deadline.js';
import { RetryingHttp } from './retrying-http.js';
import { INSTANCE_ID, type IdentityDocument, type InstanceMetadata, type LaunchKey } from './types.js';

// The EC2 instance metadata API, as AWS, 3DS Outscale, OpenStack and Eucalyptus serve it.
// IMDSv2 first: a session token from PUT /latest/api/token, reused, renewed on 401. A
// token-shaped 200 answer is a token, whether or not the service echoes the TTL header (some
// IMDSv2 services do not). IMDSv1 only when the service plainly has no v2 (404/405 on the PUT,
// or a PUT it ignores: a 200 whose body is a page, a listing or nothing, with no TTL header),
// never after a 401/403 or a malformed token, and never with `imdsv1: never`. 403 means the
// operator turned metadata off.

const TOKEN_TTL_SECONDS = '21600';
const TOKEN_SHAPE = /^[A-Za-z0-9+/=_.-]{1,1024}$/;

/** At most this many launch keys are read; a listing beyond it is cut and the cut is reported. */
export const MAX_LAUNCH_KEYS = 100;
/** Key requests in flight at once: a few connections, whatever the listing holds. */
export const KEY_CONCURRENCY = 4;
/** Malformed listing lines reported one by one; the rest are counted in one line. */
const MAX_REJECTED_LINES = 10;

export class MetadataDisabledError extends ImprintError {}

export interface Ec2Hooks {
  /** Called before each wait between attempts (systemd hears STATUS= and EXTEND_TIMEOUT_USEC=). */
  waiting?: (why: string, deadline: Deadline) => void;
  /** One line per request, for --verbose; never carries the token. */
  log?: (line: string) => void;
}

type Session = { kind: 'v2'; token: string } | { kind: 'v1' };

export class Ec2MetadataClient {
  private readonly http: RetryingHttp;
  /** The session every request shares; concurrent requests wait for the same token PUT. */
  private sessionStart: Promise<Session> | null = null;
  private session: Session | null = null;
  constructor(private readonly config: MetadataConfig, private readonly deadline: Deadline, private readonly hooks: Ec2Hooks = {}) {
    this.http = new RetryingHttp({ maxBodyBytes: config.maxBodyBytes, maxConnections: KEY_CONCURRENCY, requestTimeoutMs: config.requestTimeoutMs }, hooks);
  }

  get protocol(): 'IMDSv2' | 'IMDSv1' | 'none yet' {
    return this.session === null ? 'none yet' : this.session.kind === 'v2' ? 'IMDSv2' : 'IMDSv1';
  }

  async close(): Promise<void> {
    await this.http.close();
  }

  /**
   * Sends one request, retrying transient failures and 5xx answers until the deadline (the
   * phase's, or a key's share of it).
   */
  private attempt(method: 'GET' | 'PUT', path: string, headers: Record<string, string>, deadline: Deadline = this.deadline): Promise<HttpResponse> {
    const expired = (message: string): Error => (deadline === this.deadline ? new ImprintError(message) : new ShareExpiredError(message));
    return this.http.send(method, this.config.url, path, headers, deadline, { phase: this.deadline, expired });
  }

  private async startSession(): Promise<Session> {
    const res = await this.attempt('PUT', '/latest/api/token', { 'X-aws-ec2-metadata-token-ttl-seconds': TOKEN_TTL_SECONDS });
    if (res.status === 200) {
      const token = res.body.trim();
      if (TOKEN_SHAPE.test(token)) return { kind: 'v2', token };
      // A TTL header says the service speaks IMDSv2: a broken token is its fault, and no
      // reason to read the instance without one.
      if (res.headers['x-aws-ec2-metadata-token-ttl-seconds'] !== undefined) {
        throw new ImprintError('the token PUT answered 200 with a TTL header but a body that is not a token; not falling back to IMDSv1');
      }
      // A service that ignores PUT answers it like a GET: a page, a listing or nothing.
      return this.fallBack('the service ignores the token PUT');
    }
    if (res.status === 404 || res.status === 405) return this.fallBack(`the token PUT answered ${res.status}`);
    if (res.status === 403) throw new MetadataDisabledError('the metadata service answered 403: it is disabled for this instance');
    if (res.status === 401) throw new ImprintError('the metadata service refused a token (401); not falling back to IMDSv1');
    throw new ImprintError(`the token PUT answered HTTP ${res.status}`);
  }

  private fallBack(why: string): Session {
    if (this.config.imdsv1 === 'never') throw new ImprintError(`IMDSv2 is not available (${why}) and the config says imdsv1: never`);
    this.hooks.log?.(`IMDSv1: ${why}`);
    return { kind: 'v1' };
  }

  private currentSession(): Promise<Session> {
    if (!this.sessionStart) {
      const started = this.startSession();
      this.sessionStart = started;
      started.then((s) => {
        if (this.sessionStart === started) this.session = s;
      }, () => {
        if (this.sessionStart === started) this.sessionStart = null;
      });
    }
    return this.sessionStart;
  }

  /** GETs a path; null when the service answers 404 (the thing does not exist). */
  async get(path: string, deadline: Deadline = this.deadline): Promise<string | null> {
    for (let renewals = 0; renewals < 2; renewals += 1) {
      const starting = this.currentSession();
      const session = await starting;
      const headers: Record<string, string> = session.kind === 'v2' ? { 'X-aws-ec2-metadata-token': session.token } : {};
      const res = await this.attempt('GET', path, headers, deadline);
      if (res.status === 200) return res.body;
      if (res.status === 404) return null;
      if (res.status === 403) throw new MetadataDisabledError(`${path}: the metadata service answered 403: it is disabled for this instance`);
      if (res.status === 401) {
        if (session.kind === 'v1') throw new ImprintError(`${path}: the service now demands a token (401) it refused to issue`);
        // Expired or revoked: one new token (shared with any request that hit the same 401).
        if (this.sessionStart === starting) this.sessionStart = null;
        continue;
      }
      throw new ImprintError(`${path}: HTTP ${res.status}`);
    }
    throw new ImprintError(`${path}: 401 again with a fresh token`);
  }

  /**
   * Like get(), but a body we will not use, or no answer within the value's share of the
   * deadline, is one rejected value, not a failed phase.
   */
  private async getValue(path: string, rejected: string[], deadline: Deadline = this.deadline): Promise<string | null | undefined> {
    try {
      return await this.get(path, deadline);
    } catch (err) {
      if (!(err instanceof BodyError) && !(err instanceof ShareExpiredError)) throw err;
      rejected.push(err instanceof ShareExpiredError ? `${path}: ${err.message}` : err.message);
      return undefined;
    }
  }

  /**
   * Reads the listed keys with a few requests in flight, each key given its share of what is
   * left of the deadline (so one slow key cannot starve the others), keeping every key that
   * arrived.
   */
  private async readKeys(entries: readonly { index: string; name: string }[], rejected: string[]): Promise<LaunchKey[]> {
    const texts = new Array<string | null | undefined>(entries.length);
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < entries.length) {
        const i = next;
        next += 1;
        const entry = entries[i] as { index: string; name: string };
        const left = entries.length - i;
        const share = this.deadline.remaining() * Math.min(1, KEY_CONCURRENCY / left);
        texts[i] = await this.getValue(`/latest/meta-data/public-keys/${entry.index}/openssh-key`, rejected, new Deadline(share));
      }
    };
    await Promise.all(Array.from({ length: Math.min(KEY_CONCURRENCY, entries.length) }, worker));
    const keys: LaunchKey[] = [];
    entries.forEach((e, i) => {
      const text = texts[i];
      if (text === null) rejected.push(`public-keys/${e.index}: no openssh-key`);
      else if (text !== undefined) keys.push({ origin: `public-keys/${e.index}`, name: e.name, text });
    });
    return keys;
  }

  /** Everything the network phase needs, each value checked on its own. */
  async read(wants: { productCodes: boolean } = { productCodes: true }): Promise<InstanceMetadata> {
    const rejected: string[] = [];
    // One token first, then what does not depend on each other in parallel: on a slow
    // service each round trip counts, and the launch key is on the path to the first login.
    await this.currentSession();
    const [idText, listing, codesText] = await Promise.all([
      this.get('/latest/meta-data/instance-id'),
      this.get('/latest/meta-data/public-keys/'),
      wants.productCodes ? this.getValue('/latest/meta-data/product-codes', rejected) : Promise.resolve(null),
    ]);
    const id = idText?.trim() ?? '';
    if (!INSTANCE_ID.test(id)) throw new ImprintError(`instance-id ${JSON.stringify(id.slice(0, 80))} is not a valid instance id`);

    const entries = parseKeyListing(listing ?? '', rejected);
    const keys = await this.readKeys(entries, rejected);

    let productCodes: string[] | null = null;
    if (codesText !== null && codesText !== undefined) {
      productCodes = [];
      for (const code of codesText.split('\n').map((c) => c.trim()).filter(Boolean)) {
        if (/^[A-Za-z0-9._-]{1,128}$/.test(code)) productCodes.push(code);
        else rejected.push(`product-codes: ${JSON.stringify(code.slice(0, 40))} is not a product code`);
      }
    }

    const identityDocument = async (): Promise<IdentityDocument | null> => {
      const document = await this.get('/latest/dynamic/instance-identity/document');
      const pkcs7 = await this.get('/latest/dynamic/instance-identity/rsa2048');
      return document === null || pkcs7 === null ? null : { document, pkcs7: pkcs7.replace(/\s+/g, '') };
    };
    return { source: 'ec2', instanceId: id, keys, productCodes, identityDocument, rejected };
  }
}

/** The time a single value was given ran out; the phase itself may go on. */
class ShareExpiredError extends ImprintError {}

/**
 * The public-keys/ listing ("N=name" lines): each index once (the first name wins), at most
 * MAX_LAUNCH_KEYS of them; what is cut or malformed is said in `rejected`, in a bounded
 * number of lines.
 */
export function parseKeyListing(listing: string, rejected: string[]): { index: string; name: string }[] {
  const entries: { index: string; name: string }[] = [];
  const seen = new Set<string>();
  let malformed = 0;
  let repeated = 0;
  let beyondCap = 0;
  for (const line of listing.split('\n').map((l) => l.trim()).filter(Boolean)) {
    const m = /^(\d{1,4})=([^\0-\x1f\x7f]{0,255})$/.exec(line);
    if (!m) {
      malformed += 1;
      if (malformed <= MAX_REJECTED_LINES) rejected.push(`public-keys/: line ${JSON.stringify(line.slice(0, 60))} is not "N=name"`);
      continue;
    }
    const index = m[1] as string;
    if (seen.has(index)) {
      repeated += 1;
      continue;
    }
    seen.add(index);
    if (entries.length >= MAX_LAUNCH_KEYS) {
      beyondCap += 1;
      continue;
    }
    entries.push({ index, name: m[2] as string });
  }
  if (malformed > MAX_REJECTED_LINES) rejected.push(`public-keys/: ${malformed - MAX_REJECTED_LINES} more lines are not "N=name"`);
  if (repeated > 0) rejected.push(`public-keys/: ${repeated} repeated ${repeated === 1 ? 'index' : 'indexes'} read once`);
  if (beyondCap > 0) rejected.push(`public-keys/: capped: ${seen.size} keys listed, only the first ${MAX_LAUNCH_KEYS} read`);
  return entries;
}
