import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { ImprintError } from '../os/errors.js';
import { ed25519Line, invalidKeys, keyName, type ServedKey } from './emulator/keys.js';
import { identityDocument, signDocument, type EmulatorIdentity, type IdentitySigning } from './emulator/identity.js';
import { Responder, TOKEN_HEADER, TTL_HEADER, type Answer } from './emulator/respond.js';
import { behaviour, type Behaviour, type Scenario } from './emulator/scenarios.js';
import { MetadataTree } from './emulator/tree.js';

// `imprint emulate` and the tests' metadata service: an EC2-compatible IMDS on a local
// address, with fault scenarios. All state (tokens, counters, timers) lives in one server
// instance, and close() ends every timer and connection it started.

export type { EmulatorIdentity, IdentitySigning } from './emulator/identity.js';
export { parseScenario, ScenarioError, scenarioLabel, type Scenario, type ScenarioName } from './emulator/scenarios.js';

export interface EmulatorKey {
  /** The key pair name in the public-keys/ listing; default: the key's comment, else key-N. */
  name?: string;
  /** Served verbatim at public-keys/N/openssh-key. */
  key: string;
}

export interface EmulatorOptions {
  /** Default: i- and 17 random hex digits. */
  instanceId?: string;
  keys?: readonly (string | EmulatorKey)[];
  productCodes?: readonly string[];
  /** Fields of the identity document; marketplaceProductCodes defaults to productCodes. */
  identity?: Partial<EmulatorIdentity>;
  /** Sign the identity document (rsa2048, pkcs7); without it those paths answer 404. */
  signing?: IdentitySigning;
  scenarios?: readonly Scenario[];
  /** Default 127.0.0.1, port 0 (any free port; the url says which). */
  listen?: { host?: string; port?: number };
  /** One line per request; default: none (the requests array always records them). */
  log?: (line: string) => void;
  /** Milliseconds since the epoch; tests pass a fake clock to expire tokens without waiting. */
  now?: () => number;
}

export interface RequestLog {
  seq: number;
  method: string;
  /** The path without its query, with non-printable characters %-escaped. */
  path: string;
  /** 'closed': dropped without an answer (unreachable-after); 'aborted': the client left first. */
  status: number | 'closed' | 'aborted';
  bytes: number;
  ms: number;
  /** Whether the request carried a token header (its value is never recorded). */
  token: boolean;
  scenario: string | null;
}

export interface RunningEmulator {
  /** http://HOST:PORT, no trailing slash (the form metadata.url takes). */
  url: string;
  close(): Promise<void>;
  requests: readonly RequestLog[];
  instanceId: string;
  /** The identity document exactly as served. */
  document: string;
  /** TCP connections accepted so far, and the most requests that were ever open at once. */
  stats(): { connections: number; peakInFlight: number };
}

const MAX_LOG_ENTRIES = 10_000;
const SLOW_KEY_PATH = '/latest/meta-data/public-keys/0/openssh-key';

const hex = (digits: number): string => randomBytes(Math.ceil(digits / 2)).toString('hex').slice(0, digits);

function servedKeys(keys: readonly (string | EmulatorKey)[], b: Behaviour): ServedKey[] {
  const out = keys.map((k, i) => (typeof k === 'string' ? { name: keyName(k, i), key: k } : { name: k.name ?? keyName(k.key, i), key: k.key }));
  if (b.duplicateKeys) {
    const first = out[0] ?? { name: 'emulator-key', key: ed25519Line('emulator-key') };
    if (out.length === 0) out.push(first);
    out.push({ name: `${first.name}-duplicate`, key: first.key });
  }
  if (b.invalidKeys) out.push(...invalidKeys());
  if (b.repeatedIndex !== null && out.length === 0) out.push({ name: 'emulator-key', key: ed25519Line('emulator-key') });
  for (let i = 0; i < b.extraKeys; i += 1) out.push({ name: `key-gen-${i}`, key: ed25519Line(`key-gen-${i}`) });
  return out;
}

function fullIdentity(given: Partial<EmulatorIdentity>, productCodes: readonly string[], now: number): EmulatorIdentity {
  const region = given.region ?? 'us-east-1';
  return {
    region,
    availabilityZone: given.availabilityZone ?? `${region}a`,
    accountId: given.accountId ?? '123456789012',
    imageId: given.imageId ?? `ami-${hex(17)}`,
    instanceType: given.instanceType ?? 't3.micro',
    architecture: given.architecture ?? (process.arch === 'arm64' ? 'arm64' : 'x86_64'),
    privateIp: given.privateIp ?? '172.31.32.10',
    marketplaceProductCodes: given.marketplaceProductCodes ?? (productCodes.length > 0 ? [...productCodes] : null),
    billingProducts: given.billingProducts ?? null,
    pendingTime: given.pendingTime ?? new Date(now).toISOString().replace(/\.\d{3}Z$/, 'Z'),
  };
}

/** Request paths come from the network: log them escaped and bounded. */
function printable(path: string): string {
  const cut = path.length > 256 ? `${path.slice(0, 256)}...` : path;
  return cut.replace(/[^\x21-\x7e]/g, (c) => `%${c.charCodeAt(0).toString(16).padStart(2, '0').toUpperCase()}`);
}

export function logLine(r: RequestLog): string {
  const scenario = r.scenario ? ` scenario=${r.scenario}` : '';
  return `emulate: ${r.method} ${r.path} ${r.status} ${r.bytes} bytes ${r.ms} ms token=${r.token ? 'yes' : 'no'}${scenario}`;
}

function listen(server: ReturnType<typeof createServer>, host: string, port: number): Promise<AddressInfo> {
  return new Promise((resolve, reject) => {
    const onError = (err: NodeJS.ErrnoException): void => reject(new ImprintError(`cannot listen on ${host}:${port}: ${err.code ?? err.message}`, 'command'));
    server.once('error', onError);
    server.listen(port, host, () => {
      server.off('error', onError);
      resolve(server.address() as AddressInfo);
    });
  });
}

export async function startEmulator(options: EmulatorOptions = {}): Promise<RunningEmulator> {
  const now = options.now ?? Date.now;
  const b = behaviour(options.scenarios ?? []);
  const instanceId = options.instanceId ?? `i-${hex(17)}`;
  const productCodes = options.productCodes ?? [];
  const identity = fullIdentity(options.identity ?? {}, productCodes, now());
  const document = identityDocument(identity, instanceId);
  const signature = options.signing ? await signDocument(document, options.signing) : null;
  const oversized = b.oversizedBytes === null ? undefined : Buffer.from(`i-${'0123456789abcdef'.repeat(Math.ceil(b.oversizedBytes / 16))}`.slice(0, b.oversizedBytes));
  const keys = servedKeys(options.keys ?? [], b);
  const tree = new MetadataTree({
    instanceId, keys, productCodes, identity, document, signature,
    ...(oversized ? { instanceIdBody: oversized } : {}),
    ...(b.repeatedIndex !== null ? { keyListing: Array.from({ length: b.repeatedIndex }, () => `0=${keys[0]?.name ?? ''}`).join('\n') } : {}),
  });
  const responder = new Responder(tree, b, now);
  const requests: RequestLog[] = [];
  const timers = new Set<NodeJS.Timeout>();
  let seq = 0;
  let connections = 0;
  let inFlight = 0;
  let peakInFlight = 0;

  const record = (entry: RequestLog): void => {
    requests.push(entry);
    if (requests.length > MAX_LOG_ENTRIES) requests.splice(0, requests.length - MAX_LOG_ENTRIES);
    options.log?.(logLine(entry));
  };

  const handle = (req: IncomingMessage, res: ServerResponse): void => {
    const started = performance.now();
    seq += 1;
    const thisSeq = seq;
    inFlight += 1;
    peakInFlight = Math.max(peakInFlight, inFlight);
    res.once('close', () => { inFlight -= 1; });
    // Bodies are never read; draining them keeps the connection usable.
    req.resume();
    const method = req.method ?? 'GET';
    const path = (req.url ?? '/').split('?')[0] ?? '/';
    const entry = (status: RequestLog['status'], bytes: number, scenario: string | null): RequestLog => ({
      seq: thisSeq, method, path: printable(path), status, bytes, ms: Math.round((performance.now() - started) * 10) / 10,
      token: req.headers[TOKEN_HEADER] !== undefined, scenario,
    });
    if (b.closeAfter !== null && thisSeq > b.closeAfter) {
      record(entry('closed', 0, 'unreachable-after'));
      req.socket.destroy();
      return;
    }
    const answer: Answer = responder.answer({
      seq: thisSeq, method, path, ttl: req.headers[TTL_HEADER], token: req.headers[TOKEN_HEADER], forwardedFor: req.headers['x-forwarded-for'] !== undefined,
    });
    const send = (): void => {
      res.writeHead(answer.status, { ...answer.headers, 'content-length': String(answer.body.length), server: 'EC2ws' });
      res.end(method === 'HEAD' ? undefined : answer.body);
      const scenario = answer.scenario ?? (b.delayMs > 0 ? 'slow' : null);
      record(entry(answer.status, method === 'HEAD' ? 0 : answer.body.length, scenario));
    };
    const slowKey = b.slowKeyMs > 0 && path === SLOW_KEY_PATH;
    const delayMs = b.delayMs + (slowKey ? b.slowKeyMs : 0);
    if (slowKey) answer.scenario ??= 'slow-key';
    if (delayMs === 0) {
      send();
      return;
    }
    const timer = setTimeout(() => {
      timers.delete(timer);
      send();
    }, delayMs);
    timers.add(timer);
    // A client that gives up during the delay must not leave a timer behind.
    res.once('close', () => {
      if (!timers.delete(timer)) return;
      clearTimeout(timer);
      record(entry('aborted', 0, slowKey ? 'slow-key' : 'slow'));
    });
  };

  const server = createServer(handle);
  server.on('connection', () => { connections += 1; });
  const address = await listen(server, options.listen?.host ?? '127.0.0.1', options.listen?.port ?? 0);
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  let closing: Promise<void> | null = null;
  return {
    url: `http://${host}:${address.port}`,
    requests,
    instanceId,
    document,
    stats: () => ({ connections, peakInFlight }),
    close() {
      closing ??= new Promise<void>((resolve) => {
        for (const t of timers) clearTimeout(t);
        timers.clear();
        server.close(() => resolve());
        server.closeAllConnections();
      });
      return closing;
    },
  };
}
