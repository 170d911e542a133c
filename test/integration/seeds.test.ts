import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { defaultConfig } from '../../agent/config.js';
import { readConfigDrive, readNoCloud } from '../../agent/metadata/seeds.js';
import { resolveMetadata } from '../../agent/metadata/resolve.js';
import { RootTree } from '../../agent/os/root.js';

// Local metadata sources read from seed directories inside a tree (NoCloud, config drive).

const KEY = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIB1X5OVa8ZcgqK9Y3ZsvXzZ3iOk1sZm8wL0KqJ3Jx4bH me@laptop';

describe('local metadata seeds', () => {
  let dir: string;
  let root: RootTree;
  const config = defaultConfig().metadata;

  beforeEach(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'imprint-seeds-'));
    root = new RootTree(dir);
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  async function put(file: string, text: string): Promise<void> {
    await mkdir(path.dirname(path.join(dir, file)), { recursive: true });
    await writeFile(path.join(dir, file), text);
  }

  it('reads NoCloud meta-data in each of cloud-init\'s public-keys forms', async () => {
    const forms: [string, number][] = [
      [`public-keys: "${KEY}"`, 1],
      [`public-keys:\n  - "${KEY}"\n  - "${KEY.replace('me@laptop', 'two')}"`, 2],
      [`public-keys:\n  mykey: "${KEY}"\n  other: ["${KEY}"]`, 2],
      ['local-hostname: x', 0],
    ];
    for (const [keys, count] of forms) {
      await put('var/lib/cloud/seed/nocloud/meta-data', `instance-id: iid-local01\n${keys}\n`);
      const md = await readNoCloud(root, config);
      assert.equal(md?.source, 'nocloud');
      assert.equal(md?.instanceId, 'iid-local01');
      assert.equal(md?.keys.length, count, keys);
      for (const key of md?.keys ?? []) assert.match(key.text, /^ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIB1X5OVa8ZcgqK9Y3ZsvXzZ3iOk1sZm8wL0KqJ3Jx4bH (me@laptop|two)$/);
    }
  });

  it('reads the OpenStack config drive, preferring typed "keys" over "public_keys"', async () => {
    await put('var/lib/cloud/seed/config_drive/openstack/latest/meta_data.json', JSON.stringify({
      uuid: '83679162-1378-4288-a2d4-70e13ec132aa',
      public_keys: { old: KEY },
      keys: [{ name: 'mykey', type: 'ssh', data: KEY }, { name: 'x509', type: 'x509', data: 'cert' }],
    }));
    const md = await readConfigDrive(root, config);
    assert.equal(md?.instanceId, '83679162-1378-4288-a2d4-70e13ec132aa');
    assert.deepEqual(md?.keys.map((k) => [k.origin, k.name]), [['keys[0]', 'mykey']]);
    assert.deepEqual(md?.rejected, ['keys[1]: not an ssh key entry']);
  });

  it('rejects an invalid instance id, and the resolver passes over a broken seed to the next source', async () => {
    await put('var/lib/cloud/seed/nocloud/meta-data', 'instance-id: "../../etc"\n');
    await assert.rejects(readNoCloud(root, config), /instance id "..\/..\/etc" is not valid/);
    await put('var/lib/cloud/seed/config_drive/openstack/latest/meta_data.json', JSON.stringify({ uuid: 'abc-123' }));
    const notes: string[] = [];
    const resolved = await resolveMetadata({ root, config, explicitUrl: false, note: (l) => notes.push(l) });
    assert.equal(resolved.metadata?.source, 'config-drive');
    assert.match(notes.join('\n'), /nocloud: ignored: .*not valid/);
  });

  it('refuses a seed reached through a symlink, and never asks the metadata service for an offline tree', async () => {
    const outside = await mkdtemp(path.join(tmpdir(), 'imprint-seeds-outside-'));
    try {
      await writeFile(path.join(outside, 'meta-data'), 'instance-id: i-outside\n');
      await mkdir(path.join(dir, 'var/lib/cloud/seed'), { recursive: true });
      await symlink(outside, path.join(dir, 'var/lib/cloud/seed/nocloud'));
      const notes: string[] = [];
      const resolved = await resolveMetadata({ root, config, explicitUrl: false, note: (l) => notes.push(l) });
      assert.equal(resolved.metadata, null);
      assert.match(notes.join('\n'), /nocloud: ignored: .*symlink/);
      assert.match(notes.join('\n'), /ec2: skipped for an offline tree/);
    } finally {
      await rm(outside, { recursive: true, force: true });
    }
  });

  it('bounds the size of a seed file', async () => {
    await put('var/lib/cloud/seed/nocloud/meta-data', `instance-id: i-1\n# ${'x'.repeat(70 * 1024)}\n`);
    await assert.rejects(readNoCloud(root, config), /larger than 65536 bytes/);
  });
});
