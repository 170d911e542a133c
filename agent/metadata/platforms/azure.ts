import { ImprintError } from '../../os/errors.js';
import type { LaunchKey } from '../types.js';
import { parseObject, type PlatformHttp } from './fetch.js';
import { instance, optionalText, overHttp, type Provider } from './provider.js';

// Microsoft Azure. The instance comes from IMDS (Metadata: true on every request, an
// api-version on every path): vmId, osProfile.adminUsername and computerName, and the
// publicKeys the VM was created with, all for adminUsername. Then the mandatory part: the
// wireserver must hear "Ready" (the goal state's incarnation, container and role instance ids
// echoed back in a Health report), or Azure marks the VM failed after its provisioning timeout.

export const WIRESERVER = '168.63.129.16';
const API = 'api-version=2021-02-01';
const WIRE_HEADERS = { 'x-ms-version': '2012-11-30', 'x-ms-agent-name': 'imprint' };

/** A goal state's value, by element name; only the plain shapes Azure uses are accepted. */
function element(xml: string, name: string, shape: RegExp): string {
  const m = new RegExp(`<${name}>([^<]{1,200})</${name}>`).exec(xml);
  const value = m?.[1]?.trim();
  if (value === undefined || !shape.test(value)) throw new ImprintError(`wireserver goal state: no usable <${name}>`);
  return value;
}

export function healthReport(goal: { incarnation: string; containerId: string; instanceId: string }): string {
  // Every value was matched against a shape without <, & or quotes: nothing to escape.
  return [
    '<?xml version="1.0" encoding="utf-8"?>',
    '<Health xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xmlns:xsd="http://www.w3.org/2001/XMLSchema">',
    `<GoalStateIncarnation>${goal.incarnation}</GoalStateIncarnation>`,
    '<Container>',
    `<ContainerId>${goal.containerId}</ContainerId>`,
    '<RoleInstanceList><Role>',
    `<InstanceId>${goal.instanceId}</InstanceId>`,
    '<Health><State>Ready</State></Health>',
    '</Role></RoleInstanceList>',
    '</Container>',
    '</Health>',
    '',
  ].join('\n');
}

async function reportReady(http: PlatformHttp, wireserver: string): Promise<string> {
  const goalRes = await http.send('/machine/?comp=goalstate', { base: wireserver, headers: WIRE_HEADERS });
  if (goalRes.status !== 200) throw new ImprintError(`wireserver goal state: HTTP ${goalRes.status}`);
  const goal = {
    incarnation: element(goalRes.body, 'Incarnation', /^\d{1,10}$/),
    containerId: element(goalRes.body, 'ContainerId', /^[A-Za-z0-9-]{1,64}$/),
    instanceId: element(goalRes.body, 'InstanceId', /^[A-Za-z0-9._-]{1,128}$/),
  };
  const res = await http.send('/machine/?comp=health', {
    method: 'POST', base: wireserver, body: healthReport(goal),
    headers: { ...WIRE_HEADERS, 'content-type': 'text/xml;charset=utf-8' },
  });
  if (res.status !== 200) throw new ImprintError(`wireserver health report: HTTP ${res.status}`);
  return `reported Ready to the wireserver (incarnation ${goal.incarnation})`;
}

export const azure: Provider = {
  name: 'azure',
  addresses: ['169.254.169.254', WIRESERVER],
  detectedBy: 'DMI chassis_asset_tag "7783-7084-3265-9085-8269-3286-77" (Azure\'s own tag)',
  read: (ctx) => overHttp('azure', ctx, { Metadata: 'true' }, async (http) => {
    const text = await http.get(`/metadata/instance?${API}`);
    if (text === null) throw new ImprintError('/metadata/instance: HTTP 404');
    const doc = parseObject(text, '/metadata/instance');
    const compute = (doc.compute ?? {}) as Record<string, unknown>;
    const os = (compute.osProfile ?? {}) as Record<string, unknown>;
    const admin = optionalText(os.adminUsername);
    const rejected: string[] = [];
    const keys: LaunchKey[] = [];
    const listed = compute.publicKeys;
    if (listed !== undefined && !Array.isArray(listed)) rejected.push('compute.publicKeys: not a list');
    (Array.isArray(listed) ? listed : []).forEach((entry: unknown, i) => {
      const data = (entry as Record<string, unknown> | null)?.keyData;
      if (typeof data !== 'string') rejected.push(`compute.publicKeys[${i}]: no keyData`);
      else keys.push({ origin: `compute.publicKeys[${i}]`, name: '', text: data, ...(admin ? { user: admin } : {}) });
    });
    const hostname = optionalText(os.computerName) ?? optionalText(compute.name);
    const id = typeof compute.vmId === 'string' ? compute.vmId : '';
    return instance('azure', id, keys, rejected, {
      ...(hostname ? { hostname } : {}),
      ...(admin ? { defaultUser: admin } : {}),
      // An offline tree is not the VM this machine runs on: only a named wireserver hears from it.
      reportReady: () => (ctx.wireserverUrl === null
        ? Promise.resolve('not reported: an offline tree (give --wireserver-url to report to a wireserver)')
        : reportReady(http, ctx.wireserverUrl)),
    });
  }),
};
