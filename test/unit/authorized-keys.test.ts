import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import fc from 'fast-check';
import {
  ALLOWED_KEY_TYPES,
  BLOCK_END,
  MAX_COMMENT_CHARS,
  formatKeyOptions,
  managedBlock,
  parseAuthorizedKeysFile,
  parseKeyOptions,
  replaceManagedBlock,
  sanitizeComment,
  splitAuthorizedKeyLine,
  userKeyBlobs,
  validateLaunchKey,
  type KeyOption,
} from '../../agent/parsers/authorized-keys.js';
import { ParseError } from '../../agent/parsers/errors.js';
import { widenings } from '../../agent/parsers/key-options.js';
import { certifiedKeyType, fingerprintLine, parsePublicKey } from '../../agent/parsers/ssh-public-key.js';

const run = promisify(execFile);

/** An SSH wire-format string: uint32 length + bytes. */
function sshString(data: Buffer | string): Buffer {
  const bytes = typeof data === 'string' ? Buffer.from(data, 'latin1') : data;
  const len = Buffer.alloc(4);
  len.writeUInt32BE(bytes.length);
  return Buffer.concat([len, bytes]);
}

const b64Of = (line: string): string => line.trim().split(/\s+/)[1] ?? '';
const CONTROL = /[\0-\x1f\x7f-\x9f\u2028\u2029]/;

/** Every key of the test, by name: the .pub line and what ssh-keygen -l says of it. */
interface Fixture {
  pub: string;
  listing: string;
}

describe('parsers/authorized-keys', function () {
  this.timeout(60_000);
  let dir = '';
  const keys = new Map<string, Fixture>();
  const key = (name: string): Fixture => {
    const k = keys.get(name);
    assert.ok(k, `fixture ${name} missing`);
    return k;
  };
  const pub = (name: string): string => key(name).pub.trim();
  const refused = (text: string, allowOptions = false): string => {
    const r = validateLaunchKey(text, 'public-keys/0', allowOptions);
    assert.ok(!r.ok, `accepted: ${JSON.stringify(text.slice(0, 200))}`);
    return r.reason;
  };

  before(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'imprint-unit-ak-'));
    const gen = async (name: string, args: string[]): Promise<void> => {
      await run('ssh-keygen', ['-q', '-N', '', '-C', `${name}@test`, '-f', path.join(dir, name), ...args]);
    };
    await Promise.all([
      gen('ca', ['-t', 'ed25519']),
      gen('ed25519', ['-t', 'ed25519']),
      gen('ecdsa256', ['-t', 'ecdsa', '-b', '256']),
      gen('ecdsa384', ['-t', 'ecdsa', '-b', '384']),
      gen('ecdsa521', ['-t', 'ecdsa', '-b', '521']),
      gen('rsa2048', ['-t', 'rsa', '-b', '2048']),
      gen('rsa1024', ['-t', 'rsa', '-b', '1024']),
      gen('dsa', ['-t', 'dsa']),
    ]);
    // Security keys cannot be made without the hardware; their public halves can be built.
    const ed = parsePublicKey(await readFile(path.join(dir, 'ed25519.pub'), 'utf8'));
    const skEd = Buffer.concat([sshString('sk-ssh-ed25519@openssh.com'), sshString(ed.blob.subarray(4 + 11 + 4)), sshString('ssh:')]);
    await writeFile(path.join(dir, 'sk-ed25519.pub'), `sk-ssh-ed25519@openssh.com ${skEd.toString('base64')} sk-ed25519@test\n`);
    const p256 = parsePublicKey(await readFile(path.join(dir, 'ecdsa256.pub'), 'utf8'));
    const skEc = Buffer.concat([sshString('sk-ecdsa-sha2-nistp256@openssh.com'), p256.blob.subarray(4 + 19), sshString('ssh:')]);
    await writeFile(path.join(dir, 'sk-ecdsa.pub'), `sk-ecdsa-sha2-nistp256@openssh.com ${skEc.toString('base64')} sk-ecdsa@test\n`);
    // Certificates of each kind, signed by the CA (DSA and RSA-1024 too: they must still be refused).
    const certs = ['ed25519', 'ecdsa256', 'ecdsa384', 'rsa2048', 'rsa1024', 'dsa', 'sk-ed25519', 'sk-ecdsa'];
    await Promise.all(certs.map((c) => run('ssh-keygen', ['-q', '-s', path.join(dir, 'ca'), '-I', `${c} id`, '-n', 'root,debian', path.join(dir, `${c}.pub`)])));
    const names = ['ca', 'ed25519', 'ecdsa256', 'ecdsa384', 'ecdsa521', 'rsa2048', 'rsa1024', 'dsa', 'sk-ed25519', 'sk-ecdsa', ...certs.map((c) => `${c}-cert`)];
    await Promise.all(names.map(async (name) => {
      const file = path.join(dir, `${name}.pub`);
      const { stdout } = await run('ssh-keygen', ['-l', '-f', file]);
      keys.set(name, { pub: await readFile(file, 'utf8'), listing: stdout.replace(/\n$/, '') });
    }));
  });

  after(async () => {
    if (dir !== '') await rm(dir, { recursive: true, force: true });
  });

  describe('certificates in parsePublicKey', () => {
    for (const name of ['ed25519-cert', 'ecdsa384-cert', 'rsa2048-cert', 'sk-ed25519-cert', 'sk-ecdsa-cert']) {
      it(`${name}: bits, fingerprint, label and comment as ssh-keygen -l`, () => {
        const parsed = parsePublicKey(key(name).pub);
        assert.equal(fingerprintLine(parsed), key(name).listing);
        assert.ok(parsed.certificate);
        assert.equal(parsed.certificate.kind, 'user');
        assert.deepEqual(parsed.certificate.principals, ['root', 'debian']);
        assert.equal(parsed.certificate.keyId, `${name.replace(/-cert$/, '')} id`);
        assert.equal(parsed.certificate.validBefore, 0xffffffffffffffffn);
        assert.equal(parsed.certificate.caFingerprint, parsePublicKey(pub('ca')).fingerprint);
        // The certified key is the plain key: same fingerprint as the .pub it was made from.
        assert.equal(parsed.fingerprint, parsePublicKey(pub(name.replace(/-cert$/, ''))).fingerprint);
        assert.equal(parsed.certificate.keyType, certifiedKeyType(parsed.type));
      });
    }

    it('every truncation of a certificate is a ParseError', () => {
      const blob = Buffer.from(b64Of(pub('ed25519-cert')), 'base64');
      for (let len = 1; len < blob.length; len += 1) {
        assert.throws(() => parsePublicKey(`ssh-ed25519-cert-v01@openssh.com ${blob.subarray(0, len).toString('base64')}`), ParseError, `cut at ${len}`);
      }
      assert.throws(() => parsePublicKey(`ssh-ed25519-cert-v01@openssh.com ${Buffer.concat([blob, Buffer.from([0])]).toString('base64')}`), ParseError, 'extra byte');
    });

    it('a certificate under the plain type name, or a plain key under the certificate name, is refused', () => {
      assert.throws(() => parsePublicKey(`ssh-ed25519 ${b64Of(pub('ed25519-cert'))}`), ParseError);
      assert.throws(() => parsePublicKey(`ssh-ed25519-cert-v01@openssh.com ${b64Of(pub('ed25519'))}`), ParseError);
    });

    it('random bytes behind a certificate type only ever throw ParseError', () => {
      const types = ['ssh-ed25519-cert-v01@openssh.com', 'ssh-rsa-cert-v01@openssh.com', 'ecdsa-sha2-nistp256-cert-v01@openssh.com', 'sk-ssh-ed25519-cert-v01@openssh.com'];
      const base = Buffer.from(b64Of(pub('ed25519-cert')), 'base64');
      fc.assert(
        fc.property(fc.constantFrom(...types), fc.uint8Array({ maxLength: 200 }), fc.nat(base.length), (type, rest, cut) => {
          const blob = Buffer.concat([sshString(type), base.subarray(4 + 32, cut), Buffer.from(rest)]);
          try {
            parsePublicKey(`${type} ${blob.toString('base64')}`);
          } catch (err) {
            if (!(err instanceof ParseError)) throw err;
          }
        }),
        { numRuns: 500 },
      );
    });
  });

  describe('validateLaunchKey: accepted keys', () => {
    const accepted = ['ed25519', 'ecdsa256', 'ecdsa384', 'ecdsa521', 'rsa2048', 'sk-ed25519', 'sk-ecdsa'];
    for (const name of accepted) {
      it(`${name}: accepted as "type base64 comment", with ssh-keygen's fingerprint`, () => {
        const r = validateLaunchKey(key(name).pub, 'public-keys/0', false);
        assert.ok(r.ok, r.ok ? '' : r.reason);
        assert.equal(r.line, pub(name));
        assert.equal(r.fingerprint, key(name).listing.split(' ')[1]);
        assert.ok(ALLOWED_KEY_TYPES.has(r.type));
        assert.deepEqual(r.options, []);
      });
    }

    it('the allow-list holds the plain types under every name sshd reads for them; no certificate, not DSA', () => {
      assert.equal(ALLOWED_KEY_TYPES.size, 10);
      assert.ok(!ALLOWED_KEY_TYPES.has('ssh-dss') && !ALLOWED_KEY_TYPES.has('ssh-dss-cert-v01@openssh.com'));
      for (const t of ALLOWED_KEY_TYPES) assert.equal(certifiedKeyType(t), null, t);
      for (const t of ['rsa-sha2-256', 'rsa-sha2-512', 'webauthn-sk-ecdsa-sha2-nistp256@openssh.com']) assert.ok(ALLOWED_KEY_TYPES.has(t), t);
    });

    it('certificates are refused as launch keys, with the reason, with or without allow_options', () => {
      for (const name of ['ed25519-cert', 'ecdsa256-cert', 'ecdsa384-cert', 'rsa2048-cert', 'sk-ed25519-cert', 'sk-ecdsa-cert']) {
        for (const allow of [false, true]) {
          const r = validateLaunchKey(key(name).pub, 'public-keys/0', allow);
          assert.equal(r.ok, false, name);
          assert.match(r.ok ? '' : r.reason, /certificate .* never logs in from its own line: sshd honours a certificate only through a cert-authority line/);
        }
      }
    });

    it('rsa-sha2-256/512 and webauthn names, and short names inside the blob, are the same key, written canonically', () => {
      const rsa = parsePublicKey(pub('rsa2048'));
      const body = rsa.blob.subarray(4 + 7);
      for (const [lineType, inner] of [['rsa-sha2-256', 'rsa-sha2-256'], ['rsa-sha2-512', 'ssh-rsa'], ['ssh-rsa', 'RSA'], ['ssh-rsa', 'rsa-sha2-512']]) {
        const r = validateLaunchKey(`${lineType} ${Buffer.concat([sshString(inner as string), body]).toString('base64')} c`, 'k', false);
        assert.ok(r.ok, `${lineType}/${inner}: ${r.ok ? '' : r.reason}`);
        assert.equal(r.fingerprint, rsa.fingerprint);
        assert.equal(r.line, `ssh-rsa ${b64Of(pub('rsa2048'))} c`);
      }
      const ed = parsePublicKey(pub('ed25519'));
      const edShort = Buffer.concat([sshString('ED25519'), ed.blob.subarray(4 + 11)]).toString('base64');
      assert.ok(validateLaunchKey(`ssh-ed25519 ${edShort}`, 'k', false).ok);
      assert.match(refused(`ED25519 ${b64Of(pub('ed25519'))}`), /not a key type|not allowed/);
      const skEc = parsePublicKey(pub('sk-ecdsa'));
      const web = validateLaunchKey(`webauthn-sk-ecdsa-sha2-nistp256@openssh.com ${b64Of(pub('sk-ecdsa'))}`, 'k', false);
      assert.ok(web.ok);
      assert.equal(web.fingerprint, skEc.fingerprint);
      const ec = parsePublicKey(pub('ecdsa256'));
      assert.match(refused(`ecdsa-sha2-nistp256 ${Buffer.concat([sshString('ECDSA'), ec.blob.subarray(4 + 19)]).toString('base64')}`), /does not hold/);
    });

    it('a single trailing newline is fine; surrounding blanks and tabs between fields are normalised', () => {
      const [type, b64] = pub('ed25519').split(' ');
      const r = validateLaunchKey(`  ${type}\t${b64}\t my\tlaptop \n`, 'k', false);
      assert.ok(r.ok);
      assert.equal(r.line, `${type} ${b64} my laptop`);
      const bare = validateLaunchKey(`${type} ${b64}`, 'k', false);
      assert.ok(bare.ok);
      assert.equal(bare.line, `${type} ${b64}`);
    });

    it('comments: UTF-8 kept, format characters (bidi override, zero width) and C1 removed, bounded', () => {
      const [type, b64] = pub('ed25519').split(' ');
      const utf = validateLaunchKey(`${type} ${b64} clé de Zoë 🔑`, 'k', false);
      assert.ok(utf.ok);
      assert.equal(utf.line, `${type} ${b64} clé de Zoë 🔑`);
      const bidi = validateLaunchKey(`${type} ${b64} admin\u202egnp.exe\u200b`, 'k', false);
      assert.ok(bidi.ok);
      assert.equal(bidi.line, `${type} ${b64} admingnp.exe`);
      const long = validateLaunchKey(`${type} ${b64} ${'x'.repeat(5000)}`, 'k', false);
      assert.ok(long.ok);
      assert.equal(long.line, `${type} ${b64} ${'x'.repeat(MAX_COMMENT_CHARS)}`);
      assert.equal(sanitizeComment('a\u00a0b\u2003c'), 'a b c');
    });
  });

  describe('validateLaunchKey: refused keys', () => {

    it('CRLF and newline injection', () => {
      const k = pub('ed25519');
      const other = pub('ecdsa256');
      assert.match(refused(`${k}\r\n`), /carriage return/);
      assert.match(refused(`${k}\r\n${other}`), /newline|line/);
      assert.match(refused(`${k}\n${other}`), /more than one line/);
      assert.match(refused(`${k}\n${other}\n`), /more than one line/);
      assert.match(refused(`${k} comment\r${other}`), /carriage return/);
      assert.match(refused(`${k}\n\n`), /more than one line/);
      assert.match(refused(`${k} a\u2028${other}`), /line separator/);
    });

    it('NUL and other control characters anywhere', () => {
      const k = pub('ed25519');
      assert.match(refused(`${k}\0`), /NUL/);
      assert.match(refused(`${k} evil\x1b[2J`), /control character U\+001B/);
      assert.match(refused(`${k} \x7f`), /control/);
      assert.match(refused(`${k} \u0085next`), /control/);
      assert.match(refused(`\x0b${k}`), /control/);
    });

    it('without allow_options, narrowing options are kept and the key is never installed bare', () => {
      const k = pub('ed25519');
      for (const [opts, kept] of [
        ['command="/usr/bin/backup"', 'command="/usr/bin/backup"'],
        ['from="10.0.0.0/8"', 'from="10.0.0.0/8"'],
        ['Restrict,PTY,command="echo \\"hi there\\""', 'restrict,pty,command="echo \\"hi there\\""'],
        ['no-pty,no-port-forwarding,no-agent-forwarding,no-X11-forwarding,no-user-rc', 'no-pty,no-port-forwarding,no-agent-forwarding,no-x11-forwarding,no-user-rc'],
        ['expiry-time="29991231Z",permitopen="localhost:5432",permitlisten="8080",tunnel="1",verify-required', 'expiry-time="29991231Z",permitopen="localhost:5432",permitlisten="8080",tunnel="1",verify-required'],
      ] as const) {
        const r = validateLaunchKey(`${opts} ${k}`, 'public-keys/0', false);
        assert.ok(r.ok, `${opts}: ${r.ok ? '' : r.reason}`);
        assert.equal(r.line, `${kept} ${k}`);
      }
      for (const [opts, why] of [
        ['environment="LD_PRELOAD=/tmp/x.so"', /environment=/],
        ['cert-authority', /cert-authority/],
        ['no-touch-required', /no-touch-required/],
        ['restrict,environment="A=b"', /environment=/],
      ] as const) {
        assert.match(refused(`${opts} ${k}`), why);
        assert.match(refused(`${opts} ${k}`), /allow_options is off, so the key is refused rather than installed without its options/);
        assert.ok(validateLaunchKey(`${opts} ${k}`, 'k', true).ok, opts);
      }
      assert.match(refused(`command="x",bogus ${k}`), /bad key options: unknown key option "bogus"/);
    });

    it('lines sshd would never honour are refused: bad options, expired, principals without cert-authority, unreadable from=', () => {
      const k = pub('ed25519');
      for (const allow of [false, true]) {
        assert.match(refused(`command="a",command="b" ${k}`, allow), /multiple "command" clauses/);
        assert.match(refused(`from="10.0.0.0/8",from="*" ${k}`, allow), /multiple "from" clauses/);
        assert.match(refused(`expiry-time="20200101" ${k}`, allow), /expired at 2020-01-01/);
        assert.match(refused(`expiry-time="20231301" ${k}`, allow), /invalid expires time/);
        assert.match(refused(`principals="root" ${k}`, allow), /principals= on a key that is not a cert-authority/);
        assert.match(refused(`from="10.0.0.1/8" ${k}`, allow), /host bits set/);
        assert.match(refused(`from="127.0.0.1," ${k}`, allow), /empty entry/);
        assert.match(refused(`permitopen="host:0" ${k}`, allow), /invalid permission port/);
        assert.match(refused(`tunnel="2147483646" ${k}`, allow), /invalid tun device/);
      }
    });

    it('with allow_options, options are kept in canonical form only if they parse', () => {
      const k = pub('ed25519');
      const kept = validateLaunchKey(`No-Pty,COMMAND="curl x|sh",from="10.0.0.0/8",environment="A=b" ${k}`, 'k', true);
      assert.ok(kept.ok);
      assert.equal(kept.line, `no-pty,command="curl x|sh",from="10.0.0.0/8",environment="A=b" ${k}`);
      assert.match(refused(`command="x",bogus ${k}`, true), /bad key options: unknown key option "bogus"/);
      assert.match(refused(`command="unterminated ${k}`, true), /unterminated quote/);
      assert.match(refused(`command=x ${k}`, true), /quote/);
      assert.match(refused(`no-restrict ${k}`, true), /unknown key option/);
      assert.match(refused(`expiry-time="tomorrow" ${k}`, true), /expires time/);
      assert.match(refused(`environment="=x" ${k}`, true), /environment/);
    });

    it('a comment cannot smuggle options: what follows the key is a comment', () => {
      const k = pub('ed25519');
      const r = validateLaunchKey(`${k} ,command="sh" from="*"`, 'k', false);
      assert.ok(r.ok);
      assert.ok(r.line.startsWith(`${k.split(' ').slice(0, 2).join(' ')} `));
      const again = splitAuthorizedKeyLine(r.line);
      assert.ok(again.ok);
      assert.equal(again.line.options, null);
    });

    it('truncated base64', () => {
      const [type, b64 = ''] = pub('rsa2048').split(' ');
      assert.match(refused(`${type} ${b64.slice(0, -1)}`), /base64 does not decode/);
      assert.match(refused(`${type} ${b64.slice(0, 200)}`), /truncated ssh-rsa key/);
      assert.match(refused(`${type} ${b64.slice(0, 201)}`), /base64 does not decode/);
      assert.match(refused(`${type} ${b64.replace(/[A-Z]/, '*')}`), /base64 does not decode/);
      const cert = pub('ed25519-cert').split(' ');
      assert.throws(() => parsePublicKey(`${cert[0]} ${(cert[1] ?? '').slice(0, 100)}`), /truncated/);
    });

    it('wrong inner type', () => {
      const ed = b64Of(pub('ed25519'));
      assert.match(refused(`ssh-rsa ${ed}`), /does not hold a ssh-rsa key/);
      assert.match(refused(`ecdsa-sha2-nistp256 ${b64Of(pub('ecdsa384'))}`), /does not hold/);
      assert.throws(() => parsePublicKey(`ssh-ed25519-cert-v01@openssh.com ${ed}`), /does not hold/);
      assert.match(refused(`sk-ssh-ed25519@openssh.com ${ed}`), /does not hold/);
    });

    it('100 KB lines, quickly', () => {
      const k = pub('ed25519');
      const started = performance.now();
      assert.match(refused(`${k} ${'x'.repeat(100 * 1024)}`), /longer than 16384 bytes/);
      assert.match(refused(`command="${'a'.repeat(100 * 1024)}" ${k}`, true), /longer than/);
      assert.match(refused(`ssh-rsa ${'A'.repeat(100 * 1024)}`), /longer than/);
      assert.match(refused(`${k} ${'é'.repeat(9000)}`), /longer than/);
      assert.ok(performance.now() - started < 200);
    });

    it('ssh-dss, and its certificate, refused', () => {
      assert.match(refused(key('dsa').pub), /ssh-dss \(DSA\) keys are not accepted/);
      assert.match(refused(key('dsa-cert').pub), /DSA/);
    });

    it('RSA under 2048 bits refused', () => {
      assert.match(refused(key('rsa1024').pub), /RSA key of 1024 bits is too small/);
    });

    it('types outside the allow-list, empty lines and comments', () => {
      const ed = b64Of(pub('ed25519'));
      assert.match(refused(`ssh-foo ${ed}`), /not a key type|not allowed/);
      assert.match(refused(`sk-ecdsa-sha2-nistp384@openssh.com ${ed}`), /not a key type|not allowed/);
      assert.match(refused(''), /empty/);
      assert.match(refused('   \n'), /empty/);
      assert.match(refused(`# ${pub('ed25519')}`), /comment/);
      assert.match(refused('ssh-ed25519'), /no key data/);
    });
  });

  describe('properties', () => {
    const allKeys = (): string[] => ['ed25519', 'ecdsa256', 'rsa2048', 'sk-ecdsa'].map(pub);
    const anyText = fc.oneof(fc.string(), fc.string({ unit: 'binary' }), fc.string({ unit: 'grapheme' }), fc.string({ unit: 'binary-ascii' }));
    const printableAscii = fc.string({ unit: fc.integer({ min: 0x20, max: 0x7e }).map((c) => String.fromCharCode(c)) });

    it('never throws, and an accepted line is one line without control characters that reads back as the same key', () => {
      fc.assert(
        fc.property(fc.constantFrom(...allKeys()), anyText, anyText, fc.boolean(), fc.boolean(), (k, before, after, allow, mode) => {
          const text = mode ? `${before} ${k} ${after}` : `${k}${after}`;
          const r = validateLaunchKey(text, 'k', allow);
          if (!r.ok) return;
          assert.ok(!CONTROL.test(r.line), JSON.stringify(r.line));
          assert.ok(!r.line.includes('\n') && !r.line.includes('\r'));
          assert.ok(Buffer.byteLength(r.line) <= 16 * 1024);
          const split = splitAuthorizedKeyLine(r.line);
          assert.ok(split.ok);
          assert.equal(split.line.type, r.type);
          assert.equal(split.line.base64, r.base64);
          if (split.line.options !== null) {
            const parsed = parseKeyOptions(split.line.options);
            assert.ok(parsed.ok);
            if (!allow) assert.deepEqual(widenings(parsed.effect), []);
          }
          assert.equal(validateLaunchKey(r.line, 'k', allow).ok, true);
        }),
        { numRuns: 1500 },
      );
    });

    it('arbitrary strings never throw', () => {
      fc.assert(
        fc.property(anyText, fc.boolean(), (text, allow) => {
          const r = validateLaunchKey(text, 'k', allow);
          assert.equal(typeof r.ok, 'boolean');
        }),
        { numRuns: 1500 },
      );
    });

    it('a CR, LF (other than one at the very end) or NUL injected anywhere is refused', () => {
      fc.assert(
        fc.property(fc.constantFrom(...allKeys()), fc.constantFrom('\r', '\n', '\0', '\r\n', '\x1b', '\x85'), fc.nat(), fc.boolean(), (k, bad, at, allow) => {
          const pos = at % (k.length + 1);
          const text = k.slice(0, pos) + bad + k.slice(pos);
          if (bad === '\n' && pos === k.length) return; // a trailing newline is fine
          assert.equal(validateLaunchKey(text, 'k', allow).ok, false, JSON.stringify(text));
        }),
        { numRuns: 1000 },
      );
    });

    it('without allow_options, whatever precedes the key, a written line grants nothing a bare key would not', () => {
      const optionWords = fc.array(fc.constantFrom('restrict', 'cert-authority', 'no-touch-required', 'environment="A=b"', 'pty', 'command="x"', 'from="*"', ',', 'x', ' '), { maxLength: 6 }).map((a) => a.join(','));
      fc.assert(
        fc.property(fc.constantFrom(...allKeys()), fc.oneof(printableAscii, optionWords), (k, opts) => {
          const r = validateLaunchKey(`${opts} ${k}`, 'k', false);
          if (!r.ok) return;
          assert.ok(ALLOWED_KEY_TYPES.has(r.type), r.line);
          const split = splitAuthorizedKeyLine(r.line);
          assert.ok(split.ok);
          if (split.line.options === null) return;
          const parsed = parseKeyOptions(split.line.options);
          assert.ok(parsed.ok);
          assert.deepEqual(widenings(parsed.effect), [], r.line);
        }),
        { numRuns: 1000 },
      );
    });

    const optionArb: fc.Arbitrary<KeyOption> = fc.oneof(
      fc.constantFrom('restrict', 'cert-authority', 'pty', 'no-pty', 'no-agent-forwarding', 'x11-forwarding', 'no-user-rc', 'verify-required').map((name) => ({ name, value: null })),
      fc.tuple(fc.constantFrom('command', 'from', 'principals'), printableAscii.filter((v) => !v.endsWith('\\'))).map(([name, value]) => ({ name, value })),
    );

    it('options: format then parse gives back the same options', () => {
      fc.assert(
        fc.property(fc.array(optionArb, { minLength: 1, maxLength: 5 }).filter((a) => {
          const once = a.filter((o) => o.value !== null).map((o) => o.name);
          return new Set(once).size === once.length; // sshd refuses a second command=/from=/principals=
        }), (options) => {
          const text = formatKeyOptions(options);
          const parsed = parseKeyOptions(text);
          assert.ok(parsed.ok, `${text}: ${parsed.ok ? '' : parsed.reason}`);
          assert.deepEqual(parsed.options, options);
        }),
        { numRuns: 1000 },
      );
    });

    it('options: arbitrary input never throws, and what parses is printable ASCII that formats back to a parse of itself', () => {
      fc.assert(
        fc.property(fc.oneof(anyText, printableAscii, fc.array(fc.constantFrom('no-pty', ',', '"', '\\', '=', 'command', 'from', ' ', 'x')).map((a) => a.join(''))), (text) => {
          const parsed = parseKeyOptions(text);
          if (!parsed.ok || parsed.options.length === 0) return;
          const again = parseKeyOptions(formatKeyOptions(parsed.options));
          assert.ok(again.ok);
          assert.deepEqual(again.options, parsed.options);
        }),
        { numRuns: 2000 },
      );
    });

    it('the file splits into parts that join back to it byte for byte, and replacing the block keeps every user byte', () => {
      const line = fc.oneof(
        fc.constantFrom('# imprint: launch keys for instance i-1 (managed; edits here are replaced)', BLOCK_END, '# imprint: launch keys for instance', 'ssh-ed25519 AAAA x', '', '\r', ' # imprint: end '),
        fc.string({ unit: 'binary' }).map((s) => s.replace(/\n/g, '')),
      );
      fc.assert(
        fc.property(fc.array(line, { maxLength: 12 }), fc.boolean(), fc.option(fc.constantFrom('i-2', 'i-3')), (lines, finalNewline, id) => {
          const text = lines.join('\n') + (finalNewline && lines.length > 0 ? '\n' : '');
          const file = parseAuthorizedKeysFile(text);
          assert.equal(file.parts.map((p) => p.text).join(''), text);
          const user = file.parts.filter((p) => p.kind === 'user').map((p) => p.text).join('');
          const block = id === null ? null : managedBlock(id, ['ssh-ed25519 AAAA k']);
          const out = replaceManagedBlock(file, block);
          const again = parseAuthorizedKeysFile(out);
          const userAgain = again.parts.filter((p) => p.kind === 'user').map((p) => p.text).join('');
          // Only a newline may be added (after a last user line without one, before the block).
          assert.ok(userAgain === user || userAgain === `${user}\n`, JSON.stringify({ user, userAgain }));
          const blocks = again.parts.filter((p) => p.kind === 'imprint');
          assert.equal(blocks.length, id === null ? 0 : 1);
          if (id !== null) assert.equal(blocks[0]?.text, block);
          // Idempotent: putting the same block in again changes nothing.
          assert.equal(replaceManagedBlock(again, block), out);
        }),
        { numRuns: 1000 },
      );
    });
  });

  describe('the file', () => {
    const begin = (id: string): string => `# imprint: launch keys for instance ${id} (managed; edits here are replaced)`;

    it('finds the block between the user lines, and replaces it in place', () => {
      const text = `# mine\r\n${pub('rsa2048')}\n${begin('i-old')}\n${pub('ecdsa256')}\n${BLOCK_END}\nno-pty ${pub('ed25519')}\ntrailing without newline`;
      const file = parseAuthorizedKeysFile(text);
      assert.deepEqual(file.parts.map((p) => p.kind), ['user', 'imprint', 'user']);
      const block = file.parts[1];
      assert.ok(block?.kind === 'imprint');
      assert.equal(block.instanceId, 'i-old');
      assert.deepEqual(block.lines, [pub('ecdsa256')]);
      assert.equal(block.terminated, true);
      const out = replaceManagedBlock(file, managedBlock('i-new', ['A', 'B']));
      assert.equal(out, `# mine\r\n${pub('rsa2048')}\n${begin('i-new')}\nA\nB\n${BLOCK_END}\nno-pty ${pub('ed25519')}\ntrailing without newline`);
      assert.equal(replaceManagedBlock(file, null), `# mine\r\n${pub('rsa2048')}\nno-pty ${pub('ed25519')}\ntrailing without newline`);
    });

    it('appends a block after the user lines, adding only the missing final newline', () => {
      assert.equal(replaceManagedBlock(parseAuthorizedKeysFile('a\nb'), managedBlock('i-1', ['K'])), `a\nb\n${begin('i-1')}\nK\n${BLOCK_END}\n`);
      assert.equal(replaceManagedBlock(parseAuthorizedKeysFile(''), managedBlock('i-1', ['K'])), `${begin('i-1')}\nK\n${BLOCK_END}\n`);
    });

    it('several blocks collapse into one; a block without an end marker runs to the end of the file', () => {
      const text = `u1\n${begin('a')}\nk1\n${BLOCK_END}\nu2\n${begin('b')}\nk2\n${BLOCK_END}\nu3\n`;
      assert.equal(replaceManagedBlock(parseAuthorizedKeysFile(text), managedBlock('c', ['k3'])), `u1\n${begin('c')}\nk3\n${BLOCK_END}\nu2\nu3\n`);
      const open = parseAuthorizedKeysFile(`u1\n${begin('a')}\nk1\nu2\n`);
      assert.deepEqual(open.parts.map((p) => (p.kind === 'imprint' ? [p.kind, p.terminated, p.lines] : [p.kind])), [['user'], ['imprint', false, ['k1', 'u2']]]);
    });

    it("the user's keys, for duplicates: options kept into account, cert-authority lines not", () => {
      const text = [
        `from="10.0.0.0/8" ${pub('ed25519')}`,
        `cert-authority ${pub('ca')}`,
        `bogus-option ${pub('ecdsa384')}`,
        `# ${pub('ecdsa521')}`,
        pub('rsa2048'),
        `${begin('x')}`, pub('sk-ecdsa'), BLOCK_END,
      ].join('\n');
      const blobs = userKeyBlobs(parseAuthorizedKeysFile(text));
      assert.deepEqual([...blobs].sort(), [b64Of(pub('ed25519')), b64Of(pub('rsa2048'))].sort());
    });
  });

  describe('options parser, named cases', () => {
    it('flags, negations, quoted values with \\" escapes, case-insensitive names', () => {
      const r = parseKeyOptions('restrict,Pty,no-X11-forwarding,command="echo \\"a b\\" \\\\n",from="*.example.com,!bad.example.com"');
      assert.ok(r.ok);
      assert.deepEqual(r.options, [
        { name: 'restrict', value: null },
        { name: 'pty', value: null },
        { name: 'no-x11-forwarding', value: null },
        { name: 'command', value: 'echo "a b" \\\\n' },
        { name: 'from', value: '*.example.com,!bad.example.com' },
      ]);
    });

    it('refuses what sshd refuses', () => {
      for (const bad of ['', 'nope', 'no-cert-authority', 'command="x', 'command=x', 'command="x"y', 'ptyx', 'tunnel="x"', 'permitopen="nohost"']) {
        assert.equal(parseKeyOptions(bad).ok, false, bad);
      }
      for (const good of ['tunnel="0"', 'permitopen="host:22"', 'permitopen="[::1]:*"', 'permitlisten="8080"', 'expiry-time="20300101"', 'environment="A=b c"', 'no-touch-required', 'verify-required']) {
        assert.equal(parseKeyOptions(good).ok, true, good);
      }
    });
  });
});
