import assert from 'node:assert/strict';
import type { LookupAddress } from 'node:dns';
import { guardedLookup } from '../../agent/os/http.js';
import { isMetadataHost } from '../../agent/os/metadata-address.js';
import { METADATA_SPELLINGS } from '../support/metadata-spellings.js';

describe('metadata addresses in every spelling', () => {
  it('knows each spelling once URL parsing has made its one form', () => {
    for (const url of METADATA_SPELLINGS) assert.equal(isMetadataHost(new URL(url).hostname), true, url);
  });

  it('leaves loopback, ordinary addresses and neighbours of the ranges alone', () => {
    for (const url of ['http://127.0.0.1:1338', 'http://[::1]:1338', 'http://169.253.255.255', 'http://169.255.0.1', 'http://100.100.100.201',
      'http://[fd00:ec3::254]', 'http://[fd00:ec2:0:1::254]', 'http://[::ffff:127.0.0.1]', 'http://localhost', 'http://example.com']) {
      assert.equal(isMetadataHost(new URL(url).hostname), false, url);
    }
  });

  it('knows the cloud metadata host names, with or without the final dot', () => {
    for (const name of ['metadata.google.internal', 'METADATA.google.internal.', 'instance-data', 'instance-data.ec2.internal.']) assert.equal(isMetadataHost(name), true, name);
  });

  it('fails a name that resolves to a metadata address, before any connection (both lookup forms)', async () => {
    type Cb = (err: NodeJS.ErrnoException | null, address: string | LookupAddress[], family?: number) => void;
    const fake = (answer: string) => (_host: string, opts: { all?: boolean }, cb: Cb): void => {
      if (opts.all) cb(null, [{ address: '127.0.0.1', family: 4 }, { address: answer, family: answer.includes(':') ? 6 : 4 }]);
      else cb(null, answer, answer.includes(':') ? 6 : 4);
    };
    const run = (answer: string, all: boolean): Promise<NodeJS.ErrnoException | null> => new Promise((resolve) => {
      guardedLookup(fake(answer))('innocent.example', { all }, (err) => resolve(err));
    });
    for (const all of [false, true]) {
      assert.match((await run('169.254.169.254', all))?.message ?? '', /refusing to contact innocent\.example \(169\.254\.169\.254\)/);
      assert.match((await run('::ffff:169.254.169.254', all))?.message ?? '', /refusing/);
      assert.equal(await run('192.0.2.10', all), null);
    }
  });
});
