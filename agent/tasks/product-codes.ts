import type { Task, TaskContext } from '../boot/task.js';
import type { TaskRecorder } from '../boot/report.js';
import type { ProductCodesConfig } from '../config.js';
import type { VerifiedIdentity } from '../metadata/identity-document.js';
import type { InstanceMetadata } from '../metadata/types.js';
import { ImprintError, errorMessage } from '../os/errors.js';
import { readTreeText } from '../os/files.js';
import { stopUnits } from '../os/systemd-units.js';

// Product codes: is this image running under the marketplace product it was built for? Every
// expected code must be present, read either from meta-data/product-codes (unsigned) or from the
// identity document whose rsa2048 signature verifies with the region certificate pinned in the
// image. Anything that keeps the check from confirming the codes (no codes, no document, a
// signature that fails, a document for another instance) is a mismatch, and gets the configured
// action: warn, fail (exit 1), or stop the configured units and fail.

export interface ProductCheck {
  ok: boolean;
  source: ProductCodesConfig['source'];
  expected: string[];
  /** What the source says; null when it says nothing that can be trusted (404, no or unverified document). */
  found: string[] | null;
  /** Expected codes that were not found. */
  missing: string[];
  /** Why the check did not pass, in words; null when it passed. */
  reason: string | null;
  /** With source identity-document, the verified document's facts. */
  identity?: Pick<VerifiedIdentity, 'instanceId' | 'region' | 'signer' | 'attached'>;
}

const unique = (codes: readonly string[]): string[] => [...new Set(codes)];

/** Metadata is untrusted: printable, bounded, and a bounded number of them, on one line. */
function shown(codes: readonly string[] | null): string {
  if (codes === null || codes.length === 0) return 'none';
  const safe = (s: string) => {
    const cut = s.length > 128 ? `${s.slice(0, 128)}…` : s;
    return cut.replace(/[\u0000-\u001f\u007f-\u009f\u2028\u2029]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
  };
  const head = codes.slice(0, 20).map(safe).join(', ');
  return codes.length > 20 ? `${head} (+${codes.length - 20} more)` : head;
}

function judge(expected: string[], source: ProductCheck['source'], found: string[] | null, why: string | null, identity?: ProductCheck['identity']): ProductCheck {
  const missing = expected.filter((code) => !(found ?? []).includes(code));
  const ok = missing.length === 0 && why === null;
  const reason = ok ? null : why ?? `missing ${shown(missing)}`;
  return { ok, source, expected, found, missing, reason, ...(identity ? { identity } : {}) };
}

/**
 * The product code check itself, with no side effects: used by the boot task and by
 * `imprint verify-product`. readPem gives the pinned region certificate (null: not there).
 * Never throws for a problem with the instance's answers: that is a failed check with a reason.
 */
export async function checkProductCodes(config: ProductCodesConfig, metadata: InstanceMetadata, readPem: () => Promise<string | null>): Promise<ProductCheck> {
  const expected = unique(config.expected);
  if (config.source === 'metadata') {
    const found = metadata.productCodes === null ? null : unique(metadata.productCodes.map((c) => c.trim()).filter((c) => c !== ''));
    return judge(expected, 'metadata', found, found === null ? 'the metadata service serves no product codes' : null);
  }
  const unverified = (reason: string): ProductCheck => judge(expected, 'identity-document', null, reason);
  if (!metadata.identityDocument) return unverified(`the ${metadata.source} metadata source has no signed identity document`);
  let pem: string | null;
  try {
    pem = await readPem();
  } catch (err) {
    return unverified(`cannot read the pinned certificate ${config.certificate ?? ''}: ${errorMessage(err)}`);
  }
  if (pem === null) return unverified(config.certificate ? `the pinned certificate ${config.certificate} does not exist` : 'no product_codes.certificate is configured');
  let document;
  try {
    document = await metadata.identityDocument();
  } catch (err) {
    return unverified(`could not read the identity document: ${errorMessage(err)}`);
  }
  if (document === null) return unverified('no identity document');
  let identity: VerifiedIdentity;
  try {
    // Loaded only here: pkijs is most of the bundle's parse time, and most boots never need it.
    const { verifyIdentityDocument } = await import('../metadata/identity-document.js');
    identity = await verifyIdentityDocument(document, pem);
  } catch (err) {
    return unverified(errorMessage(err)); // "identity document: <the check that failed>"
  }
  if (identity.instanceId !== metadata.instanceId) {
    return unverified(`the signed identity document is for instance ${shown([identity.instanceId])}, not this instance ${metadata.instanceId}`);
  }
  const found = unique([...(identity.marketplaceProductCodes ?? []), ...(identity.billingProducts ?? [])]);
  const { instanceId, region, signer, attached } = identity;
  return judge(expected, 'identity-document', found, null, { instanceId, region, signer, attached });
}

/** The one line that says what was expected and what was found. */
export function describeProductCheck(check: ProductCheck): string {
  // An identity document that did not verify has no "where": the reason says what went wrong.
  const where = check.source === 'metadata'
    ? ' (meta-data/product-codes)'
    : check.identity ? ` (identity document of ${check.identity.region}, signed by ${check.identity.signer})` : '';
  const what = `expected ${shown(check.expected)}; found ${shown(check.found)}${where}`;
  return check.ok ? `product codes match: ${what}` : `product codes do not match: ${what}: ${check.reason}`;
}

function config(ctx: TaskContext): ProductCodesConfig {
  return ctx.config.productCodes;
}

export const productCodesTask: Task = {
  name: 'product-codes',
  phase: 'network',
  after: [],

  disabledBecause: (cfg) => (cfg.productCodes.expected.length === 0 ? 'no product_codes.expected in the config' : null),

  async plan(ctx) {
    const p = config(ctx);
    const from = p.source === 'metadata' ? 'meta-data/product-codes' : `the identity document, signature pinned to ${p.certificate ?? '(no certificate)'}`;
    const action = p.onMismatch === 'stop-units' ? `stop ${p.units.join(', ')} and fail` : p.onMismatch;
    return [`would check product codes ${p.expected.join(', ')} against ${from}; on mismatch: ${action}`];
  },

  async run(ctx: TaskContext, rec: TaskRecorder) {
    const metadata = ctx.facts.metadata;
    if (!metadata) throw new ImprintError('no metadata: the product codes cannot be checked');
    const p = config(ctx);
    const certificate = p.certificate;
    const check = await checkProductCodes(p, metadata, () => (certificate ? readTreeText(ctx.root, certificate) : Promise.resolve(null)));
    rec.detail('check', check);
    const line = describeProductCheck(check);
    if (check.ok) {
      rec.action(line);
      return undefined;
    }
    rec.warn(line);
    if (p.onMismatch === 'warn') return undefined;
    if (p.onMismatch === 'fail') throw new ImprintError('product code check failed (on_mismatch: fail)');

    const results = await stopUnits(ctx.root, p.units);
    rec.detail('units', results);
    const notRun = results.filter((r) => r.outcome === 'not-run').map((r) => r.unit);
    if (notRun.length > 0) rec.action(`--root: an offline tree has no running units; systemctl not run; would stop ${notRun.join(', ')}`);
    for (const r of results) {
      if (r.outcome === 'stopped') rec.action(`stopped ${r.unit}`);
      else if (r.outcome === 'failed') rec.warn(`could not stop ${r.unit}: ${r.detail ?? 'unknown error'}`);
    }
    const stopped = results.filter((r) => r.outcome === 'stopped').map((r) => r.unit);
    const failed = results.filter((r) => r.outcome === 'failed').map((r) => r.unit);
    const summary = notRun.length > 0
      ? `would stop ${notRun.join(', ')}`
      : [stopped.length ? `stopped ${stopped.join(', ')}` : '', failed.length ? `could not stop ${failed.join(', ')}` : ''].filter(Boolean).join('; ');
    throw new ImprintError(`product code check failed (on_mismatch: stop-units): ${summary}`);
  },
};
