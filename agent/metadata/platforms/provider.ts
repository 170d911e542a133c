import type { MetadataConfig } from '../../config.js';
import type { RootTree } from '../../os/root.js';
import { StoppableDeadline, type Deadline } from '../deadline.js';
import { ImprintError } from '../../os/errors.js';
import { INSTANCE_ID, type InstanceMetadata, type LaunchKey } from '../types.js';
import { PlatformHttp, type Hooks } from './fetch.js';
import type { PlatformName } from './names.js';

// The one interface every platform module implements, the way afterburn's providers do: it
// reads the instance (id, launch keys each with the user they belong to, optional hostname,
// optional default user, optional report-ready) and says which addresses it may contact.

export interface PlatformContext {
  root: RootTree;
  config: MetadataConfig;
  /** The service's base URL: --metadata-url / metadata.url when given, else the platform's own. */
  url: string;
  /** An explicit service was named, so an offline tree (--root) may use it. */
  explicitUrl: boolean;
  /** Azure's wireserver (--wireserver-url), else its documented address on a booted system; null for an offline tree. */
  wireserverUrl: string | null;
  productCodes: boolean;
  deadline: Deadline;
  hooks: Hooks;
  note: (line: string) => void;
}

export interface PlatformRead {
  metadata: InstanceMetadata | null;
  protocol?: string;
  close: () => Promise<void>;
}

export interface Provider {
  name: PlatformName;
  /**
   * The documented addresses, as IP literals (no DNS at boot). The first, as a URL, is the
   * default service; all of them are what units/imprint.service allows. Empty: no network.
   */
  addresses: readonly string[];
  /** How the platform is detected, for help and README. */
  detectedBy: string;
  read(ctx: PlatformContext): Promise<PlatformRead>;
}

export const NOTHING: PlatformRead = { metadata: null, close: async () => undefined };

/** An address as the host part of a URL. */
export function urlFor(address: string): string {
  return address.includes(':') ? `http://[${address}]` : `http://${address}`;
}

/**
 * The shell of every HTTP dialect: an offline tree is not the instance this machine runs on,
 * so without an explicit URL it is not asked; the client is closed whatever happens.
 */
export async function overHttp(
  name: PlatformName,
  ctx: PlatformContext,
  always: Record<string, string>,
  read: (http: PlatformHttp) => Promise<InstanceMetadata>,
): Promise<PlatformRead> {
  if (!ctx.root.isLive && !ctx.explicitUrl) {
    ctx.note(`${name}: skipped for an offline tree (give --metadata-url to use a metadata service)`);
    return NOTHING;
  }
  const http = new PlatformHttp(ctx.url, ctx.config, ctx.deadline, ctx.hooks, always);
  try {
    return { metadata: await read(http), close: () => http.close() };
  } catch (err) {
    await http.close();
    throw err;
  }
}

/**
 * The same dialect asked at several addresses at once (OpenStack over IPv4 and over IPv6
 * through each interface): the first full answer wins and the others stop. When none answers,
 * the first address's failure is the one reported.
 */
export async function firstToAnswer(
  name: PlatformName,
  ctx: PlatformContext,
  urls: readonly string[],
  always: Record<string, string>,
  read: (http: PlatformHttp) => Promise<InstanceMetadata>,
): Promise<PlatformRead> {
  const deadlines = urls.map(() => new StoppableDeadline(ctx.deadline));
  const attempts = urls.map((url, i) => overHttp(name, { ...ctx, url, deadline: deadlines[i] as Deadline }, always, read).then((r) => ({ r, i })));
  let winner: { r: PlatformRead; i: number };
  try {
    winner = await Promise.any(attempts);
  } catch (err) {
    throw (err as AggregateError).errors[0];
  }
  attempts.forEach((attempt, i) => {
    if (i === winner.i) return;
    (deadlines[i] as StoppableDeadline).stop();
    void attempt.then(({ r }) => r.close(), () => undefined);
  });
  ctx.note(`${name}: answered at ${urls[winner.i]}`);
  return winner.r;
}

/** Key texts from a list, a newline-separated string or nothing; anything else is rejected. */
export function keyList(value: unknown, origin: string, rejected: string[], user?: string): LaunchKey[] {
  const withUser = (k: LaunchKey): LaunchKey => (user === undefined ? k : { ...k, user });
  if (value === undefined || value === null) return [];
  if (typeof value === 'string') {
    return value.split('\n').map((line, i) => ({ line: line.replace(/\r$/, ''), i }))
      .filter(({ line }) => line.trim() !== '')
      .map(({ line, i }) => withUser({ origin: `${origin}[${i}]`, name: '', text: line }));
  }
  if (Array.isArray(value)) {
    return value.flatMap((v, i): LaunchKey[] => {
      if (typeof v === 'string') return [withUser({ origin: `${origin}[${i}]`, name: '', text: v })];
      rejected.push(`${origin}[${i}]: not a key string`);
      return [];
    });
  }
  rejected.push(`${origin}: not a key list`);
  return [];
}

/** An instance id as the services give it (a number for several) in the one accepted shape. */
export function idText(value: unknown): string {
  return typeof value === 'number' && Number.isSafeInteger(value) ? String(value) : typeof value === 'string' ? value.trim() : '';
}

export function optionalText(value: unknown): string | undefined {
  return typeof value === 'string' && value.trim() !== '' ? value.trim() : undefined;
}

/** The instance as a dialect read it, with the id checked before it keys any state. */
export function instance(
  source: PlatformName, id: string, keys: LaunchKey[], rejected: string[],
  extra: Pick<InstanceMetadata, 'hostname' | 'defaultUser' | 'reportReady'> = {},
): InstanceMetadata {
  if (!INSTANCE_ID.test(id)) throw new ImprintError(`${source}: instance id ${JSON.stringify(id.slice(0, 80))} is not a valid instance id`);
  const md: InstanceMetadata = { source, instanceId: id, keys, productCodes: null, identityDocument: null, rejected };
  if (extra.hostname !== undefined) md.hostname = extra.hostname;
  if (extra.defaultUser !== undefined) md.defaultUser = extra.defaultUser;
  if (extra.reportReady !== undefined) md.reportReady = extra.reportReady;
  return md;
}
