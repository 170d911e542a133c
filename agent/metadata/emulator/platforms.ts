import { randomBytes, randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { stringify as toYaml } from 'yaml';
import type { PlatformName } from '../platforms/names.js';
import { ed25519Line, invalidKeys } from './keys.js';
import { behaviour, ScenarioError, type Behaviour, type Scenario } from './scenarios.js';
import { createBodyServer, listenHttp } from './listen.js';

// `imprint emulate --platform NAME`: the other clouds' metadata dialects on a local address,
// each refusing requests without the header its real service demands (so a client that
// forgets it fails here as it would there), with the fault scenarios that apply to a plain
// HTTP service (slow, flaky, disabled, oversized, unreachable-after, invalid/duplicate keys).
// For Azure the same server is also the wireserver and records the ready reports it gets.

export const EMULATED_PLATFORMS = ['openstack', 'gce', 'azure', 'oci', 'digitalocean', 'hetzner', 'scaleway', 'vultr', 'akamai', 'exoscale', 'cloudstack', 'alibaba'] as const;
export type EmulatedPlatform = (typeof EMULATED_PLATFORMS)[number];

export function isEmulatedPlatform(name: string): name is EmulatedPlatform {
  return (EMULATED_PLATFORMS as readonly string[]).includes(name);
}

export interface PlatformKey {
  key: string;
  /** The login the key is for (GCE "user:", Akamai's users map); default: the options' user. */
  user?: string;
}

export interface PlatformEmulatorOptions {
  platform: EmulatedPlatform;
  instanceId?: string;
  hostname?: string;
  keys?: readonly (string | PlatformKey)[];
  /** GCE's default key user, Azure's adminUsername, Akamai's user. */
  user?: string;
  /** GCE: the project's ssh-keys lines (user:key), and whether the instance blocks them. */
  projectKeys?: readonly string[];
  blockProjectKeys?: boolean;
  scenarios?: readonly Scenario[];
  listen?: { host?: string; port?: number };
  log?: (line: string) => void;
  /** Azure: called with each Health report the wireserver receives. */
  onReady?: (report: string) => void;
}

export interface PlatformRequestLog {
  seq: number;
  method: string;
  path: string;
  status: number | 'closed' | 'aborted';
  /** Whether the header the platform requires was on the request. */
  header: boolean;
  scenario: string | null;
}

export interface RunningPlatformEmulator {
  url: string;
  platform: EmulatedPlatform;
  instanceId: string;
  requests: readonly PlatformRequestLog[];
  /** Azure: the Health report bodies POSTed to the wireserver. */
  readyReports: readonly string[];
  close(): Promise<void>;
}

interface Answer { status: number; body: string | Buffer; headers?: Record<string, string> }
type Route = (req: IncomingMessage, query: URLSearchParams, body: string) => Answer;

/** The header each dialect's service insists on, and how it refuses a request without it. */
const REQUIRED: Partial<Record<EmulatedPlatform, { name: string; value?: string; status: number }>> = {
  gce: { name: 'metadata-flavor', value: 'Google', status: 403 },
  azure: { name: 'metadata', value: 'true', status: 400 },
  oci: { name: 'authorization', value: 'Bearer Oracle', status: 401 },
  akamai: { name: 'metadata-token', status: 401 },
  alibaba: { name: 'x-aliyun-ecs-metadata-token', status: 401 },
};

const json = (doc: unknown): Answer => ({ status: 200, body: JSON.stringify(doc), headers: { 'content-type': 'application/json' } });
const text = (t: string): Answer => ({ status: 200, body: t, headers: { 'content-type': 'text/plain' } });
const notFound: Answer = { status: 404, body: 'not found\n' };

function defaultId(platform: EmulatedPlatform): string {
  switch (platform) {
    case 'gce': case 'digitalocean': case 'akamai': case 'hetzner': case 'vultr':
      return String(1_000_000 + (randomBytes(3).readUIntBE(0, 3)));
    case 'azure': case 'openstack': case 'scaleway': case 'exoscale': case 'cloudstack':
      return randomUUID();
    case 'oci': return `ocid1.instance.oc1.emulated.${randomBytes(8).toString('hex')}`.slice(0, 120).replace(/[^A-Za-z0-9._:-]/g, '');
    case 'alibaba': return `i-${randomBytes(10).toString('hex')}`;
  }
}

/** Keys as served; line-based dialects cannot hold a line break inside one key, so those variants are left out there. */
function servedKeys(o: PlatformEmulatorOptions, b: Behaviour, lineBased: boolean): PlatformKey[] {
  const keys = (o.keys ?? []).map((k) => (typeof k === 'string' ? { key: k } : k));
  if (b.duplicateKeys) keys.push(keys[0] ?? { key: ed25519Line('emulator-key') });
  if (b.invalidKeys) {
    // The 100 KiB line would make the whole document oversized (the oversized scenario covers that).
    keys.push(...invalidKeys().filter((k) => k.name !== 'invalid-100k-line' && !(lineBased && /[\r\n]/.test(k.key))).map((k) => ({ key: k.key })));
  }
  return keys;
}

function routes(o: PlatformEmulatorOptions, id: string, b: Behaviour, tokens: Set<string>, readyReports: string[]): Map<string, Route> {
  const host = o.hostname ?? `${o.platform}-emulated`;
  const user = o.user ?? 'cloud-user';
  const r = new Map<string, Route>();
  const numeric = /^\d+$/.test(id) ? Number(id) : id;
  const keys = servedKeys(o, b, ['gce', 'oci', 'exoscale', 'cloudstack'].includes(o.platform));
  const keyTexts = keys.map((k) => k.key);
  const big = (doc: Answer): Answer => (b.oversizedBytes === null ? doc : { status: 200, body: Buffer.alloc(b.oversizedBytes, 0x61) });
  const issueToken = (): Answer => {
    const token = randomBytes(24).toString('base64url');
    tokens.add(token);
    return text(token);
  };
  switch (o.platform) {
    case 'gce': {
      const base = '/computeMetadata/v1';
      r.set(`${base}/instance/id`, () => big(text(id)));
      r.set(`${base}/instance/hostname`, () => text(`${host}.c.project.internal`));
      r.set(`${base}/instance/attributes/ssh-keys`, () => text(keys.map((k) => `${k.user ?? user}:${k.key}`).join('\n') + '\n'));
      if (o.blockProjectKeys) r.set(`${base}/instance/attributes/block-project-ssh-keys`, () => text('true'));
      if (o.projectKeys?.length) r.set(`${base}/project/attributes/ssh-keys`, () => text(o.projectKeys?.join('\n') ?? ''));
      break;
    }
    case 'azure':
      r.set('/metadata/instance', (_req, q) => (q.get('api-version') ? big(json({
        compute: { vmId: id, name: host, osProfile: { adminUsername: user, computerName: host }, publicKeys: keyTexts.map((k) => ({ keyData: k, path: `/home/${user}/.ssh/authorized_keys` })) },
      })) : { status: 400, body: '{"error":"Bad request. api-version was not specified in the request"}' }));
      r.set('/machine/', (req, q, body) => {
        if (req.headers['x-ms-version'] === undefined) return { status: 400, body: 'x-ms-version missing\n' };
        if (q.get('comp') === 'goalstate') {
          return { status: 200, headers: { 'content-type': 'text/xml' }, body: `<?xml version="1.0" encoding="utf-8"?>\n<GoalState><Incarnation>1</Incarnation><Container><ContainerId>${randomUUID()}</ContainerId><RoleInstanceList><RoleInstance><InstanceId>${id}._${host}</InstanceId></RoleInstance></RoleInstanceList></Container></GoalState>\n` };
        }
        if (q.get('comp') === 'health' && req.method === 'POST') {
          readyReports.push(body);
          o.onReady?.(body);
          return { status: 200, body: '' };
        }
        return notFound;
      });
      break;
    case 'openstack':
      r.set('/openstack/latest/meta_data.json', () => big(json({ uuid: id, hostname: host, name: host, public_keys: Object.fromEntries(keyTexts.map((k, i) => [`key-${i}`, k])) })));
      break;
    case 'oci':
      r.set('/opc/v2/instance/', () => big(json({ id, hostname: host, metadata: { ssh_authorized_keys: keyTexts.join('\n') } })));
      break;
    case 'digitalocean':
      r.set('/metadata/v1.json', () => big(json({ droplet_id: numeric, hostname: host, public_keys: keyTexts })));
      break;
    case 'hetzner':
      r.set('/hetzner/v1/metadata', () => big(text(toYaml({ hostname: host, 'instance-id': numeric, 'public-keys': keyTexts }))));
      break;
    case 'scaleway':
      r.set('/conf', (_req, q) => (q.get('format') === 'json' ? big(json({ id, hostname: host, ssh_public_keys: keyTexts.map((k) => ({ key: k, fingerprint: '' })) })) : text(`ID=${id}\n`)));
      break;
    case 'vultr':
      r.set('/v1.json', () => big(json({ instanceid: id, hostname: host, 'public-keys': keyTexts })));
      break;
    case 'akamai': {
      r.set('/v1/token', (req) => (req.method === 'PUT' && req.headers['metadata-token-expiry-seconds'] ? issueToken() : { status: 400, body: 'bad token request\n' }));
      r.set('/v1/instance', () => big(json({ id: numeric, label: host })));
      const users: Record<string, string[]> = {};
      for (const k of keys) (users[k.user ?? user] ??= []).push(k.key);
      r.set('/v1/ssh-keys', () => json({ users }));
      break;
    }
    case 'alibaba':
      r.set('/latest/api/token', (req) => (req.method === 'PUT' && req.headers['x-aliyun-ecs-metadata-token-ttl-seconds'] ? issueToken() : { status: 400, body: 'bad token request\n' }));
      r.set('/latest/meta-data/instance-id', () => big(text(id)));
      r.set('/latest/meta-data/hostname', () => text(host));
      r.set('/latest/meta-data/public-keys/', () => text(keyTexts.map((_k, i) => `${i}/`).join('\n')));
      keyTexts.forEach((k, i) => r.set(`/latest/meta-data/public-keys/${i}/openssh-key`, () => text(k)));
      break;
    case 'exoscale': case 'cloudstack':
      r.set('/latest/meta-data/instance-id', () => big(text(id)));
      r.set('/latest/meta-data/public-keys', () => text(keyTexts.join('\n')));
      r.set('/latest/meta-data/local-hostname', () => text(host));
      break;
  }
  return r;
}

/** Scenarios about IMDSv2 tokens belong to the EC2 dialect only. */
function checkScenarios(scenarios: readonly Scenario[]): Behaviour {
  const b = behaviour(scenarios);
  const tokenOnly = scenarios.find((s) => ['imdsv1-only', 'imdsv1-only-405', 'ignore-put', 'imdsv2-only', 'token-expiry'].includes(s.name));
  if (tokenOnly) throw new ScenarioError(`scenario ${tokenOnly.name} is about EC2's IMDSv2 and does not apply to --platform`);
  return b;
}

export async function startPlatformEmulator(o: PlatformEmulatorOptions): Promise<RunningPlatformEmulator> {
  const b = checkScenarios(o.scenarios ?? []);
  const id = o.instanceId ?? defaultId(o.platform);
  const tokens = new Set<string>();
  const readyReports: string[] = [];
  const table = routes(o, id, b, tokens, readyReports);
  const required = REQUIRED[o.platform];
  const requests: PlatformRequestLog[] = [];
  const timers = new Set<NodeJS.Timeout>();
  let seq = 0;

  const handle = (req: IncomingMessage, res: ServerResponse, body: string): void => {
    seq += 1;
    const entry: PlatformRequestLog = { seq, method: req.method ?? 'GET', path: (req.url ?? '/').slice(0, 256), status: 'aborted', header: false, scenario: null };
    requests.push(entry);
    const url = new URL(req.url ?? '/', 'http://emulator');
    const tokenPut = url.pathname.endsWith('/token') && req.method === 'PUT';
    entry.header = required === undefined || tokenPut || (required.value === undefined
      ? tokens.has(String(req.headers[required.name] ?? ''))
      : req.headers[required.name] === required.value);
    const wire = url.pathname.startsWith('/machine');
    if (b.closeAfter !== null && seq > b.closeAfter) {
      entry.status = 'closed';
      entry.scenario = 'unreachable-after';
      req.socket.destroy();
      return;
    }
    let answer: Answer;
    if (b.disabled) [answer, entry.scenario] = [{ status: 403, body: 'disabled\n' }, 'disabled'];
    else if (seq <= b.flaky) [answer, entry.scenario] = [{ status: 503, body: 'busy\n' }, 'flaky'];
    else if (!entry.header && !wire) answer = { status: required?.status ?? 400, body: `missing ${required?.name ?? 'header'}\n` };
    else answer = (table.get(url.pathname) ?? (() => notFound))(req, url.searchParams, body);
    const send = (): void => {
      const headers: Record<string, string> = { ...answer.headers, 'content-length': String(Buffer.byteLength(answer.body)) };
      if (o.platform === 'gce') headers['metadata-flavor'] = 'Google';
      res.writeHead(answer.status, headers);
      res.end(answer.body);
      entry.status = answer.status;
      o.log?.(`emulate: ${entry.method} ${entry.path} ${answer.status} header=${entry.header ? 'yes' : 'no'}${entry.scenario ? ` scenario=${entry.scenario}` : ''}`);
    };
    if (b.delayMs === 0) return send();
    const timer = setTimeout(() => { timers.delete(timer); send(); }, b.delayMs);
    timers.add(timer);
    res.once('close', () => {
      if (timers.delete(timer)) clearTimeout(timer);
    });
  };

  const server = createBodyServer(handle);
  const listening = await listenHttp(server, o.listen);
  return {
    url: listening.url, platform: o.platform, instanceId: id, requests, readyReports,
    close: () => listening.close(() => { for (const t of timers) clearTimeout(t); }),
  };
}
