import { createBodyServer, listenHttp } from './listen.js';

// A OneGate service for tests: PUT /vm with the VM's token and id records the body (the
// context packages send READY=YES); a wrong or missing token is refused with 401 as OneGate
// does, an unknown VM with 404. Token values are never logged.

export interface OneGateOptions {
  token: string;
  vmid: string;
  listen?: { host?: string; port?: number };
  log?: (line: string) => void;
}

export interface OneGateReport {
  vmid: string;
  body: string;
  contentType: string | null;
}

export interface RunningOneGate {
  url: string;
  /** Every request: method, path and the status answered. */
  requests: readonly { method: string; path: string; status: number }[];
  /** Accepted PUT /vm bodies. */
  reports: readonly OneGateReport[];
  close(): Promise<void>;
}

export async function startOneGate(o: OneGateOptions): Promise<RunningOneGate> {
  const requests: { method: string; path: string; status: number }[] = [];
  const reports: OneGateReport[] = [];
  const server = createBodyServer((req, res, body) => {
    const path = (req.url ?? '/').slice(0, 256);
    let status = 404;
    if (req.headers['x-onegate-token'] !== o.token) status = 401;
    else if (req.headers['x-onegate-vmid'] !== o.vmid) status = 404;
    else if (path === '/vm' && req.method === 'PUT') {
      status = 200;
      reports.push({ vmid: o.vmid, body, contentType: req.headers['content-type'] ?? null });
    } else if (path === '/vm') status = 405;
    requests.push({ method: req.method ?? 'GET', path, status });
    o.log?.(`onegate: ${req.method} ${path} ${status}`);
    res.writeHead(status, { 'content-type': 'text/plain' });
    res.end(status === 200 ? '' : 'refused\n');
  });
  const listening = await listenHttp(server, o.listen);
  return { url: listening.url, requests, reports, close: () => listening.close() };
}
