import type { MetadataConfig } from '../../config.js';
import { statTree } from '../../os/files.js';
import { readPlatformSignals } from '../../os/platform-signals.js';
import type { RootTree } from '../../os/root.js';
import { Deadline } from '../deadline.js';
import type { Ec2Hooks } from '../ec2.js';
import { resolveMetadata, type Resolved } from '../resolve.js';
import { describeDetection, detectPlatform, type Detection, type Match } from './detect.js';
import type { PlatformName } from './names.js';
import { OPENNEBULA_SEED } from './opennebula.js';
import { urlFor } from './provider.js';
import { PROVIDERS } from './registry.js';
import { WIRESERVER } from './azure.js';

// The network phase's entry: which platform (named by --platform or metadata.platform, else
// detected from local signals), then only that platform's module is asked. When nothing is
// named or identified, the configured sources are tried in order, as before detection existed.

export interface PlatformResolveOptions {
  root: RootTree;
  config: MetadataConfig;
  /** --platform, over metadata.platform. */
  platform?: PlatformName;
  /** The service was named (--metadata-url or metadata.url): it replaces the platform's own address. */
  explicitUrl: boolean;
  /** --wireserver-url (Azure). */
  wireserverUrl?: string;
  productCodes?: boolean;
  hooks?: Ec2Hooks;
  note: (line: string) => void;
}

export interface PlatformResolved extends Resolved {
  platform: PlatformName | null;
  /** How the platform was chosen, for the report. */
  why: string;
}

/** Local seed files count like a labelled filesystem (OpenNebula in an image build or test tree). */
async function seedMatches(root: RootTree): Promise<Match[]> {
  return (await statTree(root, OPENNEBULA_SEED))?.isFile() ? [{ platform: 'opennebula', evidence: OPENNEBULA_SEED }] : [];
}

export async function choosePlatform(root: RootTree, named: PlatformName | undefined, configured: MetadataConfig['platform']): Promise<Detection & { why: string }> {
  if (named) return { platform: named, evidence: [], conflict: null, why: `platform ${named} (--platform)` };
  if (configured !== 'auto') return { platform: configured, evidence: [], conflict: null, why: `platform ${configured} (metadata.platform in the config)` };
  const detection = detectPlatform(await readPlatformSignals(root), await seedMatches(root));
  return { ...detection, why: describeDetection(detection) };
}

export async function resolvePlatform(opts: PlatformResolveOptions): Promise<PlatformResolved> {
  const chosen = await choosePlatform(opts.root, opts.platform, opts.config.platform);
  opts.note(chosen.why);
  if (chosen.platform === null) {
    return { ...(await resolveMetadata({ ...opts, explicitUrl: opts.explicitUrl })), platform: null, why: chosen.why };
  }
  const provider = PROVIDERS[chosen.platform];
  const own = provider.addresses[0];
  const url = opts.explicitUrl || own === undefined ? opts.config.url : urlFor(own);
  const read = await provider.read({
    root: opts.root, config: opts.config, url, explicitUrl: opts.explicitUrl,
    wireserverUrl: opts.wireserverUrl ?? (opts.root.isLive ? urlFor(WIRESERVER) : null),
    productCodes: opts.productCodes ?? true, deadline: new Deadline(opts.config.deadlineMs), hooks: opts.hooks ?? {}, note: opts.note,
  });
  return { ...read, platform: chosen.platform, why: chosen.why };
}
