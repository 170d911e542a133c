import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';

// A throwaway PKI made with the real openssl CLI (argument arrays, no shell), standing in for
// AWS's region certificates: a test CA, the "region" certificate it issued (the one an image
// pins), another certificate from the same CA, an attacker's self-made certificate, and a
// spoofed one whose issuer and serial copy the region certificate's but whose key is the
// attacker's.

const execFileAsync = promisify(execFile);

export type Signer = 'region' | 'other' | 'attacker' | 'spoof';

export interface SignOptions {
  signer?: Signer;
  /** Carry the document inside the PKCS#7 (opaque) rather than a detached signature. Default true. */
  attached?: boolean;
  /** Embed the signer's certificate (openssl's default); false passes -nocerts. Default false. */
  embed?: boolean;
  md?: 'sha256' | 'sha1' | 'sha512';
  /** No signed attributes: the signature covers the document itself. */
  noattr?: boolean;
  /** Identify the signer by subject key identifier instead of issuer and serial. */
  keyid?: boolean;
  /** BER streaming (indefinite lengths, chunked OCTET STRING), as AWS serves rsa2048. */
  stream?: boolean;
  /** Extra -signer names (more than one SignerInfo). */
  alsoSignedBy?: Signer[];
}

export interface TestPki {
  dir: string;
  pem: Record<Signer | 'ca', string>;
  /** The base64 PKCS#7 (wrapped at 64 columns, as the metadata service serves it). */
  sign(document: string, opts?: SignOptions): Promise<string>;
  /** A fresh EC (non-RSA) certificate, for the "wrong key type" case. */
  ecCertificate(): Promise<string>;
  cleanup(): Promise<void>;
}

async function openssl(dir: string, args: string[]): Promise<void> {
  await execFileAsync('openssl', args, { cwd: dir });
}

async function issue(dir: string, name: string, subject: string, ca: string, serial: string): Promise<void> {
  await openssl(dir, ['req', '-new', '-newkey', 'rsa:2048', '-nodes', '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', subject]);
  await writeFile(path.join(dir, 'leaf.ext'), 'subjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\nbasicConstraints=CA:FALSE\n');
  await openssl(dir, ['x509', '-req', '-in', `${name}.csr`, '-CA', `${ca}.pem`, '-CAkey', `${ca}.key`, '-set_serial', serial, '-days', '2', '-sha256', '-extfile', 'leaf.ext', '-out', `${name}.pem`]);
}

async function selfSigned(dir: string, name: string, subject: string): Promise<void> {
  await openssl(dir, ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', `${name}.key`, '-out', `${name}.pem`, '-subj', subject, '-days', '2', '-sha256']);
}

export async function makeTestPki(): Promise<TestPki> {
  const dir = await mkdtemp(path.join(tmpdir(), 'imprint-pki-'));
  const caSubject = '/CN=imprint test CA/O=imprint tests';
  await Promise.all([selfSigned(dir, 'ca', caSubject), selfSigned(dir, 'attacker', '/CN=imprint test region/O=imprint tests'), selfSigned(dir, 'evilca', caSubject)]);
  await Promise.all([
    issue(dir, 'region', '/CN=imprint test region/O=imprint tests', 'ca', '2'),
    issue(dir, 'other', '/CN=imprint other region/O=imprint tests', 'ca', '3'),
    // Same issuer name and serial as the region certificate, the attacker's key and CA.
    issue(dir, 'spoof', '/CN=imprint test region/O=imprint tests', 'evilca', '2'),
  ]);
  const read = (name: string) => readFile(path.join(dir, `${name}.pem`), 'utf8');
  const pem = { ca: await read('ca'), region: await read('region'), other: await read('other'), attacker: await read('attacker'), spoof: await read('spoof') };
  let counter = 0;

  return {
    dir,
    pem,
    async sign(document, opts = {}) {
      counter += 1;
      const input = path.join(dir, `doc-${counter}.json`);
      const output = path.join(dir, `doc-${counter}.p7`);
      await writeFile(input, document);
      const signer = opts.signer ?? 'region';
      const args = ['cms', '-sign', '-binary', '-in', input, '-outform', 'DER', '-out', output, '-md', opts.md ?? 'sha256', '-signer', `${signer}.pem`, '-inkey', `${signer}.key`];
      for (const extra of opts.alsoSignedBy ?? []) args.push('-signer', `${extra}.pem`, '-inkey', `${extra}.key`);
      if (opts.attached ?? true) args.push('-nodetach');
      if (!(opts.embed ?? false)) args.push('-nocerts');
      if (opts.noattr) args.push('-noattr');
      if (opts.keyid) args.push('-keyid');
      if (opts.stream) args.push('-stream');
      await openssl(dir, args);
      const der = await readFile(output);
      return der.toString('base64').replace(/(.{64})/g, '$1\n');
    },
    async ecCertificate() {
      await openssl(dir, ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', 'ec.key', '-out', 'ec.pem', '-subj', '/CN=ec', '-days', '2']);
      return read('ec');
    },
    async cleanup() {
      if (!path.basename(dir).startsWith('imprint-pki-')) throw new Error(`refusing to remove ${dir}`);
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** An identity document shaped like AWS's (pretty-printed JSON, as the service serves it). */
export function identityDocumentText(fields: Partial<Record<string, unknown>> = {}): string {
  const doc = {
    accountId: '123456789012',
    architecture: 'x86_64',
    availabilityZone: 'eu-west-3a',
    billingProducts: null,
    devpayProductCodes: null,
    marketplaceProductCodes: ['3iplms73etrdhxdepv72l6ywj'],
    imageId: 'ami-0123456789abcdef0',
    instanceId: 'i-0123456789abcdef0',
    instanceType: 't3.micro',
    kernelId: null,
    pendingTime: '2025-01-01T00:00:00Z',
    privateIp: '10.0.0.10',
    ramdiskId: null,
    region: 'eu-west-3',
    version: '2017-09-30',
    ...fields,
  };
  return JSON.stringify(doc, null, 2).replace(/"(\w+)": /g, '"$1" : ');
}
