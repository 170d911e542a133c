// Link-local IPv6 service addresses (OpenStack's fe80::a9fe:a9fe) only mean something with the
// interface they are reached through. URLs write that as RFC 6874's zone, "[fe80::1%25eth0]",
// which WHATWG URL parsing (Node's URL, undici) refuses. The zone is taken out here, the rest
// parsed as usual, and the HTTP client connects with the zone (http.ts).

// An interface name (at most 15 bytes, IFNAMSIZ) or index; nothing that could change the URL.
const ZONE = /^[A-Za-z0-9_.@-]{1,15}$/;
const ZONED = /^(https?:\/\/\[)(fe[89ab][0-9a-f]?:[0-9a-f:]*)%25([^\]]*)(\].*)$/i;

export interface ZonedUrl {
  /** The URL without its zone (parseable by URL). */
  url: string;
  /** The interface of a link-local address, or null. */
  zone: string | null;
}

/** Splits "http://[fe80::a9fe:a9fe%25eth0]:80" into the URL without the zone and "eth0"; throws on a bad zone. */
export function splitZone(text: string): ZonedUrl {
  const m = ZONED.exec(text);
  if (!m) return { url: text, zone: null };
  const zone = m[3] as string;
  if (!ZONE.test(zone)) throw new Error(`the zone "${zone.slice(0, 20)}" is not an interface name`);
  return { url: `${m[1]}${m[2]}${m[4]}`, zone };
}

/** A link-local IPv6 URL with its zone: what a platform module gives when it asks through one interface. */
export function zonedUrl(address: string, zone: string): string {
  if (!ZONE.test(zone)) throw new Error(`the zone "${zone.slice(0, 20)}" is not an interface name`);
  return `http://[${address}%25${zone}]`;
}
