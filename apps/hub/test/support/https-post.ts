import { request as httpsRequest } from 'node:https';

/** What a TLS client presents: its bearer token and, or not, a certificate and key. */
export interface Presenting {
  readonly token?: string;
  readonly cert?: string;
  readonly key?: string;
}

/** A hub's answer: its status and its JSON body ({} when empty). */
export interface HttpsAnswer {
  readonly status: number;
  readonly body: Record<string, unknown>;
}

/** One HTTPS POST to the hub listening on 127.0.0.1:`port`, on a new connection, trusting only `ca` (servername localhost, in the hub's certificate). */
export function httpsPost(port: number, ca: string, path: string, body: unknown, who: Presenting): Promise<HttpsAnswer> {
  const payload = Buffer.from(JSON.stringify(body));
  return new Promise((resolve, reject) => {
    const req = httpsRequest(
      {
        host: '127.0.0.1',
        port,
        path,
        method: 'POST',
        servername: 'localhost',
        ca,
        ...(who.cert === undefined ? {} : { cert: who.cert, key: who.key }),
        agent: false,
        headers: { 'content-type': 'application/json', 'content-length': payload.length, ...(who.token === undefined ? {} : { authorization: `Bearer ${who.token}` }) },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(Buffer.concat(chunks).toString('utf8') || '{}') as Record<string, unknown> }));
      },
    );
    req.on('error', reject);
    req.end(payload);
  });
}
