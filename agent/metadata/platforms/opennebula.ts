import { createHash } from 'node:crypto';
import { ImprintError } from '../../os/errors.js';
import { readTreeFile } from '../../os/files.js';
import { readLabelledFs } from '../../os/labelled-fs.js';
import { parseContextSh } from './context-sh.js';
import { instance, keyList, NOTHING, optionalText, type Provider } from './provider.js';

// OpenNebula's context CD: an ISO labelled CONTEXT holding context.sh. Read as data (see
// context-sh.ts): SSH_PUBLIC_KEY (one key a line) for USERNAME when it is set, SET_HOSTNAME,
// VMID as the instance. In an offline tree (--root) the context is the seed file below, so a
// test or an image build can provide one without a block device.

export const OPENNEBULA_SEED = '/var/lib/imprint/seed/opennebula/context.sh';

export const opennebula: Provider = {
  name: 'opennebula',
  addresses: [],
  detectedBy: `a filesystem labelled CONTEXT, or ${OPENNEBULA_SEED}`,
  async read(ctx) {
    let text: string | null = null;
    let where = OPENNEBULA_SEED;
    const seed = await readTreeFile(ctx.root, OPENNEBULA_SEED, ctx.config.maxBodyBytes).catch((err: Error) => {
      throw new ImprintError(`${OPENNEBULA_SEED}: ${err.message}`);
    });
    if (seed !== null) text = seed.toString('utf8');
    else if (ctx.root.isLive) {
      where = 'label CONTEXT:/context.sh';
      text = (await readLabelledFs(['CONTEXT'], ['context.sh'], ctx.config.maxBodyBytes))?.get('context.sh') ?? null;
    }
    if (text === null) {
      ctx.note('opennebula: no context.sh (no CONTEXT filesystem, no seed file)');
      return NOTHING;
    }
    const { vars, problems } = parseContextSh(text);
    const rejected = problems.map((p) => `${where}: ${p}`);
    const user = optionalText(vars.get('USERNAME'));
    const keys = keyList(vars.get('SSH_PUBLIC_KEY'), 'SSH_PUBLIC_KEY', rejected, user);
    const vmid = vars.get('VMID')?.trim();
    let id: string;
    if (vmid) id = `one-${vmid}`;
    else {
      // Without VMID the context itself is all that tells instances apart.
      id = `one-ctx-${createHash('sha256').update(text).digest('hex').slice(0, 16)}`;
      ctx.note(`opennebula: context.sh has no VMID; the instance is known as ${id} (a digest of the context)`);
    }
    const hostname = optionalText(vars.get('SET_HOSTNAME'));
    return {
      metadata: instance('opennebula', id, keys, rejected, { ...(hostname ? { hostname } : {}), ...(user ? { defaultUser: user } : {}) }),
      close: async () => undefined,
    };
  },
};
