import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  findAccount,
  groupEntries,
  hashScheme,
  parseAccountFile,
  passwdEntries,
  passwordState,
  printAccountFile,
  type AccountKind,
} from '../../agent/parsers/accounts.js';
import { ParseError } from '../../agent/parsers/errors.js';

const FIELDS: Record<AccountKind, number> = { passwd: 7, shadow: 9, group: 4 };
const KINDS: AccountKind[] = ['passwd', 'shadow', 'group'];

/** One character that may appear inside a field: anything but ':', '\n', '\r' and NUL. */
const fieldChar: fc.Arbitrary<string> = fc
  .oneof(
    { arbitrary: fc.constantFrom(...'abcxyzXYZ0189$./!*,_-+= \t#'.split('')), weight: 5 },
    { arbitrary: fc.string({ unit: 'binary', minLength: 1, maxLength: 1 }), weight: 1 },
  )
  .filter((c) => !/[:\n\r\0]/.test(c));

const field = fc.string({ unit: fieldChar, maxLength: 10 });
const name = fc.string({ unit: fieldChar, minLength: 1, maxLength: 10 });

/** A valid line's fields for a kind: non-empty name plus the right number of other fields. */
function validFields(kind: AccountKind): fc.Arbitrary<string[]> {
  const rest = FIELDS[kind] - 1;
  return fc.tuple(name, fc.array(field, { minLength: rest, maxLength: rest })).map(([n, others]) => [n, ...others]);
}

function joinFile(lines: string[], finalNewline: boolean): string {
  return lines.join('\n') + (finalNewline ? '\n' : '');
}

/** A line that must be rejected, for the given kind. Always non-empty, so it cannot vanish into a final newline. */
function badLine(kind: AccountKind): fc.Arbitrary<string> {
  const wrongCount = fc
    .integer({ min: 1, max: 12 })
    .filter((n) => n !== FIELDS[kind])
    .chain((n) => fc.tuple(name, fc.array(field, { minLength: n - 1, maxLength: n - 1 })))
    .map(([n, others]) => [n, ...others].join(':'));
  const withControl = (c: string): fc.Arbitrary<string> =>
    fc.tuple(validFields(kind), fc.nat()).map(([fields, at]) => {
      const text = fields.join(':');
      const i = at % (text.length + 1);
      return text.slice(0, i) + c + text.slice(i);
    });
  const emptyName = validFields(kind).map((fields) => ['', ...fields.slice(1)].join(':'));
  return fc.oneof(wrongCount, withControl('\r'), withControl('\0'), emptyName);
}

function assertOnlyParseError(fn: () => unknown): void {
  try {
    fn();
  } catch (err) {
    if (!(err instanceof ParseError)) throw new Error(`expected a ParseError, got ${err instanceof Error ? err.stack : String(err)}`);
  }
}

describe('parsers/accounts', () => {
  describe('parseAccountFile / printAccountFile', () => {
    for (const kind of KINDS) {
      it(`round-trips any valid ${kind} file byte for byte`, () => {
        fc.assert(
          fc.property(fc.array(validFields(kind), { maxLength: 15 }), fc.boolean(), (rows, nl) => {
            const text = joinFile(rows.map((r) => r.join(':')), nl);
            const parsed = parseAccountFile(text, kind, `/etc/${kind}`);
            assert.equal(printAccountFile(parsed), text);
            assert.equal(parsed.file, `/etc/${kind}`);
            assert.equal(parsed.finalNewline, nl);
            assert.deepEqual(
              parsed.lines.map((l) => l.fields),
              rows,
            );
            assert.deepEqual(
              parsed.lines.map((l) => l.line),
              rows.map((_, i) => i + 1),
            );
          }),
          { numRuns: 300 },
        );
      });

      it(`reports the 1-based line of the first bad ${kind} line`, () => {
        fc.assert(
          fc.property(
            fc.array(validFields(kind), { maxLength: 8 }),
            badLine(kind),
            fc.array(fc.oneof(validFields(kind).map((f) => f.join(':')), badLine(kind)), { maxLength: 4 }),
            fc.boolean(),
            (before, bad, after, nl) => {
              const text = joinFile([...before.map((r) => r.join(':')), bad, ...after], nl);
              assert.throws(
                () => parseAccountFile(text, kind, 'the-file'),
                (err: unknown) => {
                  assert.ok(err instanceof ParseError, `not a ParseError: ${String(err)}`);
                  assert.equal(err.line, before.length + 1);
                  assert.equal(err.file, 'the-file');
                  assert.ok(err.message.startsWith(`the-file:${before.length + 1}: `), err.message);
                  return true;
                },
              );
            },
          ),
          { numRuns: 300 },
        );
      });

      it(`never throws anything but ParseError on arbitrary ${kind} text, and round-trips what it accepts`, () => {
        const colonish = fc.string({ unit: fc.constantFrom('a', ':', '\n', '\r', '\0', ' ', 'é', '😀', ''), maxLength: 60 });
        fc.assert(
          fc.property(fc.oneof(fc.string(), fc.string({ unit: 'binary' }), fc.string({ unit: 'grapheme' }), colonish), (text) => {
            assertOnlyParseError(() => {
              const parsed = parseAccountFile(text, kind, 'x');
              assert.equal(printAccountFile(parsed), text);
            });
          }),
          { numRuns: 500 },
        );
      });
    }

    it('rejects wrong field counts, CR, NUL and empty names with a ParseError at the right line', () => {
      const cases: [string, AccountKind, number][] = [
        ['root:x:0:0:root:/root\n', 'passwd', 1],
        ['root:x:0:0:root:/root:/bin/bash:extra\n', 'passwd', 1],
        ['root:x:0:0:root:/root:/bin/bash\nbin:x:1:1::/bin\n', 'passwd', 2],
        ['root:x:0:0:root:/root:/bin/bash\r\nbin:x:1:1::/bin:/usr/sbin/nologin\r\n', 'passwd', 1],
        ['root:*:19000:0:99999:7:::\nda\0emon:*:19000:0:99999:7:::\n', 'shadow', 2],
        ['root:*:19000:0:99999:7:::\n:*:19000:0:99999:7:::\n', 'shadow', 2],
        ['root:x:0:\nsudo:x:27:alice\n\n', 'group', 3],
        ['root:x:0:\n\nsudo:x:27:alice\n', 'group', 2],
      ];
      for (const [text, kind, line] of cases) {
        assert.throws(() => parseAccountFile(text, kind, 'f'), (err: unknown) => err instanceof ParseError && err.line === line, JSON.stringify(text));
      }
    });

    it('accepts the empty file and keeps empty fields', () => {
      assert.deepEqual(parseAccountFile('', 'shadow', 'f'), { file: 'f', lines: [], finalNewline: false });
      const parsed = parseAccountFile('root:*:19000:0:99999:7:::\n', 'shadow', 'f');
      assert.deepEqual(parsed.lines[0]?.fields, ['root', '*', '19000', '0', '99999', '7', '', '', '']);
    });
  });

  describe('entries', () => {
    const passwd = 'root:x:0:0:root:/root:/bin/bash\nalice:x:1000:1000:Alice,,,:/home/alice:/bin/zsh\n';
    const group = 'root:x:0:\nsudo:x:27:alice,bob\n';

    it('finds accounts by exact name', () => {
      const parsed = parseAccountFile(passwd, 'passwd', 'p');
      assert.equal(findAccount(parsed, 'alice')?.line, 2);
      assert.equal(findAccount(parsed, 'Alice'), undefined);
      assert.equal(findAccount(parsed, 'ali'), undefined);
    });

    it('maps passwd and group fields', () => {
      assert.deepEqual(passwdEntries(parseAccountFile(passwd, 'passwd', 'p'))[1], {
        name: 'alice', password: 'x', uid: 1000, gid: 1000, gecos: 'Alice,,,', home: '/home/alice', shell: '/bin/zsh',
      });
      assert.deepEqual(groupEntries(parseAccountFile(group, 'group', 'g')), [
        { name: 'root', gid: 0, members: [] },
        { name: 'sudo', gid: 27, members: ['alice', 'bob'] },
      ]);
    });
  });

  describe('passwordState', () => {
    const usable = [
      '$6$rounds=5000$saltsalt$Jf8xL7mJ8jY0m2TjCv0m2mM1b0M2Qy0Pq1v3rY0VqFQ7Yt8xk2s9bF0nQ1m3s4t5u6v7w8x9y0z1A2B3C4D5E.',
      '$y$j9T$F5Jx5fExrKuPp53xLKQ..1$X3DX6M94c7o.9agCG9G317fhZg9SqC.5i5rd.RhAtQ7',
      '$1$saltsalt$qjXMvbEw8oaL.CzflDugX/',
      '$5$saltsalt$Gcm6FsVtF/Qa77ZKD.iwsJlCVPY0XSMgLJL0Hnww/c1',
      '$2b$12$R9h/cIPz0gi.URNNX3kh2OPST9/PgBkqquzi.Ss7KIUgO2t0jWMUW',
      'abJnggxhB/yWI', // traditional DES: 13 characters of [./0-9A-Za-z]
    ];
    for (const hash of usable) {
      it(`"${hash.slice(0, 12)}..." is usable, and locked behind "!"`, () => {
        assert.equal(passwordState(hash), 'usable');
        assert.equal(passwordState(`!${hash}`), 'locked');
        assert.equal(passwordState(`!!${hash}`), 'locked');
      });
    }

    it('"" is empty', () => {
      assert.equal(passwordState(''), 'empty');
    });

    for (const field of ['*', '!', '!!', '!*', 'x', 'NP', '*LK*', 'LK', '!!!', 'abJnggxhB/yW', 'abJnggxhB/yWI0', 'abJnggxh:/yWI', '*abJnggxhB/yW']) {
      it(`"${field}" is disabled`, () => {
        assert.equal(passwordState(field), 'disabled');
      });
    }
  });

  describe('hashScheme', () => {
    const cases: [string, string][] = [
      ['$6$salt$hash', 'sha512'],
      ['!$6$salt$hash', 'sha512'],
      ['$y$j9T$salt$hash', 'yescrypt'],
      ['$gy$j9T$salt$hash', 'gost-yescrypt'],
      ['$1$salt$hash', 'md5'],
      ['$5$salt$hash', 'sha256'],
      ['$2a$10$hash', 'bcrypt'],
      ['$2b$10$hash', 'bcrypt'],
      ['$2y$10$hash', 'bcrypt'],
      ['$7$CU..../....salt$hash', 'scrypt'],
      ['abJnggxhB/yWI', 'des'],
      ['!abJnggxhB/yWI', 'des'],
      ['$sha1$19703$salt$hash', '$sha1$'],
      ['', 'none'],
      ['*', 'none'],
      ['!', 'none'],
      ['x', 'none'],
    ];
    for (const [field, scheme] of cases) {
      it(`${JSON.stringify(field)} → ${scheme}`, () => {
        assert.equal(hashScheme(field), scheme);
      });
    }

    it('never reveals the salt or hash of a "$id$salt$hash" field', () => {
      const token = fc.string({ unit: fc.constantFrom(...'./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz'.split('')), minLength: 8, maxLength: 40 });
      const id = fc.string({ unit: fc.constantFrom(...'0123456789abcdefghijklmnopqrstuvwxyz'.split('')), minLength: 1, maxLength: 4 });
      fc.assert(
        fc.property(fc.constantFrom('', '!', '!!'), id, token, token, (lock, i, salt, hash) => {
          const scheme = hashScheme(`${lock}$${i}$${salt}$${hash}`);
          assert.ok(!scheme.includes(salt) && !scheme.includes(hash), scheme);
          assert.ok(scheme.length <= 16, scheme);
        }),
      );
    });
  });
});
