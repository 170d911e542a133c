import { isMap, isScalar, isSeq, LineCounter, parseDocument, type Node as YamlNode } from 'yaml';
import { ConfigError } from '../../config.js';
import { Validator } from '../../config/validator.js';
import { keyName, type ServedKey } from './keys.js';
import type { EmulatorIdentity } from './identity.js';

// The YAML file of `imprint emulate --config`: what the emulated instance is. Errors carry
// file:line:col like the agent's own config, and every problem is reported in one go.

export interface EmulatorFile {
  instanceId?: string;
  keys?: ServedKey[];
  productCodes?: string[];
  identity?: Partial<EmulatorIdentity>;
}

const TOP = ['instance_id', 'keys', 'product_codes', 'identity'] as const;
const IDENTITY: Record<string, keyof EmulatorIdentity> = {
  region: 'region',
  availability_zone: 'availabilityZone',
  account_id: 'accountId',
  image_id: 'imageId',
  instance_type: 'instanceType',
  architecture: 'architecture',
  private_ip: 'privateIp',
  pending_time: 'pendingTime',
  marketplace_product_codes: 'marketplaceProductCodes',
  billing_products: 'billingProducts',
};
const LISTS = new Set(['marketplace_product_codes', 'billing_products']);

/** A string, or a number kept as written: account ids such as 012345678901 must not lose digits. */
function scalarText(v: Validator, node: YamlNode | null | undefined, where: string): string | undefined {
  if (isScalar(node) && typeof node.value === 'number' && typeof node.source === 'string') return node.source;
  return v.str(node, where);
}

function keyList(v: Validator, node: YamlNode | null | undefined): ServedKey[] | undefined {
  if (node === undefined) return undefined;
  if (!isSeq(node)) {
    v.at(node, 'keys must be a list of "type base64 comment" strings or {name, key} mappings');
    return undefined;
  }
  const out: ServedKey[] = [];
  (node.items as (YamlNode | null)[]).forEach((item, i) => {
    if (isMap(item)) {
      const f = v.fields(item, `keys[${i}]`, ['name', 'key']);
      const key = v.str(f.get('key'), `keys[${i}].key`);
      if (!f.has('key')) v.at(item, `keys[${i}] needs a key`);
      const name = v.str(f.get('name'), `keys[${i}].name`, (s) => (/^[^\s=]+$/.test(s) ? null : 'must be one word without "="'));
      if (key !== undefined) out.push({ name: name ?? keyName(key, i), key });
    } else {
      const key = v.str(item, `keys[${i}]`);
      if (key !== undefined) out.push({ name: keyName(key, i), key });
    }
  });
  return out;
}

export function parseEmulatorFile(text: string, file: string): EmulatorFile {
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false, uniqueKeys: true });
  if (doc.errors.length > 0) {
    throw new ConfigError(doc.errors.map((e) => {
      const pos = e.linePos?.[0] ?? lines.linePos(e.pos[0]);
      return `${file}:${pos.line}:${pos.col}: ${e.message.split('\n')[0]}`;
    }));
  }
  const out: EmulatorFile = {};
  if (doc.contents === null || (isScalar(doc.contents) && doc.contents.value === null)) return out;
  const v = new Validator(file, lines);
  const top = v.fields(doc.contents as YamlNode, 'the config', TOP);
  const instanceId = scalarText(v, top.get('instance_id'), 'instance_id');
  if (instanceId !== undefined) out.instanceId = instanceId;
  const keys = keyList(v, top.get('keys'));
  if (keys) out.keys = keys;
  const codes = v.strList(top.get('product_codes'), 'product_codes');
  if (codes) out.productCodes = codes;
  if (top.has('identity')) {
    const identity: Partial<Record<keyof EmulatorIdentity, string | string[]>> = {};
    for (const [key, node] of v.fields(top.get('identity'), 'identity', Object.keys(IDENTITY))) {
      const field = IDENTITY[key] as keyof EmulatorIdentity;
      const value = LISTS.has(key) ? v.strList(node, `identity.${key}`) : scalarText(v, node, `identity.${key}`);
      if (value !== undefined) identity[field] = value;
    }
    out.identity = identity as Partial<EmulatorIdentity>;
  }
  if (v.problems.length > 0) throw new ConfigError(v.problems);
  return out;
}
