import { run } from '../../os/exec.js';
import { ImprintError } from '../../os/errors.js';

// The instance identity document and its PKCS#7 signature, shaped like AWS's: the same field
// order and " : " spacing (clients must verify the bytes as served, not a re-serialization),
// and the signature as base64 in 64-column lines without PEM armour.

export interface EmulatorIdentity {
  region: string;
  availabilityZone: string;
  accountId: string;
  imageId: string;
  instanceType: string;
  architecture: string;
  privateIp: string;
  /** null when there are none, as AWS writes it. */
  marketplaceProductCodes: string[] | null;
  billingProducts: string[] | null;
  /** When the instance was launched (ISO 8601, whole seconds). */
  pendingTime: string;
}

export interface IdentitySigning {
  /** PEM private key and certificate the document is signed with. */
  key: string;
  cert: string;
  /** Put the signer certificate into the PKCS#7 (AWS does not; forged-signature tests need it). */
  embedCert?: boolean;
}

function jsonValue(v: string | string[] | null): string {
  if (Array.isArray(v)) return v.length === 0 ? '[ ]' : `[ ${v.map((s) => JSON.stringify(s)).join(', ')} ]`;
  return JSON.stringify(v);
}

export function identityDocument(id: EmulatorIdentity, instanceId: string): string {
  const fields: [string, string | string[] | null][] = [
    ['accountId', id.accountId],
    ['architecture', id.architecture],
    ['availabilityZone', id.availabilityZone],
    ['billingProducts', id.billingProducts],
    ['devpayProductCodes', null],
    ['marketplaceProductCodes', id.marketplaceProductCodes],
    ['imageId', id.imageId],
    ['instanceId', instanceId],
    ['instanceType', id.instanceType],
    ['kernelId', null],
    ['pendingTime', id.pendingTime],
    ['privateIp', id.privateIp],
    ['ramdiskId', null],
    ['region', id.region],
    ['version', '2017-09-30'],
  ];
  return `{\n${fields.map(([k, v]) => `  ${JSON.stringify(k)} : ${jsonValue(v)}`).join(',\n')}\n}`;
}

/**
 * Signs the exact document bytes: PKCS#7 SignedData with the content attached (-nodetach),
 * no S/MIME capabilities, and no certificates unless asked, so a verifier must bring the
 * region certificate — as `openssl smime -verify -content document -certfile cert` does.
 */
export async function signDocument(document: string, signing: IdentitySigning): Promise<string> {
  const args = ['smime', '-sign', '-binary', '-nodetach', '-nosmimecap', '-md', 'sha256', '-signer', signing.cert, '-inkey', signing.key, '-outform', 'PEM'];
  if (!signing.embedCert) args.push('-nocerts');
  let pem: string;
  try {
    pem = (await run('openssl', args, { input: document, timeoutMs: 30_000 })).stdout;
  } catch (err) {
    throw new ImprintError(`cannot sign the identity document with ${signing.key} and ${signing.cert}: ${(err as Error).message}`, 'command');
  }
  const m = /-----BEGIN PKCS7-----([^-]+)-----END PKCS7-----/.exec(pem);
  const b64 = m?.[1]?.replace(/\s+/g, '') ?? '';
  if (b64 === '') throw new ImprintError('openssl smime -sign printed no PKCS7 block', 'command');
  return b64.match(/.{1,64}/g)?.join('\n') ?? b64;
}
