import assert from 'node:assert/strict';
import fc from 'fast-check';
import { IdentityDocumentError, MAX_IDENTITY_INPUT, verifyIdentityDocument, type IdentityCheck } from '../../agent/metadata/identity-document.js';
import { identityDocumentText, makeTestPki, type TestPki } from '../support/pkcs7.js';

// The rsa2048 PKCS#7 over the identity document, with a test PKI made by the real openssl:
// genuine signatures pass (attached, detached, streamed BER, with or without signed attributes,
// with the pinned certificate embedded); everything else fails with our own error naming the check.

async function refused(promise: Promise<unknown>, check: IdentityCheck, pattern?: RegExp): Promise<IdentityDocumentError> {
  const err = await promise.then(() => null, (e: unknown) => e);
  assert.ok(err instanceof IdentityDocumentError, `expected an IdentityDocumentError, got ${err === null ? 'success' : String(err)}`);
  assert.equal(err.check, check, err.message);
  assert.match(err.message, /^identity document: /);
  assert.doesNotMatch(err.message, /\n|at .*\.js:\d+/, 'no stack dump in the message');
  if (pattern) assert.match(err.message, pattern);
  return err;
}

describe('identity document: rsa2048 PKCS#7 verification', function () {
  let pki: TestPki;
  const document = identityDocumentText({ marketplaceProductCodes: ['3iplms73etrdhxdepv72l6ywj'], billingProducts: ['bp-6ba54002'] });

  before(async () => {
    pki = await makeTestPki();
  });
  after(async () => {
    await pki?.cleanup();
  });

  describe('genuine signatures pass', () => {
    it('attached content (the document inside the PKCS#7), no certificates', async () => {
      const pkcs7 = await pki.sign(document);
      assert.match(pkcs7, /\n/, 'served wrapped, as the metadata service does');
      const id = await verifyIdentityDocument({ document, pkcs7 }, pki.pem.region);
      assert.deepEqual(id, {
        instanceId: 'i-0123456789abcdef0',
        region: 'eu-west-3',
        marketplaceProductCodes: ['3iplms73etrdhxdepv72l6ywj'],
        billingProducts: ['bp-6ba54002'],
        signer: 'CN=imprint test region, O=imprint tests',
        attached: true,
      });
    });

    it('detached signature, checked over the served document', async () => {
      const pkcs7 = await pki.sign(document, { attached: false });
      const id = await verifyIdentityDocument({ document, pkcs7 }, pki.pem.region);
      assert.equal(id.attached, false);
      assert.equal(id.instanceId, 'i-0123456789abcdef0');
    });

    it('streamed BER (indefinite lengths, chunked OCTET STRING), the shape AWS serves', async () => {
      const pkcs7 = await pki.sign(document, { stream: true });
      assert.ok(pkcs7.startsWith('MIAGCSqGSIb3DQEHAqCAMIAC'), 'indefinite-length SignedData');
      assert.equal((await verifyIdentityDocument({ document, pkcs7 }, pki.pem.region)).attached, true);
    });

    it('without signed attributes (the signature covers the document itself)', async () => {
      const pkcs7 = await pki.sign(document, { noattr: true });
      assert.equal((await verifyIdentityDocument({ document, pkcs7 }, pki.pem.region)).region, 'eu-west-3');
    });

    it('signer named by subject key identifier instead of issuer and serial', async () => {
      const pkcs7 = await pki.sign(document, { keyid: true });
      assert.equal((await verifyIdentityDocument({ document, pkcs7 }, pki.pem.region)).region, 'eu-west-3');
    });

    it('a PKCS#7 that embeds the pinned certificate itself', async () => {
      const pkcs7 = await pki.sign(document, { embed: true });
      assert.equal((await verifyIdentityDocument({ document, pkcs7 }, pki.pem.region)).instanceId, 'i-0123456789abcdef0');
    });

    it('PEM-armoured signature text, and a pinned bundle with several region certificates', async () => {
      const pkcs7 = `-----BEGIN PKCS7-----\n${await pki.sign(document)}\n-----END PKCS7-----\n`;
      const id = await verifyIdentityDocument({ document, pkcs7 }, `${pki.pem.other}${pki.pem.region}`);
      assert.equal(id.signer, 'CN=imprint test region, O=imprint tests');
    });

    it('null product code fields are null', async () => {
      const plain = identityDocumentText({ marketplaceProductCodes: null, billingProducts: null });
      const id = await verifyIdentityDocument({ document: plain, pkcs7: await pki.sign(plain) }, pki.pem.region);
      assert.equal(id.marketplaceProductCodes, null);
      assert.equal(id.billingProducts, null);
    });
  });

  describe('everything else fails', () => {
    it('a tampered document (detached: the digest no longer matches)', async () => {
      const pkcs7 = await pki.sign(document, { attached: false });
      const tampered = document.replace('3iplms73etrdhxdepv72l6ywj', '3iplms73etrdhxdepv72l6ywk');
      await refused(verifyIdentityDocument({ document: tampered, pkcs7 }, pki.pem.region), 'signed-attributes', /messageDigest does not match/);
    });

    it('a tampered document without signed attributes (the RSA signature fails)', async () => {
      const pkcs7 = await pki.sign(document, { attached: false, noattr: true });
      await refused(verifyIdentityDocument({ document: `${document} `, pkcs7 }, pki.pem.region), 'signature');
    });

    it('a served document that differs from the attached one, even by a trailing newline', async () => {
      const pkcs7 = await pki.sign(document);
      await refused(verifyIdentityDocument({ document: `${document}\n`, pkcs7 }, pki.pem.region), 'content', /differs from the served document/);
    });

    it('a wrong pinned certificate (another certificate from the same CA)', async () => {
      const pkcs7 = await pki.sign(document);
      await refused(verifyIdentityDocument({ document, pkcs7 }, pki.pem.other), 'signer', /not the pinned certificate/);
    });

    it('the CA certificate pinned instead of the region certificate', async () => {
      const pkcs7 = await pki.sign(document);
      await refused(verifyIdentityDocument({ document, pkcs7 }, pki.pem.ca), 'signer');
    });

    it('a forged PKCS#7 signed by an attacker\'s self-made certificate that it embeds (self-consistent)', async () => {
      const forged = identityDocumentText({ marketplaceProductCodes: ['3iplms73etrdhxdepv72l6ywj'], instanceId: 'i-0123456789abcdef0' });
      const pkcs7 = await pki.sign(forged, { signer: 'attacker', embed: true });
      await refused(verifyIdentityDocument({ document: forged, pkcs7 }, pki.pem.region), 'signer', /signed by a certificate it carries itself/);
    });

    it('a forged PKCS#7 whose embedded signer copies the pinned certificate\'s issuer and serial', async () => {
      const pkcs7 = await pki.sign(document, { signer: 'spoof', embed: true });
      await refused(verifyIdentityDocument({ document, pkcs7 }, pki.pem.region), 'embedded-certificate', /not the pinned one/);
    });

    it('the same spoofed signer without embedding it: the signature does not verify with the pinned key', async () => {
      const pkcs7 = await pki.sign(document, { signer: 'spoof' });
      await refused(verifyIdentityDocument({ document, pkcs7 }, pki.pem.region), 'signature');
    });

    it('a second signer beside the genuine one', async () => {
      const pkcs7 = await pki.sign(document, { alsoSignedBy: ['attacker'] });
      await refused(verifyIdentityDocument({ document, pkcs7 }, pki.pem.region), 'structure', /2 signers/);
    });

    it('SHA-1 and SHA-512 digests (AWS signs rsa2048 with SHA-256)', async () => {
      await refused(verifyIdentityDocument({ document, pkcs7: await pki.sign(document, { md: 'sha1' }) }, pki.pem.region), 'algorithm', /SHA-1/);
      await refused(verifyIdentityDocument({ document, pkcs7: await pki.sign(document, { md: 'sha512' }) }, pki.pem.region), 'algorithm', /SHA-512/);
    });

    it('garbage, truncated and oversized input', async () => {
      const pkcs7 = await pki.sign(document);
      const pem = pki.pem.region;
      await refused(verifyIdentityDocument({ document, pkcs7: '' }, pem), 'input', /empty/);
      await refused(verifyIdentityDocument({ document, pkcs7: 'not base64 at all!' }, pem), 'input', /not valid base64/);
      await refused(verifyIdentityDocument({ document, pkcs7: Buffer.from('{"hello": "world"}').toString('base64') }, pem), 'structure');
      const compact = pkcs7.replace(/\n/g, '');
      const truncated = compact.slice(0, Math.floor(compact.length / 8) * 4);
      await refused(verifyIdentityDocument({ document, pkcs7: truncated }, pem), 'structure', /truncated or corrupt/);
      const trailing = Buffer.concat([Buffer.from(compact, 'base64'), Buffer.from([0, 0])]).toString('base64');
      await refused(verifyIdentityDocument({ document, pkcs7: trailing }, pem), 'structure', /trailing/);
      await refused(verifyIdentityDocument({ document, pkcs7: 'A'.repeat(MAX_IDENTITY_INPUT + 4) }, pem), 'input', /larger than/);
      await refused(verifyIdentityDocument({ document: 'x'.repeat(MAX_IDENTITY_INPUT + 1), pkcs7 }, pem), 'input', /larger than/);
    });

    it('hostile nesting does not escape as a stack overflow', async () => {
      const depth = 10_000; // 40 000 bytes: under the size bound, deep enough to hurt a recursive parser
      const nested = Buffer.concat([Buffer.alloc(depth * 2, Buffer.from([0x30, 0x80])), Buffer.alloc(depth * 2, 0)]);
      await refused(verifyIdentityDocument({ document, pkcs7: nested.toString('base64') }, pki.pem.region), 'structure');
    });

    it('a pinned file that is not an RSA certificate', async () => {
      const pkcs7 = await pki.sign(document);
      await refused(verifyIdentityDocument({ document, pkcs7 }, 'just text'), 'pinned-certificate', /no PEM certificate/);
      await refused(verifyIdentityDocument({ document, pkcs7 }, '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n'), 'pinned-certificate', /not a valid X.509/);
      await refused(verifyIdentityDocument({ document, pkcs7 }, await pki.ecCertificate()), 'pinned-certificate', /ec key/);
    });

    it('a genuinely signed document that is not usable JSON', async () => {
      for (const bad of ['not json', '[]', '{"region": "eu-west-3"}', '{"instanceId": "i-1", "region": "r", "billingProducts": [1]}']) {
        await refused(verifyIdentityDocument({ document: bad, pkcs7: await pki.sign(bad) }, pki.pem.region), 'document');
      }
    });
  });

  describe('properties', () => {
    it('arbitrary text as the signature fails with our error, never anything else', async () => {
      await fc.assert(fc.asyncProperty(fc.oneof(fc.string(), fc.base64String({ maxLength: 400 }), fc.uint8Array({ maxLength: 300 }).map((b) => Buffer.from(b).toString('base64'))), async (text) => {
        const err = await verifyIdentityDocument({ document, pkcs7: text }, pki.pem.region).then(() => null, (e: unknown) => e);
        assert.ok(err instanceof IdentityDocumentError, String(err));
      }), { numRuns: 300 });
    });

    it('a single flipped byte anywhere either fails with our error or changes nothing that is returned', async () => {
      const genuine = Buffer.from(await pki.sign(document, { embed: true }), 'base64');
      const expected = await verifyIdentityDocument({ document, pkcs7: genuine.toString('base64') }, pki.pem.region);
      await fc.assert(fc.asyncProperty(fc.nat({ max: genuine.length - 1 }), fc.integer({ min: 1, max: 255 }), async (at, xor) => {
        const copy = Buffer.from(genuine);
        copy[at] = (copy[at] as number) ^ xor;
        const outcome = await verifyIdentityDocument({ document, pkcs7: copy.toString('base64') }, pki.pem.region).then((v) => v, (e: unknown) => e);
        if (outcome instanceof IdentityDocumentError) return;
        assert.deepEqual(outcome, expected, `byte ${at} ^ ${xor} was accepted with different content`);
      }), { numRuns: 200 });
    });
  });
});
