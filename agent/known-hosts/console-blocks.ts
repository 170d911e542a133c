import { fingerprintLine, parsePublicKey, type PublicKey } from '../parsers/ssh-public-key.js';

// The host key blocks of a console log (imprint's, cloud-init's: the same markers), read on
// the user's side to build known_hosts without trusting the first connection. Lines may carry
// a prefix (a cloud's "ec2: ", journald's "[  12.3] imprint[28]: ") and a CR; the last complete
// pair of blocks is the latest boot's.

const FP_BEGIN = '-----BEGIN SSH HOST KEY FINGERPRINTS-----';
const FP_END = '-----END SSH HOST KEY FINGERPRINTS-----';
const KEYS_BEGIN = '-----BEGIN SSH HOST KEY KEYS-----';
const KEYS_END = '-----END SSH HOST KEY KEYS-----';

export interface VerifiedHostKeys {
  keys: PublicKey[];
  /** The fingerprint lines, as printed (for the operator to compare by eye too). */
  fingerprints: string[];
}

export class ConsoleBlockError extends Error {}

/** The lines of every block between BEGIN and END markers, in order of appearance. */
function blocks(text: string, begin: string, end: string): string[][] {
  const out: string[][] = [];
  let current: string[] | null = null;
  for (const raw of text.split('\n')) {
    const line = raw.replace(/\r$/, '');
    if (line.includes(begin)) current = [];
    else if (line.includes(end)) {
      if (current) out.push(current);
      current = null;
    } else if (current) current.push(line);
  }
  return out;
}

const FINGERPRINT = /(\d+) (SHA256:[A-Za-z0-9+/]{43}) (.*) \(([A-Z0-9-]+)\)\s*$/;
const KEY = /(ssh-ed25519|ecdsa-sha2-nistp(?:256|384|521)|ssh-rsa|sk-ssh-ed25519@openssh\.com|sk-ecdsa-sha2-nistp256@openssh\.com) ([A-Za-z0-9+/]+={0,2})(?:\s|$)/;

/**
 * The last boot's host keys, each checked against the last fingerprint block: a key whose
 * fingerprint is not there, or a fingerprint without its key, is refused, and nothing is
 * returned (a half-verified set would be trust on first use again).
 */
export function verifiedHostKeys(text: string): VerifiedHostKeys {
  const fpBlock = blocks(text, FP_BEGIN, FP_END).at(-1);
  const keyBlock = blocks(text, KEYS_BEGIN, KEYS_END).at(-1);
  if (!fpBlock) throw new ConsoleBlockError(`no "${FP_BEGIN}" block in the console output (imprint and cloud-init print it at first boot)`);
  if (!keyBlock) throw new ConsoleBlockError(`no "${KEYS_BEGIN}" block in the console output: the fingerprints alone cannot make known_hosts lines`);
  const fingerprints = fpBlock.map((l) => FINGERPRINT.exec(l)).filter((m): m is RegExpExecArray => m !== null);
  if (fingerprints.length === 0) throw new ConsoleBlockError('the fingerprint block holds no fingerprint line');
  const wanted = new Set(fingerprints.map((m) => m[2] as string));
  const keys: PublicKey[] = [];
  for (const line of keyBlock) {
    const m = KEY.exec(line);
    if (!m) continue;
    let key: PublicKey;
    try {
      key = parsePublicKey(`${m[1]} ${m[2]}`, 'the keys block');
    } catch (err) {
      throw new ConsoleBlockError(`a line of the keys block is not a valid public key (${(err as Error).message}): the log is damaged or was altered`);
    }
    if (!wanted.has(key.fingerprint)) throw new ConsoleBlockError(`the ${key.label} key in the keys block has fingerprint ${key.fingerprint}, which the fingerprint block does not list: refusing all keys`);
    if (!keys.some((k) => k.fingerprint === key.fingerprint)) keys.push(key);
  }
  const missing = [...wanted].filter((fp) => !keys.some((k) => k.fingerprint === fp));
  if (missing.length > 0) throw new ConsoleBlockError(`the keys block lacks the key of ${missing.join(', ')} (listed in the fingerprint block): the log is cut or altered`);
  return { keys, fingerprints: keys.map((k) => fingerprintLine({ ...k, comment: fingerprints.find((m) => m[2] === k.fingerprint)?.[3] ?? '' })) };
}

/** A known_hosts host pattern: "name", or "[name]:port" for a port other than 22 ("name:port" or "[v6]:port" given). */
export function hostPattern(host: string): string {
  const m = /^\[([^\]]+)\]:(\d{1,5})$/.exec(host) ?? /^([^:[\]]+):(\d{1,5})$/.exec(host);
  if (!m) return host;
  return m[2] === '22' ? (m[1] as string) : `[${m[1]}]:${m[2]}`;
}

export function knownHostsLines(hosts: readonly string[], keys: readonly PublicKey[]): string[] {
  const names = hosts.map(hostPattern).join(',');
  return keys.map((k) => `${names} ${k.type} ${k.blob.toString('base64')}`);
}
