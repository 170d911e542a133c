import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { keygenFingerprint } from '../../agent/os/ssh-keygen.js';
import { readKeyLine, tcpServicesFrom, validateLaunchKey } from '../../agent/parsers/authorized-keys.js';
import { parsePublicKey } from '../../agent/parsers/ssh-public-key.js';
import { sshLogin, startLoopbackSshd, type LoginResult, type LoopbackSshd } from '../support/loopback-sshd.js';

// The real sshd is the judge of every key line imprint writes or refuses. A corpus made with the
// real ssh-keygen (every key type it makes here, certificates signed with ssh-keygen -s, option
// strings with duplicates, bad ranges, quoting, escapes, odd spellings, dates, from= lists) goes
// through imprint's launch-key checks (validateLaunchKey, then the ssh-keygen -l read-back the
// task does). Batch "imprint": the file holds imprint's line for every key it writes and the
// metadata line as sent for every key it refuses; sshd on loopback then decides:
//  - written  => the key logs in, with its restriction observable (command= output, no pty),
//                unless the case says why sshd refuses it at login from 127.0.0.1 (from=, principals);
//  - refused  => the line as sent does not log in either, unless the refusal is imprint's policy
//                (DSA, options that widen a key while allow_options is off), said per case.
// Batch "audit": the file holds every line as sent; audit's reader (readKeyLine, the same one
// boot uses for the user's own lines) must call a line a key exactly when sshd logs in with it.
// Every case has its own key, so one sshd per batch serves the whole corpus.
// Security-key (sk-*) lines cannot log in without the hardware: they are checked against
// ssh-keygen -l only, in the last test, and say so.

const run = promisify(execFile);

type KeyKind = 'ed25519' | 'ecdsa256' | 'ecdsa384' | 'ecdsa521' | 'rsa2048' | 'rsa3072' | 'dsa';

interface Case {
  name: string;
  /** The metadata line; {key} is "type base64 comment" of the case's key, {type}/{b64} its parts. */
  line: string;
  kind?: KeyKind;
  allow?: boolean;
  /** Log in with a certificate of the case's key signed by the case's CA; the line then holds the CA ({ca}). */
  cert?: boolean;
  /** Why sshd refuses a login from 127.0.0.1 with this (valid) line: a runtime restriction. */
  runtime?: string;
  /** imprint refuses by its own policy though sshd would honour the line (rawLogsIn says whether it logs in). */
  policy?: { reason: RegExp; rawLogsIn: boolean };
  /** What the forced command prints (command=), instead of the client's command. */
  output?: string;
  /** The login gets no pty although the client asks for one (no-pty, restrict). */
  noPty?: boolean;
  /** The inner name of the blob, rewritten ("ED25519", "rsa-sha2-512"). */
  inner?: string;
}

const CLIENT_COMMAND = 'echo oracle-ok';

const CASES: Case[] = [
  // Every key type ssh-keygen makes here, bare.
  { name: 'ed25519', line: '{key}' },
  { name: 'ecdsa-256', line: '{key}', kind: 'ecdsa256' },
  { name: 'ecdsa-384', line: '{key}', kind: 'ecdsa384' },
  { name: 'ecdsa-521', line: '{key}', kind: 'ecdsa521' },
  { name: 'rsa-2048', line: '{key}', kind: 'rsa2048' },
  { name: 'rsa-3072', line: '{key}', kind: 'rsa3072' },
  { name: 'dsa (refused by imprint; sshd 9 refuses ssh-dss by default)', line: '{key}', kind: 'dsa', policy: { reason: /DSA/, rawLogsIn: false } },
  // The names sshd reads for the same key.
  { name: 'rsa under the rsa-sha2-512 name', line: 'rsa-sha2-512 {b64} c', kind: 'rsa2048' },
  { name: 'rsa under the rsa-sha2-256 name, blob named rsa-sha2-256', line: 'rsa-sha2-256 {b64} c', kind: 'rsa2048', inner: 'rsa-sha2-256' },
  { name: 'ed25519 blob with the short inner name ED25519', line: 'ssh-ed25519 {b64} c', inner: 'ED25519' },
  { name: 'ed25519 under the short name ED25519 on the line (sshd: not a type)', line: 'ED25519 {b64} c' },
  { name: 'ecdsa blob with the short inner name ECDSA (sshd cannot read it)', line: 'ecdsa-sha2-nistp256 {b64} c', kind: 'ecdsa256', inner: 'ECDSA' },
  // Narrowing options: kept, and their restriction shows.
  { name: 'command=', line: 'command="echo forced-1" {key}', output: 'forced-1' },
  { name: 'COMMAND= upper case, \\" escapes', line: 'COMMAND="echo \\"quoted\\" out" {key}', output: 'quoted out' },
  { name: 'command= with UTF-8', line: 'command="echo é" {key}', output: 'é' },
  { name: 'command="" (an empty forced command)', line: 'command="" {key}', output: '' },
  { name: 'restrict,command=', line: 'restrict,command="echo r" {key}', output: 'r' },
  { name: 'no-pty', line: 'no-pty {key}', noPty: true },
  { name: 'NO-PTY upper case', line: 'NO-PTY {key}', noPty: true },
  { name: 'restrict', line: 'restrict {key}', noPty: true },
  { name: 'restrict,port-forwarding (re-enables only up to a bare key)', line: 'restrict,port-forwarding {key}', noPty: true },
  { name: 'the no-* flags', line: 'no-port-forwarding,no-agent-forwarding,no-X11-forwarding,no-user-rc,no-pty {key}', noPty: true },
  { name: 'leading comma', line: ',no-pty {key}', noPty: true },
  { name: 'empty option between commas', line: 'no-user-rc,,no-pty {key}', noPty: true },
  { name: 'trailing comma', line: 'no-pty, {key}', noPty: true },
  { name: 'verify-required on a non-FIDO key', line: 'verify-required {key}' },
  { name: 'from= 127.0.0.1', line: 'from="127.0.0.1" {key}' },
  { name: 'from= wildcard pattern', line: 'from="127.0.0.*" {key}' },
  { name: 'from= 127.0.0.0/8', line: 'from="127.0.0.0/8" {key}' },
  { name: 'from= not matching', line: 'from="10.0.0.0/8" {key}', runtime: 'from= does not match 127.0.0.1' },
  { name: 'from= negated', line: 'from="!127.0.0.1,*" {key}', runtime: 'from= excludes 127.0.0.1' },
  { name: 'from= mask above 128 is a pattern', line: 'from="127.0.0.1/129" {key}', runtime: 'the pattern does not match 127.0.0.1' },
  { name: 'from= host bits set', line: 'from="127.0.0.1/8" {key}' },
  { name: 'from= mask 33 on IPv4', line: 'from="127.0.0.0/33,127.0.0.1" {key}' },
  { name: 'from= empty entry', line: 'from="127.0.0.1," {key}' },
  { name: 'expiry-time future', line: 'expiry-time="20991231" {key}' },
  { name: 'expiry-time future, UTC spelled utc', line: 'expiry-time="209912312359utc" {key}' },
  { name: 'expiry-time second 60', line: 'expiry-time="20991231235960Z" {key}' },
  { name: 'expiry-time Feb 31 (rolls over, as mktime does)', line: 'expiry-time="20990231" {key}' },
  { name: 'expiry-time with a blank before a one-digit month', line: 'expiry-time="2099 101" {key}' },
  { name: 'expiry-time past', line: 'expiry-time="20200101" {key}' },
  { name: 'expiry-time month 13', line: 'expiry-time="20991301" {key}' },
  { name: 'expiry-time day 32', line: 'expiry-time="20991232" {key}' },
  { name: 'expiry-time hour 24', line: 'expiry-time="209912312400" {key}' },
  { name: 'expiry-time too short', line: 'expiry-time="209912" {key}' },
  { name: 'two expiry-times, the earlier past', line: 'expiry-time="20991231",expiry-time="20200101" {key}' },
  { name: 'permitopen host:port', line: 'permitopen="localhost:5432" {key}' },
  { name: 'permitopen [v6]:* and permitlisten bare port', line: 'permitopen="[::1]:*",permitlisten="8080" {key}' },
  { name: 'permitopen host/port', line: 'permitopen="db/5432" {key}' },
  { name: 'permitopen empty host', line: 'permitopen=":22" {key}' },
  { name: 'permitopen service name', line: 'permitopen="db:ssh" {key}' },
  { name: 'permitopen port " +22" (strtonum)', line: 'permitopen="db: +22" {key}' },
  { name: 'two permitopens', line: 'permitopen="a:1",permitopen="b:2" {key}' },
  { name: 'permitopen port 0', line: 'permitopen="db:0" {key}' },
  { name: 'permitopen port 65536', line: 'permitopen="db:65536" {key}' },
  { name: 'permitopen no port', line: 'permitopen="db" {key}' },
  { name: 'permitlisten port 0', line: 'permitlisten="0" {key}' },
  { name: 'tunnel 0', line: 'tunnel="0" {key}' },
  { name: 'tunnel any', line: 'tunnel="ANY" {key}' },
  { name: 'tunnel " +7"', line: 'tunnel=" +7" {key}' },
  { name: 'two tunnels', line: 'tunnel="1",tunnel="2" {key}' },
  { name: 'tunnel out of range', line: 'tunnel="2147483646" {key}' },
  { name: 'tunnel negative', line: 'tunnel="-1" {key}' },
  // Duplicates and grammar errors: sshd ignores the line ("bad key options").
  { name: 'two command=', line: 'command="echo a",command="echo b" {key}' },
  { name: 'two from=', line: 'from="*",from="*" {key}' },
  { name: 'principals= on a plain key', line: 'principals="root" {key}' },
  { name: 'unknown option', line: 'bogus {key}' },
  { name: 'no-restrict', line: 'no-restrict {key}' },
  { name: 'a flag with a tail', line: 'ptyx {key}' },
  { name: 'unquoted value', line: 'command=x {key}' },
  { name: 'a flag with a value', line: 'pty="x" {key}' },
  // Options that widen a key: refused unless allow_options, kept with it.
  { name: 'environment= without allow_options', line: 'environment="A=b" {key}', policy: { reason: /environment=.*allow_options is off/, rawLogsIn: true } },
  { name: 'environment= with allow_options', line: 'environment="A=b" {key}', allow: true },
  { name: 'environment= name of digits, with allow_options', line: 'environment="1A=b",environment="1A=c" {key}', allow: true },
  { name: 'environment= without a name', line: 'environment="=b" {key}', allow: true },
  { name: 'no-touch-required without allow_options', line: 'no-touch-required {key}', policy: { reason: /no-touch-required/, rawLogsIn: true } },
  // Certificates and CAs.
  { name: 'a certificate as the launch key', line: '{cert}', cert: true },
  { name: 'a certificate as the launch key, allow_options', line: '{cert}', cert: true, allow: true },
  { name: 'cert-authority on a certificate', line: 'cert-authority {cert}', cert: true, allow: true },
  { name: 'cert-authority without allow_options', line: 'cert-authority {ca}', cert: true, policy: { reason: /cert-authority.*allow_options is off/, rawLogsIn: true } },
  { name: 'cert-authority with allow_options', line: 'cert-authority {ca}', cert: true, allow: true },
  { name: 'cert-authority,principals=root', line: 'cert-authority,principals="root" {ca}', cert: true, allow: true },
  { name: 'cert-authority,principals=nobody', line: 'cert-authority,principals="nobody" {ca}', cert: true, allow: true, runtime: 'the certificate names no listed principal' },
  { name: 'cert-authority with two principals=', line: 'cert-authority,principals="root",principals="x" {ca}', cert: true, allow: true },
];

interface Material {
  private: string;
  pub: string;
  certificate?: string;
  certLine?: string;
  caLine?: string;
}

/** A .pub line with the blob's inner name rewritten (sshd reads some other names for the same key). */
function withInner(pub: string, inner: string): string {
  const [, b64 = ''] = pub.trim().split(/\s+/);
  const blob = Buffer.from(b64, 'base64');
  const n = blob.readUInt32BE(0);
  const name = Buffer.from(inner, 'latin1');
  const len = Buffer.alloc(4);
  len.writeUInt32BE(name.length);
  return Buffer.concat([len, name, blob.subarray(4 + n)]).toString('base64');
}

function lineOf(c: Case, m: Material): string {
  const [type = '', b64 = '', ...rest] = m.pub.trim().split(/\s+/);
  const blob = c.inner ? withInner(m.pub, c.inner) : b64;
  return c.line
    .replace('{key}', `${type} ${blob} ${rest.join(' ')}`)
    .replace('{type}', type)
    .replace('{b64}', blob)
    .replace('{cert}', m.certLine ?? '')
    .replace('{ca}', m.caLine ?? '');
}

interface Verdict {
  written: boolean;
  line: string;
  reason: string;
}

/** What imprint's authorized-keys task decides for a metadata line: validation, then the ssh-keygen -l read-back. */
async function imprintVerdict(text: string, allow: boolean, services: (n: string) => number | null): Promise<Verdict> {
  const r = validateLaunchKey(text, 'oracle', allow, { env: { tcpService: services } });
  if (!r.ok) return { written: false, line: text, reason: r.reason };
  const fp = await keygenFingerprint(r.line);
  if (fp !== r.fingerprint) return { written: false, line: text, reason: `ssh-keygen -l read ${fp ?? 'nothing'}` };
  return { written: true, line: r.line, reason: '' };
}

async function pool<T, R>(items: readonly T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array<R>(items.length);
  let next = 0;
  await Promise.all(Array.from({ length: limit }, async () => {
    while (next < items.length) {
      const i = next;
      next += 1;
      out[i] = await fn(items[i] as T);
    }
  }));
  return out;
}

describe('key lines: imprint agrees with the real sshd (loopback logins)', function () {
  this.timeout(600_000);
  let dir = '';
  const material = new Map<string, Material>();
  const daemons: LoopbackSshd[] = [];
  let services: (n: string) => number | null = () => null;

  before(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'imprint-oracle-'));
    await run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'oracle host', '-f', path.join(dir, 'host')]);
    services = tcpServicesFrom(await readFile('/etc/services', 'utf8').catch(() => ''));
    const spec: Record<KeyKind, string[]> = {
      ed25519: ['-t', 'ed25519'], ecdsa256: ['-t', 'ecdsa', '-b', '256'], ecdsa384: ['-t', 'ecdsa', '-b', '384'], ecdsa521: ['-t', 'ecdsa', '-b', '521'],
      rsa2048: ['-t', 'rsa', '-b', '2048'], rsa3072: ['-t', 'rsa', '-b', '3072'], dsa: ['-t', 'dsa'],
    };
    await pool(CASES.map((c, i) => ({ c, i })), 4, async ({ c, i }) => {
      const base = path.join(dir, `k${i}`);
      await run('ssh-keygen', ['-q', '-N', '', '-C', `case-${i}`, '-f', base, ...spec[c.kind ?? 'ed25519']]);
      const m: Material = { private: base, pub: await readFile(`${base}.pub`, 'utf8') };
      if (c.cert) {
        const ca = path.join(dir, `ca${i}`);
        await run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', `ca-${i}`, '-f', ca]);
        await run('ssh-keygen', ['-q', '-s', ca, '-I', `case-${i}`, '-n', 'root', `${base}.pub`]);
        m.certificate = `${base}-cert.pub`;
        m.certLine = (await readFile(m.certificate, 'utf8')).trim();
        m.caLine = (await readFile(`${ca}.pub`, 'utf8')).trim();
      }
      material.set(c.name, m);
    });
  });

  after(async () => {
    await Promise.all(daemons.map((d) => d.stop()));
    if (dir !== '') await rm(dir, { recursive: true, force: true });
  });

  /** Starts one sshd whose root keys file holds these lines, then logs in once per case. */
  async function batch(name: string, lines: string[], login: (c: Case, m: Material, port: number) => Promise<LoginResult>): Promise<{ results: LoginResult[]; log: string }> {
    const sub = path.join(dir, name);
    await mkdir(sub, { mode: 0o700 });
    await writeFile(path.join(sub, 'root'), `${lines.join('\n')}\n`, { mode: 0o600 });
    await chmod(path.join(sub, 'root'), 0o600);
    const sshd = await startLoopbackSshd(sub, path.join(dir, 'host'));
    daemons.push(sshd);
    const results = await pool(CASES, 4, (c) => login(c, material.get(c.name) as Material, sshd.port));
    return { results, log: sshd.log() };
  }

  const loginFor = async (c: Case, m: Material, port: number): Promise<LoginResult> => {
    const r = await sshLogin(port, m.private, c.noPty ? `tty; ${CLIENT_COMMAND}` : CLIENT_COMMAND, { certificate: c.cert ? m.certificate : undefined, tty: c.noPty === true, home: dir });
    // ssh -tt gives up when sshd refuses the pty it forces: sshd authenticated the key, and the
    // refusal is the restriction showing (a bare key would get a pty and run the command).
    if (c.noPty && r.code === 255 && r.stderr.includes('PTY allocation request failed')) return { ...r, ok: true, stdout: 'not a tty (pty refused)' };
    return r;
  };

  it('every verdict (written / refused) agrees with what sshd does with the line', async () => {
    const verdicts = await pool(CASES, 4, (c) => imprintVerdict(lineOf(c, material.get(c.name) as Material), c.allow === true, services));
    const { results, log } = await batch('imprint', verdicts.map((v) => v.line), loginFor);
    const disagreements: string[] = [];
    CASES.forEach((c, i) => {
      const v = verdicts[i] as Verdict;
      const r = results[i] as LoginResult;
      const say = (what: string): void => {
        disagreements.push(`${c.name}: ${what}\n    imprint: ${v.written ? `wrote ${v.line.slice(0, 120)}` : `refused: ${v.reason}`}\n    ssh: exit ${r.code} ${JSON.stringify(r.stdout.slice(0, 80))} ${JSON.stringify(r.stderr.trim().slice(0, 160))}`);
      };
      if (v.written) {
        if (c.runtime) {
          if (r.ok) say(`written and expected to be refused at login (${c.runtime}), but sshd let it in`);
          return;
        }
        if (c.policy) say('expected a policy refusal, but imprint wrote it');
        if (!r.ok) return say('imprint wrote the line but sshd refuses the login');
        if (c.output !== undefined && r.stdout.replace(/\r/g, '') !== `${c.output}\n` && !(c.output === '' && r.stdout === '')) say(`the forced command's output (${JSON.stringify(c.output)}) did not show`);
        if (c.output === undefined && !c.noPty && !r.stdout.includes('oracle-ok')) say('the session did not run');
        if (c.noPty && !r.stdout.includes('not a tty')) say('a pty was allocated despite no-pty/restrict');
      } else if (c.policy) {
        if (!c.policy.reason.test(v.reason)) say(`refused, but not for the expected policy reason ${c.policy.reason}`);
        if (r.ok !== c.policy.rawLogsIn) say(`the line as sent ${r.ok ? 'logs in' : 'does not log in'}; the case expected otherwise`);
      } else if (r.ok) {
        say('imprint refused a line sshd honours');
      }
    });
    assert.deepEqual(disagreements, [], `${disagreements.join('\n')}\n--- sshd log (tail) ---\n${log.split('\n').slice(-40).join('\n')}`);
    // The corpus exercises both outcomes in every family.
    assert.ok(verdicts.filter((v) => v.written).length >= 30 && verdicts.filter((v) => !v.written).length >= 25);
  });

  it("audit's reader (the same one boot uses for the user's lines) calls a line a way in exactly when sshd logs in with it", async () => {
    const raw = CASES.map((c) => lineOf(c, material.get(c.name) as Material));
    const { results, log } = await batch('audit', raw, loginFor);
    const disagreements: string[] = [];
    CASES.forEach((c, i) => {
      const read = readKeyLine(raw[i] as string, Date.now() / 1000, { tcpService: services });
      const r = results[i] as LoginResult;
      const reader = read.kind === 'key' ? (read.certAuthority ? 'a CA line' : 'a key') : read.kind === 'ignored' ? `ignored (${read.reason})` : read.kind;
      // A line the reader lists is a way in unless a runtime restriction bars 127.0.0.1, or it is DSA
      // (read, listed with "refused by OpenSSH 7.0 and later", and refused by sshd's default algorithms).
      const expected = read.kind === 'key' && !c.runtime && c.kind !== 'dsa' && (read.certAuthority ? c.cert === true : true);
      if (expected !== r.ok) disagreements.push(`${c.name}: reader says ${reader}; sshd ${r.ok ? 'lets it in' : 'refuses it'} (${r.stderr.trim().slice(0, 120)})`);
    });
    assert.deepEqual(disagreements, [], `${disagreements.join('\n')}\n--- sshd log (tail) ---\n${log.split('\n').slice(-40).join('\n')}`);
  });

  it('security-key lines (not login-tested: no FIDO hardware here): imprint writes them exactly when ssh-keygen -l reads them', async () => {
    const ed = parsePublicKey(material.get('ed25519')?.pub ?? '');
    const ec = parsePublicKey(material.get('ecdsa-256')?.pub ?? '');
    const str = (s: string | Buffer): Buffer => {
      const b = typeof s === 'string' ? Buffer.from(s, 'latin1') : s;
      const len = Buffer.alloc(4);
      len.writeUInt32BE(b.length);
      return Buffer.concat([len, b]);
    };
    const skEd = Buffer.concat([str('sk-ssh-ed25519@openssh.com'), str(ed.blob.subarray(4 + 11 + 4)), str('ssh:')]).toString('base64');
    const skEc = Buffer.concat([str('sk-ecdsa-sha2-nistp256@openssh.com'), ec.blob.subarray(4 + 19), str('ssh:')]).toString('base64');
    const lines = [
      `sk-ssh-ed25519@openssh.com ${skEd} sk`,
      `sk-ecdsa-sha2-nistp256@openssh.com ${skEc} sk`,
      `webauthn-sk-ecdsa-sha2-nistp256@openssh.com ${skEc} webauthn`,
      `verify-required sk-ssh-ed25519@openssh.com ${skEd} uv`,
      `ecdsa-sha2-nistp256 ${skEc} wrong-name`,
    ];
    for (const line of lines) {
      const v = await imprintVerdict(line, false, services);
      const keygen = await keygenFingerprint(line);
      assert.equal(v.written, keygen !== null, `${line.slice(0, 60)}: imprint ${v.written ? 'wrote' : `refused (${v.reason})`}, ssh-keygen ${keygen ?? 'cannot read it'}`);
    }
  });
});
