// The platforms imprint speaks to, by the names `--platform` and `metadata.platform` take.
// No imports here: the config validator and the CLI need the list without the HTTP stack.

export const PLATFORM_NAMES = [
  'ec2', 'openstack', 'gce', 'azure', 'oci', 'digitalocean', 'hetzner', 'scaleway', 'vultr', 'akamai',
  'exoscale', 'cloudstack', 'alibaba', 'opennebula', 'nocloud', 'config-drive',
] as const;

export type PlatformName = (typeof PLATFORM_NAMES)[number];

export function isPlatformName(text: string): text is PlatformName {
  return (PLATFORM_NAMES as readonly string[]).includes(text);
}
