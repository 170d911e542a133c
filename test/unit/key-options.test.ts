import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  formatKeyOptions,
  fromProblem,
  neverLogsIn,
  parseAbsoluteTime,
  parseKeyOptions,
  strtonum,
  widenings,
  type KeyOption,
} from '../../agent/parsers/key-options.js';

// sshd's options grammar (auth-options.c and the misc.c helpers it calls), as key-options.ts
// reads it. The named cases below were each confirmed against the real sshd by the loopback
// oracle (test/integration/key-lines-oracle.test.ts); the properties check the parser's own
// consistency on arbitrary input.

const ok = (text: string): KeyOption[] => {
  const r = parseKeyOptions(text);
  assert.ok(r.ok, `${text}: ${r.ok ? '' : r.reason}`);
  return r.options;
};
const bad = (text: string): string => {
  const r = parseKeyOptions(text);
  assert.ok(!r.ok, `accepted: ${text}`);
  return r.reason;
};

describe('parsers/key-options: sshd grammar', () => {
  it('names in any case; flags and their no- forms; empty options skipped as sshd skips them', () => {
    assert.deepEqual(ok('NO-PTY,Restrict,x11-FORWARDING'), [
      { name: 'no-pty', value: null }, { name: 'restrict', value: null }, { name: 'x11-forwarding', value: null },
    ]);
    assert.deepEqual(ok(',no-pty'), [{ name: 'no-pty', value: null }]);
    assert.deepEqual(ok('no-pty,,no-user-rc'), [{ name: 'no-pty', value: null }, { name: 'no-user-rc', value: null }]);
    assert.deepEqual(ok('no-pty,'), [{ name: 'no-pty', value: null }]);
    for (const t of ['no-restrict', 'no-cert-authority', 'ptyx', 'pty="x"', 'command', 'command =""', 'bogus']) assert.match(bad(t), /unknown key option/, t);
    // Case folding is ASCII only (strncasecmp): a non-ASCII letter neither matches nor shifts what follows.
    assert.match(bad('İ,no-pty'), /unknown key option/);
    assert.deepEqual(ok('command="İİ",NO-PTY'), [{ name: 'command', value: 'İİ' }, { name: 'no-pty', value: null }]);
  });

  it('quoted values: \\" is a quote, any other byte is kept, blanks inside quotes are part of the value', () => {
    assert.deepEqual(ok('command="echo \\"a b\\" \\\\n\té"'), [{ name: 'command', value: 'echo "a b" \\\\n\té' }]);
    assert.deepEqual(ok('command=""'), [{ name: 'command', value: '' }]);
    assert.match(bad('command=x'), /missing start quote/);
    assert.match(bad('command="x'), /missing end quote/);
    assert.match(bad('command="x\\"'), /missing end quote/);
  });

  it('a second command=, from= or principals= is an error; expiry-time keeps the earliest; environment keeps the first', () => {
    assert.match(bad('command="a",Command="b"'), /multiple "command" clauses/);
    assert.match(bad('from="*",FROM="*"'), /multiple "from" clauses/);
    assert.match(bad('principals="a",principals="b"'), /multiple "principals" clauses/);
    const r = parseKeyOptions('expiry-time="20991231Z",expiry-time="20501231Z",environment="A=1",environment="A=2",environment="B=3"');
    assert.ok(r.ok);
    assert.equal(r.effect.expiresAt, Date.UTC(2050, 11, 31) / 1000);
    assert.deepEqual(r.effect.environment, ['A=1', 'B=3']);
  });

  it('permitopen / permitlisten: host:port, host/port, [v6]:port, *, service names, strtonum ports', () => {
    const services = { tcpService: (n: string) => (n === 'ssh' ? 22 : null) };
    for (const v of ['h:22', 'h/22', '[::1]:22', '[::1]/22', '*:*', ':22', 'h: +22', 'h:065535', 'h:1']) assert.ok(parseKeyOptions(`permitopen="${v}"`).ok, v);
    assert.ok(parseKeyOptions('permitopen="h:ssh"', services).ok);
    assert.ok(!parseKeyOptions('permitopen="h:ssh"').ok, 'a name is a port only where the system knows it');
    for (const v of ['h', 'h:0', 'h:65536', 'h:-1', 'h:22:33', '[::1]', '[::1', '[::1]x:22', '::1:22', 'h:']) assert.match(bad(`permitopen="${v}"`), /permission/, v);
    assert.ok(parseKeyOptions('permitlisten="8080"').ok);
    assert.match(bad('permitlisten="0"'), /permission port/);
  });

  it('tunnel: any, or 0..2147483645 as strtonum reads it', () => {
    for (const v of ['0', 'ANY', ' +7', '2147483645', '007']) assert.ok(parseKeyOptions(`tunnel="${v}"`).ok, v);
    for (const v of ['-1', '2147483646', 'x', '1x', '', '0x10']) assert.match(bad(`tunnel="${v}"`), /tun device/, v);
  });

  it('environment: NAME=value with NAME of letters, digits and _', () => {
    for (const v of ['A=b', '1=x', '_a1=', 'A=b=c']) assert.ok(parseKeyOptions(`environment="${v}"`).ok, v);
    for (const v of ['=x', 'A', 'A-B=1', 'A B=1']) assert.match(bad(`environment="${v}"`), /environment/, v);
  });

  it('expiry-time: glibc strptime fields, Z or UTC, mktime roll-over, after the epoch', () => {
    assert.equal(parseAbsoluteTime('20300101Z'), Date.UTC(2030, 0, 1) / 1000);
    assert.equal(parseAbsoluteTime('203001011230UTC'), Date.UTC(2030, 0, 1, 12, 30) / 1000);
    assert.equal(parseAbsoluteTime('20300101123059z'), Date.UTC(2030, 0, 1, 12, 30, 59) / 1000);
    assert.equal(parseAbsoluteTime('20300231Z'), Date.UTC(2030, 2, 3) / 1000, 'Feb 31 is March 3');
    assert.equal(parseAbsoluteTime('20301231235960Z'), Date.UTC(2031, 0, 1) / 1000, 'second 60 rolls over');
    assert.equal(parseAbsoluteTime('2030 1 1Z'), Date.UTC(2030, 0, 1) / 1000, 'a blank before a one-digit field');
    for (const t of ['20301301', '20300132', '203001012400', '203001011260', '20300101235962', '2030010', '203001011', '19700101Z', '19691231Z', '0000010', '2030-1-1', '+2030101', '2030 101 ', 'Z', '20300101ZZ']) {
      assert.equal(parseAbsoluteTime(t), null, t);
    }
  });

  it('from=: entries sshd cannot read deny every login; patterns and networks are fine', () => {
    for (const v of ['127.0.0.1', '10.0.0.0/8', '!10.1.2.3,*', '*.example.com', '::1', 'fe80::/10', '2001:db8::/32', '127.0.0.1/129', 'a/b', '10.0/16']) assert.equal(fromProblem(v), null, v);
    for (const v of ['', '10.0.0.1/8', '127.0.0.0/33', 'a,,b', 'x,', '!', '2001:db8::1/32', '127.1/8', '10.1/16']) assert.notEqual(fromProblem(v), null, v);
  });

  it('what denies every login, and what widens a key', () => {
    const effect = (t: string) => {
      const r = parseKeyOptions(t);
      assert.ok(r.ok, t);
      return r.effect;
    };
    assert.match(neverLogsIn(effect('expiry-time="20200101Z"'), Date.UTC(2026, 0, 1) / 1000) ?? '', /expired/);
    assert.equal(neverLogsIn(effect('expiry-time="20300101Z"'), Date.UTC(2026, 0, 1) / 1000), null);
    assert.match(neverLogsIn(effect('principals="root"'), 0) ?? '', /not a cert-authority/);
    assert.equal(neverLogsIn(effect('cert-authority,principals="root"'), 0), null);
    assert.deepEqual(widenings(effect('restrict,pty,port-forwarding,agent-forwarding,x11-forwarding,user-rc,command="x",from="*",permitopen="a:1",tunnel="1",verify-required,touch-required')), []);
    assert.deepEqual(widenings(effect('cert-authority,no-touch-required,environment="A=b"')), ['cert-authority', 'no-touch-required', 'environment=']);
    assert.deepEqual(widenings(effect('no-touch-required,touch-required')), [], 'the last one wins, as in sshd');
  });

  it('strtonum reads what strtoll reads, within the range', () => {
    assert.equal(strtonum(' +22', 0, 65535), 22);
    assert.equal(strtonum('-0', 0, 5), 0);
    assert.equal(strtonum('99999999999999999999', 0, 65535), null);
    assert.equal(strtonum('22 ', 0, 65535), null);
  });
});

describe('parsers/key-options: properties', () => {
  const flag = fc.constantFrom('restrict', 'cert-authority', 'port-forwarding', 'no-port-forwarding', 'agent-forwarding', 'no-agent-forwarding', 'x11-forwarding', 'no-x11-forwarding', 'pty', 'no-pty', 'user-rc', 'no-user-rc', 'touch-required', 'no-touch-required', 'verify-required', 'no-verify-required');
  const value = fc.string({ unit: fc.constantFrom('a', 'Z', '0', ' ', '"', '\\', ',', '=', ':', '*', '/', '!', 'é', '\t') }).filter((v) => !v.endsWith('\\'));
  const valued = fc.tuple(fc.constantFrom('command', 'from', 'principals', 'environment', 'permitopen', 'permitlisten', 'tunnel', 'expiry-time'), value);
  const option: fc.Arbitrary<KeyOption> = fc.oneof(flag.map((name) => ({ name, value: null })), valued.map(([name, v]) => ({ name, value: v })));
  const randomCase = (s: string, bits: number[]): string => Array.from(s).map((c, i) => ((bits[i % bits.length] ?? 0) % 2 ? c.toUpperCase() : c)).join('');

  it('never throws on any string, and a parse that succeeds formats back to the same options', () => {
    fc.assert(
      fc.property(fc.oneof(fc.string(), fc.string({ unit: 'binary' }), fc.array(fc.oneof(flag, valued.map(([n, v]) => `${n}="${v}"`), fc.constantFrom(',', '"', ' ', 'x', '=')), { maxLength: 8 }).map((a) => a.join(''))), (text) => {
        const r = parseKeyOptions(text);
        if (!r.ok || r.options.length === 0) return;
        const again = parseKeyOptions(formatKeyOptions(r.options));
        assert.ok(again.ok, formatKeyOptions(r.options));
        assert.deepEqual(again.options, r.options);
        assert.deepEqual(again.effect, r.effect);
      }),
      { numRuns: 3000 },
    );
  });

  it('names are case-insensitive: any spelling of a list parses to the same options and effect', () => {
    fc.assert(
      fc.property(fc.array(option, { minLength: 1, maxLength: 6 }), fc.array(fc.nat(), { minLength: 1, maxLength: 40 }), (options, bits) => {
        const text = options.map((o) => (o.value === null ? randomCase(o.name, bits) : `${randomCase(o.name, bits)}="${o.value.replace(/"/g, '\\"')}"`)).join(',');
        const lower = parseKeyOptions(formatKeyOptions(options));
        const mixed = parseKeyOptions(text);
        assert.deepEqual(mixed, lower);
      }),
      { numRuns: 2000 },
    );
  });

  it('only widening options widen: dropping them from a list never leaves a widening', () => {
    fc.assert(
      fc.property(fc.array(option, { minLength: 1, maxLength: 6 }), (options) => {
        const r = parseKeyOptions(formatKeyOptions(options));
        if (!r.ok) return;
        const narrow = options.filter((o) => !['cert-authority', 'no-touch-required', 'environment'].includes(o.name));
        if (narrow.length === 0) return;
        const n = parseKeyOptions(formatKeyOptions(narrow));
        if (n.ok) assert.deepEqual(widenings(n.effect), []);
      }),
      { numRuns: 2000 },
    );
  });

  it('expiry-time: every valid UTC date and time reads back as its own instant', () => {
    fc.assert(
      fc.property(fc.date({ min: new Date(Date.UTC(1970, 0, 2)), max: new Date(Date.UTC(9999, 11, 31)), noInvalidDate: true }), (d) => {
        const p = (n: number, w = 2): string => String(n).padStart(w, '0');
        const text = `${p(d.getUTCFullYear(), 4)}${p(d.getUTCMonth() + 1)}${p(d.getUTCDate())}${p(d.getUTCHours())}${p(d.getUTCMinutes())}${p(d.getUTCSeconds())}Z`;
        assert.equal(parseAbsoluteTime(text), Math.floor(d.getTime() / 1000));
      }),
      { numRuns: 1000 },
    );
  });
});
