import { createHash } from 'node:crypto';
import { ImprintError } from '../../os/errors.js';
import { readTreeFile } from '../../os/files.js';
import { readLabelledFs } from '../../os/labelled-fs.js';
import { parseContextSh } from './context-sh.js';
import { oneGateRequest, reportOneGate } from './onegate.js';
import { instance, keyList, NOTHING, optionalText, type Provider } from './provider.js';

// OpenNebula's context CD: an ISO labelled CONTEXT holding context.sh. Read as data (see
// context-sh.ts): SSH_PUBLIC_KEY (one key a line) for USERNAME when it is set, SET_HOSTNAME,
// VMID as the instance; with REPORT_READY=YES, OneGate is told (onegate.ts) with the token in
// token.txt beside it. In an offline tree (--root) the context is the seed file below (and
// token.txt beside it), so a test or an image build can provide one without a block device.

export const OPENNEBULA_SEED = '/var/lib/imprint/seed/opennebula/context.sh';
const OPENNEBULA_SEED_TOKEN = '/var/lib/imprint/seed/opennebula/token.txt';

export const opennebula: Provider = {
  name: 'opennebula',
  addresses: [],
  detectedBy: `a filesystem labelled CONTEXT, or ${OPENNEBULA_SEED}`,
  async read(ctx) {
    let text: string | null = null;
    let token: string | null = null;
    let where = OPENNEBULA_SEED;
    const seedFile = (file: string): Promise<string | null> => readTreeFile(ctx.root, file, ctx.config.maxBodyBytes).then((b) => b?.toString('utf8') ?? null, (err: Error) => {
      throw new ImprintError(`${file}: ${err.message}`);
    });
    const seed = await seedFile(OPENNEBULA_SEED);
    if (seed !== null) {
      text = seed;
      token = await seedFile(OPENNEBULA_SEED_TOKEN);
    } else if (ctx.root.isLive) {
      where = 'label CONTEXT:/context.sh';
      const files = await readLabelledFs(['CONTEXT'], ['context.sh', 'token.txt'], ctx.config.maxBodyBytes);
      text = files?.get('context.sh') ?? null;
      token = files?.get('token.txt') ?? null;
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
    const gateProblems: string[] = [];
    const gate = oneGateRequest(vars, token, gateProblems);
    rejected.push(...gateProblems.map((p) => `${where}: ${p}`));
    return {
      metadata: instance('opennebula', id, keys, rejected, {
        ...(hostname ? { hostname } : {}), ...(user ? { defaultUser: user } : {}),
        ...(gate ? { reportReady: () => reportOneGate(gate, ctx) } : {}),
      }),
      close: async () => undefined,
    };
  },
};
