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

/**
 * One HTTPS request to the hub listening on 127.0.0.1:`port`, on a new connection, trusting only `ca`
 * (servername localhost, in the hub's certificate); `body` undefined sends none.
 */
export function httpsSend(port: number, ca: string, method: string, path: string, body: unknown, who: Presenting): Promise<HttpsAnswer> {
  const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
  return new Promise((resolve, reject) => {
    const req = httpsRequest(
      {
        host: '127.0.0.1',
        port,
        path,
        method,
        servername: 'localhost',
        ca,
        ...(who.cert === undefined ? {} : { cert: who.cert, key: who.key }),
        agent: false,
        headers: {
          ...(payload === undefined ? {} : { 'content-type': 'application/json', 'content-length': payload.length }),
          ...(who.token === undefined ? {} : { authorization: `Bearer ${who.token}` }),
        },
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

/** One HTTPS POST of `body` as JSON (see httpsSend). */
export function httpsPost(port: number, ca: string, path: string, body: unknown, who: Presenting): Promise<HttpsAnswer> {
  return httpsSend(port, ca, 'POST', path, body, who);
}

/** One HTTPS GET (see httpsSend). */
export function httpsGet(port: number, ca: string, path: string, who: Presenting): Promise<HttpsAnswer> {
  return httpsSend(port, ca, 'GET', path, undefined, who);
}
