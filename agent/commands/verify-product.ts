import type { CliArgs } from '../cli/args.js';
import { loadConfig } from '../cli/load-config.js';
import { metadataEndpoint } from '../metadata/endpoint.js';
import { resolveMetadata } from '../metadata/resolve.js';
import type { Console } from '../os/console.js';
import { ImprintError } from '../os/errors.js';
import { readTreeText } from '../os/files.js';
import { checkProductCodes, describeProductCheck, type ProductCheck } from '../tasks/product-codes.js';
import { checkRoot } from './boot.js';

// `imprint verify-product`: the boot-time product code check on demand, so an application can
// refuse to run on a rebundled copy. Exit 0 when every expected code is confirmed, 1 otherwise.

export async function verifyProductCommand(args: CliArgs, out: Console): Promise<{ code: number; check: ProductCheck | null }> {
  const root = await checkRoot(args.root);
  const config = await loadConfig(root, args.config);
  const { explicitUrl } = metadataEndpoint(root, config.metadata, args.metadataUrl, (line) => out.warn('metadata', line));
  if (args.metadataDeadlineMs) config.metadata.deadlineMs = args.metadataDeadlineMs;
  const pc = config.productCodes;
  if (pc.expected.length === 0) throw new ImprintError(`${config.source ?? 'the config'}: product_codes.expected names no code to verify`, 'config');
  const resolved = await resolveMetadata({
    root, config: config.metadata, explicitUrl,
    note: (line) => out.info('metadata', line),
    hooks: { log: (line) => out.detail('metadata', line) },
  });
  try {
    if (!resolved.metadata) {
      out.error('verify-product', 'no metadata source answered: the product codes cannot be confirmed');
      return { code: 1, check: null };
    }
    const check = await checkProductCodes(pc, resolved.metadata, async () => (pc.certificate ? readTreeText(root, pc.certificate) : null));
    const line = describeProductCheck(check);
    if (check.ok) out.info('verify-product', line);
    else out.error('verify-product', line);
    return { code: check.ok ? 0 : 1, check };
  } finally {
    await resolved.close();
  }
}
