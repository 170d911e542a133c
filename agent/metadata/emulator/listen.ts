import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { ImprintError } from '../../os/errors.js';

// The platform emulators' one way to listen and to stop: a port in use is a clear command
// error, and close() ends kept-alive connections too, so a test's after-hook never waits on them.

export interface Listening {
  url: string;
  /** Stops listening and drops open connections; `before` runs first (e.g. clearing timers). */
  close(before?: () => void): Promise<void>;
}

/** A server whose handler gets the request's body as text, of which only the first 64 KiB is kept. */
export function createBodyServer(handle: (req: IncomingMessage, res: ServerResponse, body: string) => void): Server {
  return createServer((req, res) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size <= 64 * 1024) chunks.push(c);
    });
    req.on('end', () => handle(req, res, Buffer.concat(chunks).toString('utf8')));
  });
}

export async function listenHttp(server: Server, listen: { host?: string; port?: number } | undefined): Promise<Listening> {
  const address = await new Promise<AddressInfo>((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) => reject(new ImprintError(`cannot listen: ${err.code ?? err.message}`, 'command')));
    server.listen(listen?.port ?? 0, listen?.host ?? '127.0.0.1', () => resolve(server.address() as AddressInfo));
  });
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  let closing: Promise<void> | null = null;
  return {
    url: `http://${host}:${address.port}`,
    close(before) {
      closing ??= new Promise<void>((resolve) => {
        before?.();
        server.close(() => resolve());
        server.closeAllConnections();
      });
      return closing;
    },
  };
}
