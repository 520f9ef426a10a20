import { connect } from 'node:net';

export interface RawAnswer {
  readonly status: number;
  readonly headers: Readonly<Record<string, string>>;
  readonly body: string;
  /** How long after the last byte was sent the server closed the connection. */
  readonly closedAfterMs: number;
}

/**
 * Sends `bytes` as they are on a plain TCP connection (nothing completes or corrects them, unlike an
 * HTTP client), then reads until the server closes. Rejects if the server holds the connection open
 * for `giveUpMs`: a request it never answers.
 */
export function rawHttp(port: number, bytes: string | Buffer, giveUpMs = 5000): Promise<RawAnswer> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    let sentAt = 0;
    const giveUp = setTimeout(() => {
      socket.destroy();
      reject(new Error(`the server held the connection open for ${giveUpMs} ms; it answered ${JSON.stringify(Buffer.concat(chunks).toString('utf8').slice(0, 200))}`));
    }, giveUpMs);
    socket.on('connect', () => socket.write(bytes, () => (sentAt = Date.now())));
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    socket.on('error', () => undefined);
    socket.on('close', () => {
      clearTimeout(giveUp);
      const text = Buffer.concat(chunks).toString('utf8');
      const split = text.indexOf('\r\n\r\n');
      const [statusLine, ...lines] = text.slice(0, split < 0 ? text.length : split).split('\r\n');
      const headers = Object.fromEntries(lines.map((l) => [l.slice(0, l.indexOf(':')).toLowerCase(), l.slice(l.indexOf(':') + 1).trim()]));
      resolve({ status: Number(/^HTTP\/1\.1 (\d{3})/.exec(statusLine ?? '')?.[1] ?? 0), headers, body: split < 0 ? '' : text.slice(split + 4), closedAfterMs: Date.now() - sentAt });
    });
  });
}
