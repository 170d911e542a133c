import { isIP } from 'node:net';
import { ImprintError } from '../../os/errors.js';
import { isMetadataHost } from '../../os/metadata-address.js';
import { PlatformHttp } from './fetch.js';
import type { PlatformContext } from './provider.js';

// OpenNebula's OneGate ready report, sent when the context asks for it (REPORT_READY=YES):
// PUT ONEGATE_ENDPOINT/vm with the VM's token (token.txt beside context.sh) in X-ONEGATE-TOKEN,
// its VMID in X-ONEGATE-VMID and the body READY=YES, as OpenNebula's own context packages do.
// The only address contacted is the one the context names, as an IP literal (no DNS at boot),
// and never a cloud metadata address: a context that points OneGate there is refused.

export interface OneGateRequest {
  endpoint: string;
  token: string;
  vmid: string;
}

const VMID = /^\d{1,10}$/;
// OneGate tokens are printable without spaces; anything else cannot go into a header as-is.
const TOKEN = /^[\x21-\x7e]{1,512}$/;

/** The endpoint as a base URL (no trailing slash), or the reason it cannot be used. */
export function oneGateBase(endpoint: string): string | { problem: string } {
  let url: URL;
  try {
    url = new URL(endpoint.trim());
  } catch {
    return { problem: `ONEGATE_ENDPOINT ${JSON.stringify(endpoint.slice(0, 80))} is not a URL` };
  }
  if (url.protocol !== 'http:') return { problem: `ONEGATE_ENDPOINT: only http:// is supported, not ${url.protocol}` };
  if (url.username || url.password || url.search || url.hash) return { problem: 'ONEGATE_ENDPOINT: credentials, a query or a fragment in the URL are not accepted' };
  const host = url.hostname.replace(/^\[(.*)\]$/, '$1');
  if (isIP(host) === 0) return { problem: `ONEGATE_ENDPOINT: ${JSON.stringify(url.hostname)} is not an IP address (no DNS at boot)` };
  if (isMetadataHost(host)) return { problem: `ONEGATE_ENDPOINT: ${url.hostname} is a cloud metadata address, not OneGate; refused` };
  return `${url.origin}${url.pathname.replace(/\/+$/, '')}`;
}

/** Which OneGate request the context asks for; null when it asks for none. */
export function oneGateRequest(vars: ReadonlyMap<string, string>, token: string | null, problems: string[]): OneGateRequest | null {
  if ((vars.get('REPORT_READY') ?? '').trim().toUpperCase() !== 'YES') return null;
  const endpoint = vars.get('ONEGATE_ENDPOINT')?.trim();
  const vmid = vars.get('VMID')?.trim() ?? '';
  const missing = [!endpoint && 'ONEGATE_ENDPOINT', !VMID.test(vmid) && 'a numeric VMID', token === null && 'token.txt'].filter(Boolean);
  if (missing.length > 0) {
    problems.push(`REPORT_READY=YES, but the context has no ${missing.join(', ')}: OneGate not told`);
    return null;
  }
  const t = (token as string).trim();
  if (!TOKEN.test(t)) {
    problems.push('token.txt: not a OneGate token (empty, too long, or with spaces or control characters): OneGate not told');
    return null;
  }
  return { endpoint: endpoint as string, token: t, vmid };
}

/**
 * Sends READY=YES. An offline tree (--root) is not the VM: it reports only to an endpoint also
 * named with --metadata-url (a test's OneGate), never to one a leftover context names.
 */
export async function reportOneGate(req: OneGateRequest, ctx: PlatformContext): Promise<string> {
  const base = oneGateBase(req.endpoint);
  if (typeof base !== 'string') throw new ImprintError(base.problem);
  if (!ctx.root.isLive) {
    const named = ctx.explicitUrl ? oneGateBase(ctx.url) : null;
    if (named !== base) return `not reported: an offline tree (give --metadata-url ${base} to report to the OneGate the context names)`;
  }
  const http = new PlatformHttp(base, ctx.config, ctx.deadline, ctx.hooks);
  try {
    const res = await http.send('/vm', {
      method: 'PUT', body: 'READY=YES',
      headers: { 'x-onegate-token': req.token, 'x-onegate-vmid': req.vmid, 'content-type': 'application/x-www-form-urlencoded' },
    });
    if (res.status < 200 || res.status > 299) throw new ImprintError(`OneGate ${base}/vm: HTTP ${res.status}`);
    return `reported READY=YES to OneGate at ${base} (VM ${req.vmid})`;
  } finally {
    await http.close();
  }
}
