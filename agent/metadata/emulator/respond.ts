import type { Behaviour } from './scenarios.js';
import { TokenStore } from './tokens.js';
import type { MetadataTree } from './tree.js';

// What the service answers to one request: the IMDS rules (token PUT, token checks, paths)
// with the scenarios applied. No I/O here: the server turns an Answer into bytes.

export const TOKEN_PATH = '/latest/api/token';
export const TTL_HEADER = 'x-aws-ec2-metadata-token-ttl-seconds';
export const TOKEN_HEADER = 'x-aws-ec2-metadata-token';

export interface Asked {
  /** 1 for the first request the server received. */
  seq: number;
  method: string;
  path: string;
  ttl: string | string[] | undefined;
  token: string | string[] | undefined;
  forwardedFor: boolean;
}

export interface Answer {
  status: number;
  body: Buffer;
  headers: Record<string, string>;
  /** The scenario that shaped this answer, for the log. */
  scenario: string | null;
}

const REASONS: Record<number, string> = {
  400: 'Bad Request', 401: 'Unauthorized', 403: 'Forbidden', 404: 'Not Found', 405: 'Method Not Allowed', 503: 'Service Unavailable',
};

// AWS answers errors with this XHTML page, not an empty body; a client that takes any body
// as the value would read it as an instance id or a key, which is what the page is for.
function errorPage(status: number): Buffer {
  const title = `${status} - ${REASONS[status] ?? 'Error'}`;
  return Buffer.from(`<?xml version="1.0" encoding="iso-8859-1"?>
<!DOCTYPE html PUBLIC "-//W3C//DTD XHTML 1.0 Transitional//EN"
\t"http://www.w3.org/TR/xhtml1/DTD/xhtml1-transitional.dtd">
<html xmlns="http://www.w3.org/1999/xhtml" xml:lang="en" lang="en">
 <head>
  <title>${title}</title>
 </head>
 <body>
  <h1>${title}</h1>
 </body>
</html>
`, 'latin1');
}

const CATCH_ALL_PAGE = Buffer.from('<!DOCTYPE html>\n<html><head><title>Metadata</title></head><body><p>OK</p></body></html>\n');

function fail(status: number, scenario: string | null = null, headers: Record<string, string> = {}): Answer {
  return { status, body: errorPage(status), headers: { 'content-type': 'text/html', ...headers }, scenario };
}

function ok(body: Buffer, headers: Record<string, string> = {}, scenario: string | null = null): Answer {
  return { status: 200, body, headers: { 'content-type': 'text/plain', ...headers }, scenario };
}

export class Responder {
  private readonly tokens: TokenStore;

  constructor(private readonly tree: MetadataTree, private readonly b: Behaviour, now: () => number) {
    this.tokens = new TokenStore(now, b.tokenGets);
  }

  answer(a: Asked): Answer {
    if (this.b.disabled) return fail(403, 'disabled');
    if (a.seq <= this.b.flaky) return fail(503, 'flaky');
    if (a.method === 'PUT') {
      if (a.path === TOKEN_PATH) return this.tokenPut(a);
      if (this.b.tokenMode !== 'ignore-put') return fail(405, null, { allow: 'GET, HEAD' });
    } else if (a.method !== 'GET' && a.method !== 'HEAD') {
      return fail(405, null, { allow: 'GET, HEAD, PUT' });
    } else if (a.path === TOKEN_PATH) {
      return fail(405, null, { allow: 'PUT' });
    }
    return this.read(a);
  }

  private tokenPut(a: Asked): Answer {
    switch (this.b.tokenMode) {
      case 'v1-only-404': return fail(404, 'imdsv1-only');
      case 'v1-only-405': return fail(405, 'imdsv1-only-405', { allow: 'GET, HEAD' });
      case 'ignore-put':
        return { status: 200, body: this.b.ignoredPutBody === 'html' ? CATCH_ALL_PAGE : Buffer.alloc(0), headers: { 'content-type': 'text/html' }, scenario: 'ignore-put' };
      default: break;
    }
    // AWS refuses token requests that went through a proxy: the token must not leave the host.
    if (a.forwardedFor) return fail(403);
    const ttl = TokenStore.ttl(a.ttl);
    if (ttl === null) return fail(400);
    const token = this.tokens.issue(ttl);
    if (this.b.malformedToken) return ok(Buffer.from(`{"Token": "${token}"}\n`), { [TTL_HEADER]: String(ttl) }, 'malformed-token');
    return ok(Buffer.from(token), this.b.ttlHeader ? { [TTL_HEADER]: String(ttl) } : {}, this.b.ttlHeader ? null : 'token-no-ttl');
  }

  private read(a: Asked): Answer {
    const headers: Record<string, string> = {};
    let scenario: string | null = null;
    const tokensMatter = this.b.tokenMode === 'v1-and-v2' || this.b.tokenMode === 'v2-only';
    if (tokensMatter && a.token !== undefined) {
      // Node joins a repeated header into one string, which no token matches.
      const check = this.tokens.use(Array.isArray(a.token) ? a.token.join(',') : a.token);
      if (!check.ok) return fail(401, check.why === 'used-up' ? 'token-expiry' : null);
      if (this.b.ttlHeader) headers[TTL_HEADER] = String(check.remainingSeconds);
    } else if (this.b.tokenMode === 'v2-only') {
      return fail(401, 'imdsv2-only');
    } else if (a.token !== undefined) {
      scenario = this.b.tokenMode === 'ignore-put' ? 'ignore-put' : this.b.tokenMode === 'v1-only-405' ? 'imdsv1-only-405' : 'imdsv1-only';
    }
    const body = this.tree.lookup(a.path);
    if (body === null) return fail(404, scenario);
    if (a.path === '/latest/meta-data/instance-id' && this.b.oversizedBytes !== null) scenario = 'oversized';
    return ok(body, headers, scenario);
  }
}
