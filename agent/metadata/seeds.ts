import { parse as parseYaml } from 'yaml';
import type { MetadataConfig } from '../config.js';
import { ImprintError } from '../os/errors.js';
import { readTreeFile } from '../os/files.js';
import { readLabelledFs } from '../os/labelled-fs.js';
import type { RootTree } from '../os/root.js';
import { INSTANCE_ID, type InstanceMetadata, type LaunchKey } from './types.js';

// Local metadata for clouds and labs without a metadata service: NoCloud (a "cidata"
// filesystem or a seed directory with meta-data) and the OpenStack config drive ("config-2",
// openstack/latest/meta_data.json). No network, so they are tried first.

/** Seed directories inside the tree, where cloud-init also looks. */
export const NOCLOUD_DIRS = ['/var/lib/cloud/seed/nocloud', '/var/lib/cloud/seed/nocloud-net'];
export const CONFIG_DRIVE_DIRS = ['/var/lib/cloud/seed/config_drive'];

async function fromDirs(root: RootTree, dirs: string[], file: string, maxBytes: number): Promise<{ text: string; where: string } | null> {
  for (const dir of dirs) {
    const data = await readTreeFile(root, `${dir}/${file}`, maxBytes).catch((err: Error) => {
      throw new ImprintError(`${dir}/${file}: ${err.message}`);
    });
    if (data !== null) return { text: data.toString('utf8'), where: `${dir}/${file}` };
  }
  return null;
}

async function seedFile(root: RootTree, dirs: string[], labels: string[], file: string, maxBytes: number): Promise<{ text: string; where: string } | null> {
  const local = await fromDirs(root, dirs, file, maxBytes);
  if (local || !root.isLive) return local;
  const mounted = await readLabelledFs(labels, [file], maxBytes);
  const text = mounted?.get(file);
  return text === undefined ? null : { text, where: `label ${labels[0]}:/${file}` };
}

function checkedId(id: unknown, where: string): string {
  if (typeof id !== 'string' || !INSTANCE_ID.test(id)) throw new ImprintError(`${where}: instance id ${JSON.stringify(String(id).slice(0, 80))} is not valid`);
  return id;
}

/** cloud-init's public-keys forms: a string, a list of strings, or a map of name → string(s). */
function keysFrom(value: unknown, prefix: string, rejected: string[]): LaunchKey[] {
  const keys: LaunchKey[] = [];
  const add = (origin: string, name: string, v: unknown): void => {
    if (typeof v === 'string') keys.push({ origin, name, text: v });
    else if (Array.isArray(v)) v.forEach((item, i) => add(`${origin}[${i}]`, name, item));
    else rejected.push(`${origin}: not a key string`);
  };
  if (value === undefined || value === null) return keys;
  if (typeof value === 'string' || Array.isArray(value)) add(prefix, '', value);
  else if (typeof value === 'object') for (const [name, v] of Object.entries(value)) add(`${prefix}.${name}`, name, v);
  else rejected.push(`${prefix}: not a key, list or map`);
  return keys;
}

export async function readNoCloud(root: RootTree, config: MetadataConfig): Promise<InstanceMetadata | null> {
  const seed = await seedFile(root, NOCLOUD_DIRS, ['cidata', 'CIDATA'], 'meta-data', config.maxBodyBytes);
  if (!seed) return null;
  let doc: unknown;
  try {
    doc = parseYaml(seed.text, { maxAliasCount: 10 });
  } catch (err) {
    throw new ImprintError(`${seed.where}: not YAML: ${(err as Error).message.split('\n')[0]}`);
  }
  if (typeof doc !== 'object' || doc === null) throw new ImprintError(`${seed.where}: not a mapping`);
  const meta = doc as Record<string, unknown>;
  const rejected: string[] = [];
  const keys = keysFrom(meta['public-keys'] ?? meta.public_keys, 'public-keys', rejected);
  return { source: 'nocloud', instanceId: checkedId(meta['instance-id'], seed.where), keys, productCodes: null, identityDocument: null, rejected };
}

export async function readConfigDrive(root: RootTree, config: MetadataConfig): Promise<InstanceMetadata | null> {
  const seed = await seedFile(root, CONFIG_DRIVE_DIRS, ['config-2', 'CONFIG-2'], 'openstack/latest/meta_data.json', config.maxBodyBytes);
  if (!seed) return null;
  return configDriveMetadata(seed);
}

/** meta_data.json as the config drive and OpenStack's metadata service both serve it. */
export function configDriveMetadata(seed: { text: string; where: string }): InstanceMetadata {
  let doc: unknown;
  try {
    doc = JSON.parse(seed.text);
  } catch (err) {
    throw new ImprintError(`${seed.where}: not JSON: ${(err as Error).message}`);
  }
  if (typeof doc !== 'object' || doc === null) throw new ImprintError(`${seed.where}: not an object`);
  const meta = doc as Record<string, unknown>;
  const rejected: string[] = [];
  // "keys" (newer, typed) is preferred; "public_keys" (name → key) is the older form.
  const typed = Array.isArray(meta.keys)
    ? (meta.keys as unknown[]).flatMap((k, i): LaunchKey[] => {
      const entry = k as Record<string, unknown>;
      if (entry?.type === 'ssh' && typeof entry.data === 'string') return [{ origin: `keys[${i}]`, name: String(entry.name ?? ''), text: entry.data }];
      rejected.push(`keys[${i}]: not an ssh key entry`);
      return [];
    })
    : [];
  const keys = typed.length > 0 ? typed : keysFrom(meta.public_keys, 'public_keys', rejected);
  return { source: 'config-drive', instanceId: checkedId(meta.uuid, seed.where), keys, productCodes: null, identityDocument: null, rejected };
}
