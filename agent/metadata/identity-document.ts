import { createHash, timingSafeEqual, verify as verifySignature, X509Certificate, constants as cryptoConstants, type KeyObject } from 'node:crypto';
import * as asn1js from 'asn1js';
import { Certificate, ContentInfo, IssuerAndSerialNumber, SignedData, type SignerInfo } from 'pkijs';
import { ImprintError } from '../os/errors.js';
import type { IdentityDocument } from './types.js';

// The EC2 instance identity document and its `rsa2048` signature: a PKCS#7 (CMS) SignedData,
// base64 DER, signed with SHA-256 and the region's RSA 2048 key. It is verified against the
// region certificate pinned in the image, and nothing else:
//
// - The pinned certificate(s) are the only trust anchors. The signer is found by the SignerInfo's
//   issuer+serial (or subject key identifier) among the PINNED certificates only.
// - Certificates the PKCS#7 carries are never used for anything. One that claims to be the
//   signer must be byte for byte the pinned one; otherwise the PKCS#7 is refused.
// - Attached content must be byte for byte the served document; detached signatures are checked
//   over the served document.
// - Signed attributes, when present, must carry one messageDigest equal to SHA-256 of the content
//   and a contentType of id-data; the signature then covers their DER (as a SET).
// - SHA-256 with RSA (PKCS#1 v1.5) only: AWS documents rsa2048 as SHA-256; SHA-1 is refused.
//
// Parsing uses asn1js/pkijs; the one cryptographic operation (RSA verify of the exact signed
// bytes with the pinned public key) and the digests use node:crypto, so no WebCrypto engine and
// no pkijs verify() (which looks for the signer among the embedded certificates) are involved.

/** What a verified identity document says that imprint uses. */
export interface VerifiedIdentity {
  instanceId: string;
  region: string;
  /** null when the document says null (or leaves the field out). */
  marketplaceProductCodes: string[] | null;
  billingProducts: string[] | null;
  /** Subject of the pinned certificate that signed the document. */
  signer: string;
  /** true when the PKCS#7 carried the document itself, false for a detached signature. */
  attached: boolean;
}

/** Which check refused the document; the message says it in words. */
export type IdentityCheck =
  | 'input' | 'pinned-certificate' | 'structure' | 'content' | 'algorithm'
  | 'signer' | 'embedded-certificate' | 'signed-attributes' | 'signature' | 'document';

export class IdentityDocumentError extends ImprintError {
  constructor(readonly check: IdentityCheck, message: string) {
    super(`identity document: ${message}`, 'task');
    this.name = 'IdentityDocumentError';
  }
}

/** Bound on the base64 signature text and on the document (AWS's are ~2 KiB and ~0.5 KiB). */
export const MAX_IDENTITY_INPUT = 64 * 1024;

const OID = {
  data: '1.2.840.113549.1.7.1',
  signedData: '1.2.840.113549.1.7.2',
  contentType: '1.2.840.113549.1.9.3',
  messageDigest: '1.2.840.113549.1.9.4',
  sha256: '2.16.840.1.101.3.4.2.1',
  sha1: '1.3.14.3.2.26',
  rsaEncryption: '1.2.840.113549.1.1.1',
  sha256WithRsa: '1.2.840.113549.1.1.11',
  sha1WithRsa: '1.2.840.113549.1.1.5',
  subjectKeyIdentifier: '2.5.29.14',
} as const;

const DIGEST_NAMES: Record<string, string> = {
  [OID.sha1]: 'SHA-1', '2.16.840.1.101.3.4.2.2': 'SHA-384', '2.16.840.1.101.3.4.2.3': 'SHA-512', '1.2.840.113549.2.5': 'MD5',
};

const fail = (check: IdentityCheck, message: string): never => {
  throw new IdentityDocumentError(check, message);
};

interface Pinned {
  der: Uint8Array;
  issuer: Uint8Array;
  serial: Uint8Array;
  /** The subject key identifier extension, else SHA-1 of the public key (RFC 5280 4.2.1.2 (1)). */
  keyIds: Uint8Array[];
  key: KeyObject;
  subject: string;
}

const arrayBuffer = (b: Buffer): ArrayBuffer => b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength) as ArrayBuffer;
const view = (b: ArrayBuffer | Uint8Array): Uint8Array => (b instanceof Uint8Array ? b : new Uint8Array(b));

function sameBytes(a: ArrayBuffer | Uint8Array, b: ArrayBuffer | Uint8Array): boolean {
  const x = view(a);
  const y = view(b);
  return x.byteLength === y.byteLength && (x.byteLength === 0 || timingSafeEqual(x, y));
}

/** Strict base64: only the alphabet, whitespace between groups, correct padding. */
function decodeBase64(text: string, what: string, check: IdentityCheck): Buffer {
  const compact = text.replace(/[\r\n\t ]/g, '');
  if (compact.length === 0) fail(check, `${what} is empty`);
  if (compact.length % 4 !== 0 || !/^[A-Za-z0-9+/]+={0,2}$/.test(compact)) fail(check, `${what} is not valid base64`);
  return Buffer.from(compact, 'base64');
}

function subjectOf(cert: X509Certificate): string {
  return cert.subject.replace(/\n/g, ', ');
}

/** Parses the pinned PEM: one certificate, or a bundle (one per region the image runs in). */
function parsePinnedCertificates(pem: string): Pinned[] {
  if (pem.length > MAX_IDENTITY_INPUT) fail('pinned-certificate', `the pinned certificate file is larger than ${MAX_IDENTITY_INPUT} bytes`);
  const blocks = [...pem.matchAll(/-----BEGIN CERTIFICATE-----([\s\S]*?)-----END CERTIFICATE-----/g)];
  if (blocks.length === 0) fail('pinned-certificate', 'the pinned certificate file holds no PEM certificate');
  return blocks.map((block, i) => {
    const der = decodeBase64(block[1] as string, `pinned certificate ${i + 1}`, 'pinned-certificate');
    let x509: X509Certificate;
    let parsed: Certificate;
    try {
      x509 = new X509Certificate(der);
      parsed = Certificate.fromBER(arrayBuffer(der));
    } catch {
      return fail('pinned-certificate', `pinned certificate ${i + 1} is not a valid X.509 certificate`);
    }
    const key = x509.publicKey;
    if (key.asymmetricKeyType !== 'rsa') fail('pinned-certificate', `the pinned certificate ${subjectOf(x509)} has a ${key.asymmetricKeyType ?? 'unknown'} key; the rsa2048 signature needs the region's RSA certificate`);
    const bits = key.asymmetricKeyDetails?.modulusLength ?? 0;
    if (bits < 2048) fail('pinned-certificate', `the pinned certificate ${subjectOf(x509)} has a ${bits}-bit RSA key; at least 2048 bits are required`);
    return {
      der: new Uint8Array(der),
      issuer: view(parsed.issuer.valueBeforeDecode),
      serial: parsed.serialNumber.valueBlock.valueHexView,
      keyIds: certKeyIds(parsed),
      key,
      subject: subjectOf(x509),
    };
  });
}

/** The bytes of an OCTET STRING, primitive or (BER) constructed from OCTET STRING pieces. */
function octets(block: unknown, what: string): Uint8Array {
  if (!(block instanceof asn1js.OctetString)) return fail('structure', `${what} is not an OCTET STRING`);
  if (!block.idBlock.isConstructed) return block.valueBlock.valueHexView;
  const parts: Uint8Array[] = [];
  for (const piece of block.valueBlock.value) parts.push(octets(piece, what));
  return Buffer.concat(parts);
}

/** DER of the embedded certificates, straight from the parsed tree (never re-encoded). */
function embeddedCertificates(signedDataBlock: asn1js.Sequence): { der: Uint8Array; cert: Certificate | null }[] {
  const set = signedDataBlock.valueBlock.value.find((b) => b.idBlock.tagClass === 3 && b.idBlock.tagNumber === 0);
  if (!set || !(set instanceof asn1js.Constructed)) return [];
  return set.valueBlock.value.map((item) => {
    let cert: Certificate | null = null;
    if (item.idBlock.tagClass === 1 && item.idBlock.tagNumber === 16) {
      try {
        cert = new Certificate({ schema: item });
      } catch {
        cert = null;
      }
    }
    return { der: item.valueBeforeDecodeView, cert };
  });
}

type Sid = { kind: 'issuer-serial'; issuer: Uint8Array; serial: Uint8Array } | { kind: 'key-id'; keyId: Uint8Array };

function signerId(info: SignerInfo): Sid {
  if (info.sid instanceof IssuerAndSerialNumber) {
    return { kind: 'issuer-serial', issuer: view(info.sid.issuer.valueBeforeDecode), serial: info.sid.serialNumber.valueBlock.valueHexView };
  }
  const sid = info.sid as asn1js.BaseBlock;
  if (sid?.idBlock?.tagClass === 3 && sid.idBlock.tagNumber === 0) {
    // [0] IMPLICIT SubjectKeyIdentifier: primitive bytes (or a wrapped OCTET STRING if explicit).
    const keyId = sid.idBlock.isConstructed
      ? octets((sid as asn1js.Constructed).valueBlock.value[0], 'the signer key identifier')
      : (sid as asn1js.Primitive).valueBlock.valueHexView;
    return { kind: 'key-id', keyId };
  }
  return fail('structure', 'the signer is identified neither by issuer and serial number nor by key identifier');
}

function matches(sid: Sid, issuer: Uint8Array, serial: Uint8Array, keyIds: Uint8Array[]): boolean {
  if (sid.kind === 'issuer-serial') return sameBytes(sid.issuer, issuer) && sameBytes(sid.serial, serial);
  return keyIds.some((k) => sameBytes(k, sid.keyId));
}

function certKeyIds(cert: Certificate): Uint8Array[] {
  const ids: Uint8Array[] = [];
  const ski = cert.extensions?.find((e) => e.extnID === OID.subjectKeyIdentifier);
  if (ski) {
    const inner = asn1js.fromBER(ski.extnValue.valueBlock.valueHexView);
    if (inner.offset !== -1 && inner.result instanceof asn1js.OctetString) ids.push(inner.result.valueBlock.valueHexView);
  }
  ids.push(createHash('sha1').update(cert.subjectPublicKeyInfo.subjectPublicKey.valueBlock.valueHexView).digest());
  return ids;
}

function describeSid(sid: Sid): string {
  if (sid.kind === 'key-id') return `key identifier ${Buffer.from(sid.keyId).toString('hex')}`;
  return `serial ${Buffer.from(sid.serial).toString('hex')}`;
}

function nullParams(params: unknown): boolean {
  return params === undefined || params instanceof asn1js.Null;
}

function checkAlgorithms(info: SignerInfo): void {
  const digest = info.digestAlgorithm.algorithmId;
  if (digest !== OID.sha256) {
    const name = DIGEST_NAMES[digest] ?? digest;
    fail('algorithm', digest === OID.sha1
      ? 'signed with SHA-1, which is refused (AWS signs rsa2048 with SHA-256)'
      : `digest algorithm ${name} is not accepted (SHA-256 only)`);
  }
  if (!nullParams(info.digestAlgorithm.algorithmParams)) fail('algorithm', 'unexpected SHA-256 parameters');
  const sig = info.signatureAlgorithm.algorithmId;
  if (sig !== OID.rsaEncryption && sig !== OID.sha256WithRsa) {
    fail('algorithm', sig === OID.sha1WithRsa ? 'signed with SHA-1 with RSA, which is refused' : `signature algorithm ${sig} is not RSA with SHA-256 (PKCS#1 v1.5)`);
  }
  if (!nullParams(info.signatureAlgorithm.algorithmParams)) fail('algorithm', 'unexpected RSA signature parameters');
}

/** The bytes the signature covers: the content itself, or the DER of the signed attributes. */
function signedBytes(info: SignerInfo, content: Uint8Array, eContentType: string): Uint8Array {
  if (!info.signedAttrs) return content;
  const attrs = info.signedAttrs.attributes;
  const digests = attrs.filter((a) => a.type === OID.messageDigest);
  const types = attrs.filter((a) => a.type === OID.contentType);
  if (digests.length !== 1 || digests[0]?.values.length !== 1) fail('signed-attributes', 'the signed attributes must hold exactly one messageDigest');
  if (types.length !== 1 || types[0]?.values.length !== 1) fail('signed-attributes', 'the signed attributes must hold exactly one contentType');
  const type = types[0]?.values[0];
  if (!(type instanceof asn1js.ObjectIdentifier) || type.getValue() !== eContentType) fail('signed-attributes', 'the signed contentType is not the content\'s type');
  const claimed = octets(digests[0]?.values[0], 'the messageDigest attribute');
  const actual = createHash('sha256').update(content).digest();
  if (!sameBytes(claimed, actual)) fail('signed-attributes', 'the signed messageDigest does not match the document (the document was changed after signing)');
  const encoded = new Uint8Array(info.signedAttrs.encodedValue.slice(0));
  if (encoded[0] !== 0x31) encoded[0] = 0x31; // signed as a SET OF, sent as [0] IMPLICIT (RFC 5652 5.4)
  return encoded;
}

function stringList(value: unknown, field: string): string[] | null {
  if (value === undefined || value === null) return null;
  if (!Array.isArray(value) || !value.every((v) => typeof v === 'string')) return fail('document', `${field} is not a list of strings`);
  return value as string[];
}

function parseDocument(bytes: Uint8Array): Omit<VerifiedIdentity, 'signer' | 'attached'> {
  let doc: unknown;
  try {
    doc = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes));
  } catch {
    return fail('document', 'the signed document is not UTF-8 JSON');
  }
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) return fail('document', 'the signed document is not a JSON object');
  const d = doc as Record<string, unknown>;
  if (typeof d.instanceId !== 'string' || d.instanceId === '') fail('document', 'the signed document has no instanceId');
  if (typeof d.region !== 'string' || d.region === '') fail('document', 'the signed document has no region');
  return {
    instanceId: d.instanceId as string,
    region: d.region as string,
    marketplaceProductCodes: stringList(d.marketplaceProductCodes, 'marketplaceProductCodes'),
    billingProducts: stringList(d.billingProducts, 'billingProducts'),
  };
}

function parseSignedData(der: Buffer): { signedData: SignedData; block: asn1js.Sequence } {
  const asn = asn1js.fromBER(arrayBuffer(der));
  if (asn.offset === -1) fail('structure', 'the signature is not DER/BER (truncated or corrupt)');
  if (asn.offset !== der.byteLength) fail('structure', `the signature has ${der.byteLength - asn.offset} bytes of trailing garbage`);
  let info: ContentInfo;
  try {
    info = new ContentInfo({ schema: asn.result });
  } catch {
    return fail('structure', 'the signature is not a PKCS#7 ContentInfo');
  }
  if (info.contentType !== OID.signedData) fail('structure', `the PKCS#7 is not SignedData (content type ${info.contentType})`);
  const block = info.content as unknown;
  if (!(block instanceof asn1js.Sequence)) return fail('structure', 'the PKCS#7 SignedData is malformed');
  try {
    return { signedData: new SignedData({ schema: block }), block };
  } catch {
    return fail('structure', 'the PKCS#7 SignedData is malformed');
  }
}

/**
 * Verifies the base64 PKCS#7 over the identity document with the pinned certificate(s) only, and
 * returns the document's fields. Throws IdentityDocumentError naming the check that failed.
 */
export async function verifyIdentityDocument(doc: IdentityDocument, pinnedCertPem: string): Promise<VerifiedIdentity> {
  try {
    return verifyOrThrow(doc, pinnedCertPem);
  } catch (err) {
    if (err instanceof IdentityDocumentError) throw err;
    // Anything else (a parser bug, a stack overflow on hostile nesting) is reported without its stack.
    throw new IdentityDocumentError('structure', `the signature could not be parsed (${err instanceof Error ? err.message.split('\n')[0] : String(err)})`);
  }
}

function verifyOrThrow(doc: IdentityDocument, pinnedCertPem: string): VerifiedIdentity {
  if (typeof doc.pkcs7 !== 'string' || typeof doc.document !== 'string') fail('input', 'missing document or signature');
  if (doc.pkcs7.length > MAX_IDENTITY_INPUT) fail('input', `the signature is larger than ${MAX_IDENTITY_INPUT} bytes`);
  const served = Buffer.from(doc.document, 'utf8');
  if (served.byteLength > MAX_IDENTITY_INPUT) fail('input', `the document is larger than ${MAX_IDENTITY_INPUT} bytes`);
  const pinned = parsePinnedCertificates(pinnedCertPem);
  // Tolerate PEM armour around the base64 (AWS serves it bare; people paste it armoured).
  const body = doc.pkcs7.replace(/-----(BEGIN|END) PKCS7-----/g, '');
  const der = decodeBase64(body, 'the signature', 'input');
  const { signedData, block } = parseSignedData(der);

  const encap = signedData.encapContentInfo;
  if (encap.eContentType !== OID.data) fail('structure', `the signed content type is ${encap.eContentType}, not data`);
  const attached = encap.eContent !== undefined;
  let content: Uint8Array = served;
  if (attached) {
    content = octets(encap.eContent, 'the encapsulated document');
    if (!sameBytes(content, served)) fail('content', 'the document inside the PKCS#7 differs from the served document');
  }

  if (signedData.signerInfos.length !== 1) fail('structure', `the PKCS#7 has ${signedData.signerInfos.length} signers; exactly one is expected`);
  const info = signedData.signerInfos[0] as SignerInfo;
  checkAlgorithms(info);
  const sid = signerId(info);

  const embedded = embeddedCertificates(block);
  const claimsSigner = embedded.filter((e) => e.cert !== null && matches(sid, view(e.cert.issuer.valueBeforeDecode), e.cert.serialNumber.valueBlock.valueHexView, certKeyIds(e.cert)));
  const signer = pinned.find((p) => matches(sid, p.issuer, p.serial, p.keyIds));
  if (!signer) {
    if (claimsSigner.length > 0) fail('signer', 'the PKCS#7 is signed by a certificate it carries itself, not by the pinned certificate');
    return fail('signer', `the signer (${describeSid(sid)}) is not the pinned certificate`);
  }
  if (claimsSigner.some((e) => !sameBytes(e.der, signer.der))) {
    fail('embedded-certificate', 'the PKCS#7 carries a signer certificate that is not the pinned one');
  }

  const toVerify = signedBytes(info, content, encap.eContentType);
  const signature = octets(info.signature, 'the signature value');
  let valid = false;
  try {
    valid = verifySignature('sha256', toVerify, { key: signer.key, padding: cryptoConstants.RSA_PKCS1_PADDING }, signature);
  } catch {
    valid = false;
  }
  if (!valid) fail('signature', info.signedAttrs ? 'the RSA signature over the signed attributes does not verify with the pinned certificate' : 'the RSA signature over the document does not verify with the pinned certificate');

  return { ...parseDocument(content), signer: signer.subject, attached };
}
