import { DEFAULT_METADATA_URL, type MetadataConfig } from '../config.js';
import type { RootTree } from '../os/root.js';

/**
 * Applies --metadata-url and says whether the EC2 source may be used for this root. On the
 * live system the config's metadata.url is the operator's. An offline tree (--root) is input
 * like any image: its own config must not point imprint at a network service, whatever the
 * spelling of the address (":80", the IPv6 form, hex or decimal IPv4...), so only the command
 * line's --metadata-url counts there; a url from a config (the tree's, or --config, which may be
 * the tree's too) is set aside with a warning.
 */
export function metadataEndpoint(root: RootTree, config: MetadataConfig, cliUrl: string | undefined, warn: (line: string) => void): { explicitUrl: boolean } {
  if (cliUrl !== undefined) {
    config.url = cliUrl;
    return { explicitUrl: true };
  }
  if (root.isLive) return { explicitUrl: config.url !== DEFAULT_METADATA_URL };
  if (config.url !== DEFAULT_METADATA_URL) {
    warn(`metadata.url ${config.url} from the config is not used with --root (an offline tree's config must not point imprint at a network service); give --metadata-url to use one`);
    config.url = DEFAULT_METADATA_URL;
  }
  return { explicitUrl: false };
}
