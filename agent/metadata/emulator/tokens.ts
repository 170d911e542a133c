import { randomBytes } from 'node:crypto';

// IMDSv2 session tokens. Expiry is checked against the clock when a token is used, so no
// timer outlives the server; the map is bounded so a client looping on PUT cannot grow it.

export const MAX_TTL_SECONDS = 21_600;
const MAX_TOKENS = 10_000;

interface Session {
  expiresAt: number;
  gets: number;
}

export type TokenCheck = { ok: true; remainingSeconds: number } | { ok: false; why: 'unknown' | 'expired' | 'used-up' };

export class TokenStore {
  private readonly sessions = new Map<string, Session>();

  constructor(private readonly now: () => number, private readonly maxGets: number | null) {}

  /** The TTL header's value as AWS accepts it (a whole number of seconds, 1..21600), else null. */
  static ttl(header: string | string[] | undefined): number | null {
    if (typeof header !== 'string' || !/^\d{1,5}$/.test(header)) return null;
    const ttl = Number.parseInt(header, 10);
    return ttl >= 1 && ttl <= MAX_TTL_SECONDS ? ttl : null;
  }

  issue(ttlSeconds: number): string {
    if (this.sessions.size >= MAX_TOKENS) {
      const oldest = this.sessions.keys().next();
      if (!oldest.done) this.sessions.delete(oldest.value);
    }
    const token = randomBytes(40).toString('base64url');
    this.sessions.set(token, { expiresAt: this.now() + ttlSeconds * 1000, gets: 0 });
    return token;
  }

  /** Counts one GET against the token; unknown, expired or used-up tokens are refused and forgotten. */
  use(token: string): TokenCheck {
    const session = this.sessions.get(token);
    if (!session) return { ok: false, why: 'unknown' };
    const left = session.expiresAt - this.now();
    session.gets += 1;
    if (left <= 0 || (this.maxGets !== null && session.gets > this.maxGets)) {
      this.sessions.delete(token);
      return { ok: false, why: left <= 0 ? 'expired' : 'used-up' };
    }
    return { ok: true, remainingSeconds: Math.ceil(left / 1000) };
  }
}
