import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface SeenRequest {
  readonly method: string;
  readonly path: string;
  readonly headers: IncomingMessage['headers'];
  readonly body: Record<string, unknown>;
}

export type Handler = (req: SeenRequest, res: ServerResponse) => void | Promise<void>;

/** A small stand-in for the hub on 127.0.0.1:0: each test sets the handler; every request is kept for assertions. */
export interface FakeHub {
  readonly url: string;
  readonly seen: SeenRequest[];
  handle(handler: Handler): void;
  close(): Promise<void>;
}

export async function startFakeHub(): Promise<FakeHub> {
  const seen: SeenRequest[] = [];
  let handler: Handler = (_req, res) => json(res, 500, { code: 'INTERNAL' });
  const server: Server = createServer((req, res) => {
    let text = '';
    req.setEncoding('utf8');
    req.on('data', (chunk: string) => (text += chunk));
    req.on('end', () => {
      const seenReq: SeenRequest = { method: req.method ?? '', path: req.url ?? '', headers: req.headers, body: text === '' ? {} : (JSON.parse(text) as Record<string, unknown>) };
      seen.push(seenReq);
      void Promise.resolve(handler(seenReq, res)).catch((error: unknown) => json(res, 500, { code: 'INTERNAL', detail: String(error) }));
    });
  });
  await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    seen,
    handle: (h) => (handler = h),
    close: () => new Promise<void>((done) => server.close(() => done())),
  };
}

export function json(res: ServerResponse, status: number, body: unknown, contentType = status >= 400 ? 'application/problem+json' : 'application/json'): void {
  res.writeHead(status, { 'content-type': contentType });
  res.end(JSON.stringify(body));
}
