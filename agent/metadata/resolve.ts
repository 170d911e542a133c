import type { MetadataConfig, MetadataSourceName } from '../config.js';
import { errorMessage } from '../os/errors.js';
import type { RootTree } from '../os/root.js';
import { Deadline } from './deadline.js';
import type { Ec2Hooks } from './ec2.js';
import { readConfigDrive, readNoCloud } from './seeds.js';
import type { InstanceMetadata } from './types.js';

export interface ResolveOptions {
  root: RootTree;
  config: MetadataConfig;
  /** The endpoint was named (--metadata-url or metadata.url): an offline tree may use it. */
  explicitUrl: boolean;
  /** Ask for product codes (a request saved when none are expected). */
  productCodes?: boolean;
  hooks?: Ec2Hooks;
  /** One line per source tried (why it was skipped, what it gave). */
  note: (line: string) => void;
}

export interface Resolved {
  metadata: InstanceMetadata | null;
  /** IMDSv2 / IMDSv1 for ec2. */
  protocol?: string;
  close: () => Promise<void>;
}

/**
 * Tries the sources in the configured order; the first that answers wins. A broken local seed
 * is reported and passed over. An offline tree (--root) never asks the real metadata service:
 * the host's instance is not the image's.
 */
export async function resolveMetadata(opts: ResolveOptions): Promise<Resolved> {
  const readers: Record<MetadataSourceName, () => Promise<Resolved>> = {
    nocloud: async () => ({ metadata: await readNoCloud(opts.root, opts.config), close: async () => undefined }),
    'config-drive': async () => ({ metadata: await readConfigDrive(opts.root, opts.config), close: async () => undefined }),
    ec2: async () => {
      if (!opts.root.isLive && !opts.explicitUrl) {
        opts.note('ec2: skipped for an offline tree (give --metadata-url to use a metadata service)');
        return { metadata: null, close: async () => undefined };
      }
      // The HTTP stack loads only when the metadata service is really asked.
      const { Ec2MetadataClient } = await import('./ec2.js');
      const client = new Ec2MetadataClient(opts.config, new Deadline(opts.config.deadlineMs), opts.hooks);
      try {
        const metadata = await client.read({ productCodes: opts.productCodes ?? true });
        return { metadata, protocol: client.protocol, close: () => client.close() };
      } catch (err) {
        await client.close();
        throw err;
      }
    },
  };
  for (const name of opts.config.sources) {
    try {
      const resolved = await readers[name]();
      if (resolved.metadata) return resolved;
    } catch (err) {
      if (name === 'ec2') throw err;
      opts.note(`${name}: ignored: ${errorMessage(err)}`);
    }
  }
  return { metadata: null, close: async () => undefined };
}

