import assert from 'node:assert/strict';
import { appendFile, readFile } from 'node:fs/promises';
import path from 'node:path';
import { imprint } from '../support/cli.js';
import { passwordState } from '../../agent/parsers/accounts.js';
import { FAST_KEYS_CONFIG, removeScratch, scratchImage, writeConfig } from '../support/tree.js';
import { sha512Crypt } from '../../agent/os/sha512-crypt.js';

// Every password someone could log in with is locked, whatever the layout of the account
// files, and every line imprint does not change is kept byte for byte: a hash kept in
// /etc/passwd (with or without a shadow line), shadow lines with too few or too many fields, a
// duplicate shadow line, NIS "+"/"-" entries, lines without an account name, bytes that are not
// UTF-8. One odd line never stops the others from being locked; the report names what was left.

const HASH = sha512Crypt('known-to-the-image-builder', 'imagesalt');

const PASSWD_EXTRA = [
  `legacy:${HASH}:2001:2001::/home/legacy:/bin/sh`, // the hash in /etc/passwd, no shadow line
  `both:${HASH}:2002:2002::/home/both:/bin/sh`, // a hash in /etc/passwd and a shadow line
  'odd:x:2003:2003::/home/odd:/bin/sh',
  'dup:x:2004:2004::/home/dup:/bin/sh',
  'nopw:x:2005:2005::/home/nopw:/bin/sh', // /etc/passwd says x, no shadow line: nothing can match
  'latin:x:2006:2006:Ren\xe9:/home/latin:/bin/sh', // a gecos byte that is not UTF-8
  '+@netadmins::::::',
  '-blocked::::::',
  '+::::::',
];
const SHADOW_EXTRA = [
  `both:${HASH}:19000:0:99999:7:::`,
  `odd:${HASH}:19000:0:99999:7::`, // 8 fields
  '*** not an account line ***',
  ':nobody-here:19000:0:99999:7:::', // no name
  `dup:*:19000:0:99999:7:::`,
  `dup:${HASH}:19000:0:99999:7:::`, // the second line of a name
  '+::::::::',
  '-blocked::::::::',
  `extra:${HASH}:19000:0:99999:7:::and:more`, // 11 fields, and no /etc/passwd entry
];

function lines(data: Buffer): string[] {
  return data.toString('latin1').split('\n');
}

describe('passwords: every layout of the account files', function () {
  let root: string;

  beforeEach(async () => {
    root = await scratchImage();
    await appendFile(path.join(root, 'etc/passwd'), Buffer.from(`${PASSWD_EXTRA.join('\n')}\n`, 'latin1'));
    await appendFile(path.join(root, 'etc/shadow'), `${SHADOW_EXTRA.join('\n')}\n`);
    await writeConfig(root, FAST_KEYS_CONFIG);
  });
  afterEach(async () => {
    await removeScratch(root);
  });

  it('locks every usable password, keeps every other line byte for byte, and says what was left and why', async () => {
    const passwdBefore = lines(await readFile(path.join(root, 'etc/passwd')));
    const shadowBefore = lines(await readFile(path.join(root, 'etc/shadow')));
    const run = await imprint(['boot', '--root', root, '--json']);
    assert.equal(run.code, 0, run.stderr);
    const passwdAfter = lines(await readFile(path.join(root, 'etc/passwd')));
    const shadowAfter = lines(await readFile(path.join(root, 'etc/shadow')));
    assert.equal(passwdAfter.length, passwdBefore.length);
    assert.equal(shadowAfter.length, shadowBefore.length);

    const field = (l: string): string => l.split(':')[1] ?? '';
    // No line of either file lets anyone in with a password any more.
    for (const [file, all] of [['passwd', passwdAfter], ['shadow', shadowAfter]] as const) {
      for (const l of all) {
        if (l === '' || l.startsWith('+') || l.startsWith('-') || !l.includes(':')) continue;
        const name = l.split(':')[0];
        if (name === '' || name === 'extra') continue;
        assert.ok(!['usable', 'empty'].includes(passwordState(field(l))), `${file}: ${name} can still log in with a password`);
      }
    }
    const locked = (all: string[], name: string): string[] => all.filter((l) => l.startsWith(`${name}:`)).map((l) => passwordState(field(l)));
    assert.deepEqual(locked(passwdAfter, 'legacy'), ['locked'], 'a hash kept in /etc/passwd is locked there');
    assert.deepEqual(locked(passwdAfter, 'both'), ['locked']);
    assert.deepEqual(locked(shadowAfter, 'both'), ['locked']);
    assert.deepEqual(locked(shadowAfter, 'odd'), ['locked'], 'a shadow line with 8 fields is locked in place');
    assert.equal(shadowAfter.find((l) => l.startsWith('odd:'))?.split(':').length, 8, 'its field count is kept');
    assert.deepEqual(locked(shadowAfter, 'dup'), ['locked', 'locked'], 'both lines of a duplicate are locked');
    // Lines imprint does not change are the same bytes.
    for (const keep of ['+@netadmins::::::', '-blocked::::::', '+::::::', 'nopw:x:2005:2005::/home/nopw:/bin/sh', 'latin:x:2006:2006:Ren\xe9:/home/latin:/bin/sh']) {
      assert.ok(passwdAfter.includes(keep), `/etc/passwd lost ${JSON.stringify(keep)}`);
    }
    for (const keep of ['*** not an account line ***', ':nobody-here:19000:0:99999:7:::', '+::::::::', '-blocked::::::::', `extra:${HASH}:19000:0:99999:7:::and:more`]) {
      assert.ok(shadowAfter.includes(keep), `/etc/shadow lost ${JSON.stringify(keep)}`);
    }
    const report = JSON.parse(run.stdout) as { tasks: { task: string; details: { left?: { what: string; why: string }[] } }[] };
    const left = report.tasks.find((t) => t.task === 'passwords')?.details.left ?? [];
    const why = (what: string | RegExp): string => left.filter((l) => (typeof what === 'string' ? l.what === what : what.test(l.what))).map((l) => l.why).join('; ');
    assert.match(why(/^\/etc\/shadow line \d+$/), /NIS compat entry/);
    assert.match(why(/^\/etc\/shadow line \d+$/), /not an account line/);
    assert.match(why(/^\/etc\/passwd line \d+$/), /NIS compat entry/);
    assert.match(why('extra'), /no \/etc\/passwd entry/);
  });
});
