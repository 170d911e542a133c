import type { PlatformSignals } from '../../os/platform-signals.js';
import { isPlatformName, type PlatformName } from './names.js';

// Which cloud this is, from local signals only (no packet leaves before this is decided).
// The signals are the ones each platform documents or sets in its firmware, as cloud-init's
// ds-identify and afterburn's providers read them; every rule here is our own.
//
// Precedence: an explicit imprint.platform=NAME on the kernel command line; then a seed
// filesystem attached to this boot (cidata, config-2, CONTEXT: data delivered for this very
// instance, read without network); then the firmware (DMI, Xen UUID). Two different answers
// at the same level are a conflict: nothing is chosen and the configured sources are tried
// in order, as before detection existed (the EC2-compatible probe last).

export interface Match {
  platform: PlatformName;
  /** What was seen, e.g. 'sys_vendor "Google"'. */
  evidence: string;
}

export interface Detection {
  platform: PlatformName | null;
  /** The matches the choice rests on (or, on a conflict, all of them). */
  evidence: Match[];
  /** Why nothing was chosen although something matched. */
  conflict: string | null;
}

type Field = keyof PlatformSignals['dmi'];
type Test = { field: Field; is?: string; startsWith?: string };

// One row per (platform, field) rule. Comparisons ignore case: vendors have changed case over
// the years ("Amazon EC2", "amazon ec2" in old Xen-era tables).
const DMI_RULES: readonly (Test & { platform: PlatformName })[] = [
  { platform: 'ec2', field: 'sys_vendor', is: 'Amazon EC2' },
  { platform: 'ec2', field: 'bios_vendor', is: 'Amazon EC2' },
  { platform: 'ec2', field: 'product_uuid', startsWith: 'ec2' },
  { platform: 'ec2', field: 'sys_vendor', is: '3DS Outscale' },
  { platform: 'gce', field: 'sys_vendor', is: 'Google' },
  { platform: 'gce', field: 'product_name', is: 'Google Compute Engine' },
  { platform: 'gce', field: 'product_serial', startsWith: 'GoogleCloud-' },
  { platform: 'azure', field: 'chassis_asset_tag', is: '7783-7084-3265-9085-8269-3286-77' },
  { platform: 'oci', field: 'chassis_asset_tag', is: 'OracleCloud.com' },
  { platform: 'digitalocean', field: 'sys_vendor', is: 'DigitalOcean' },
  { platform: 'hetzner', field: 'sys_vendor', is: 'Hetzner' },
  { platform: 'scaleway', field: 'sys_vendor', is: 'Scaleway' },
  { platform: 'vultr', field: 'sys_vendor', is: 'Vultr' },
  { platform: 'akamai', field: 'sys_vendor', is: 'Linode' },
  { platform: 'akamai', field: 'sys_vendor', is: 'Akamai' },
  { platform: 'exoscale', field: 'product_name', startsWith: 'Exoscale' },
  { platform: 'cloudstack', field: 'product_name', startsWith: 'CloudStack' },
  { platform: 'alibaba', field: 'product_name', is: 'Alibaba Cloud ECS' },
  { platform: 'alibaba', field: 'sys_vendor', is: 'Alibaba Cloud' },
  { platform: 'openstack', field: 'product_name', is: 'OpenStack Nova' },
  { platform: 'openstack', field: 'product_name', is: 'OpenStack Compute' },
  { platform: 'openstack', field: 'sys_vendor', is: 'OpenStack Foundation' },
  { platform: 'openstack', field: 'chassis_asset_tag', is: 'OpenTelekomCloud' },
  { platform: 'openstack', field: 'chassis_asset_tag', is: 'HUAWEICLOUD' },
  { platform: 'openstack', field: 'chassis_asset_tag', is: 'SAP CCloud VM' },
];

const SEED_LABELS: Readonly<Record<string, PlatformName>> = {
  cidata: 'nocloud', CIDATA: 'nocloud', 'config-2': 'config-drive', 'CONFIG-2': 'config-drive', CONTEXT: 'opennebula',
};

/** A string from the machine, fit for the console (bounded, printable). */
export function shown(value: string): string {
  const clean = value.replace(/[^\x20-\x7e]/g, '?');
  return JSON.stringify(clean.length > 64 ? `${clean.slice(0, 64)}…` : clean);
}

function dmiMatches(signals: PlatformSignals): Match[] {
  const out: Match[] = [];
  for (const rule of DMI_RULES) {
    const value = signals.dmi[rule.field];
    if (value === undefined) continue;
    const v = value.toLowerCase();
    const hit = rule.is !== undefined ? v === rule.is.toLowerCase() : v.startsWith((rule.startsWith ?? '').toLowerCase());
    if (hit) out.push({ platform: rule.platform, evidence: `DMI ${rule.field} ${shown(value)}` });
  }
  const xen = signals.hypervisorUuid;
  if (xen !== undefined && xen.toLowerCase().startsWith('ec2')) out.push({ platform: 'ec2', evidence: `/sys/hypervisor/uuid ${shown(xen)}` });
  // Scaleway's own boot loader puts its name on the kernel command line.
  if (signals.cmdline.some((w) => w.toLowerCase() === 'scaleway')) out.push({ platform: 'scaleway', evidence: 'kernel command line "scaleway"' });
  return out;
}

function seedMatches(signals: PlatformSignals, seeds: readonly Match[]): Match[] {
  const out = [...seeds];
  for (const label of signals.labels) {
    const platform = SEED_LABELS[label];
    if (platform) out.push({ platform, evidence: `filesystem labelled ${label}` });
  }
  for (const word of signals.cmdline) {
    if (/^ds=nocloud(-net)?(;|$)/i.test(word)) out.push({ platform: 'nocloud', evidence: `kernel command line ${shown(word)}` });
  }
  return out;
}

/** One level's verdict: its single platform, nothing, or a conflict. */
function decide(matches: Match[], level: string): Detection | null {
  if (matches.length === 0) return null;
  const platforms = [...new Set(matches.map((m) => m.platform))];
  if (platforms.length === 1) return { platform: platforms[0] as PlatformName, evidence: matches, conflict: null };
  return { platform: null, evidence: matches, conflict: `${level} signals disagree (${platforms.join(' vs ')})` };
}

/**
 * Decides the platform. `seeds` are local seed files found in the tree (OpenNebula's
 * context.sh under /var/lib/imprint/seed): they count like a labelled filesystem.
 */
export function detectPlatform(signals: PlatformSignals, seeds: readonly Match[] = []): Detection {
  const explicit = signals.cmdline.map((w) => /^imprint\.platform=(.*)$/.exec(w)?.[1]).find((v) => v !== undefined);
  if (explicit !== undefined) {
    if (isPlatformName(explicit)) return { platform: explicit, evidence: [{ platform: explicit, evidence: `kernel command line imprint.platform=${explicit}` }], conflict: null };
    return { platform: null, evidence: [], conflict: `kernel command line imprint.platform=${shown(explicit)} names no known platform` };
  }
  const bySeed = decide(seedMatches(signals, seeds), 'seed filesystem');
  if (bySeed) return bySeed;
  return decide(dmiMatches(signals), 'firmware') ?? { platform: null, evidence: [], conflict: null };
}

/** The console line for a detection. */
export function describeDetection(d: Detection): string {
  const why = d.evidence.map((m) => (d.platform ? m.evidence : `${m.platform}: ${m.evidence}`)).join(', ');
  if (d.platform) return `platform ${d.platform} (${why})`;
  if (d.conflict) return `platform not chosen: ${d.conflict}${why ? `: ${why}` : ''}; trying the configured sources in order`;
  return 'platform not identified by DMI, hypervisor, kernel command line or seed labels; trying the configured sources in order';
}
