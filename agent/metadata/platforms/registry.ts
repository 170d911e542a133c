import { akamai } from './akamai.js';
import { alibaba } from './alibaba.js';
import { azure } from './azure.js';
import { cloudstack, exoscale } from './cloudstack.js';
import { digitalocean } from './digitalocean.js';
import { gce } from './gce.js';
import { hetzner } from './hetzner.js';
import { configDrive, ec2, nocloud, openstack } from './local-and-ec2.js';
import type { PlatformName } from './names.js';
import { oci } from './oci.js';
import { opennebula } from './opennebula.js';
import type { Provider } from './provider.js';
import { scaleway } from './scaleway.js';
import { vultr } from './vultr.js';

export const PROVIDERS: Readonly<Record<PlatformName, Provider>> = {
  ec2, openstack, gce, azure, oci, digitalocean, hetzner, scaleway, vultr, akamai, exoscale, cloudstack, alibaba, opennebula, nocloud, 'config-drive': configDrive,
};
