import { ImprintError } from '../../os/errors.js';
import { instance, keyList, optionalText, overHttp, type Provider } from './provider.js';

// Oracle Cloud Infrastructure: IMDS v2 under /opc/v2, which refuses requests without the
// "Authorization: Bearer Oracle" header. The launch keys are metadata.ssh_authorized_keys
// (one a line) for the image's own login user.

export const oci: Provider = {
  name: 'oci',
  addresses: ['169.254.169.254'],
  detectedBy: 'DMI chassis_asset_tag "OracleCloud.com"',
  read: (ctx) => overHttp('oci', ctx, { Authorization: 'Bearer Oracle' }, async (http) => {
    const doc = await http.json('/opc/v2/instance/');
    if (doc === null) throw new ImprintError('/opc/v2/instance/: HTTP 404');
    const rejected: string[] = [];
    const meta = (doc.metadata ?? {}) as Record<string, unknown>;
    const keys = keyList(meta.ssh_authorized_keys, 'metadata.ssh_authorized_keys', rejected);
    const hostname = optionalText(doc.hostname);
    return instance('oci', optionalText(doc.id) ?? '', keys, rejected, hostname ? { hostname } : {});
  }),
};
