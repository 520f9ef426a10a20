import { connect, createServer, type Server, type Socket } from 'node:net';

/**
 * "Redis stops" without touching the shared server: the client under test talks to Redis through this TCP
 * proxy on a port of its own, and the test closes the proxy (every connection dropped, new ones refused)
 * and opens it again on the same port.
 */
export class RedisProxy {
  #server: Server | undefined;
  #sockets = new Set<Socket>();
  #stalled = false;
  #held: (() => void)[] = [];
  port = 0;

  /** "Redis stalls": connections stay open and commands reach Redis, but no answer comes back until `resume()`. */
  stall(): void {
    this.#stalled = true;
  }

  /** The held answers are delivered, in order, and answers flow again. */
  resume(): void {
    this.#stalled = false;
    for (const deliver of this.#held.splice(0)) deliver();
  }

  async start(port = this.port): Promise<void> {
    const server = createServer((client) => {
      const upstream = connect(6379, '127.0.0.1');
      for (const s of [client, upstream]) {
        this.#sockets.add(s);
        s.on('close', () => this.#sockets.delete(s));
        s.on('error', () => s.destroy());
      }
      client.pipe(upstream);
      upstream.on('data', (chunk: Buffer) => {
        if (this.#stalled) this.#held.push(() => client.write(chunk));
        else client.write(chunk);
      });
    });
    await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
    this.port = (server.address() as { port: number }).port;
    this.#server = server;
  }

  async stop(): Promise<void> {
    for (const s of this.#sockets) s.destroy();
    await new Promise<void>((resolve) => this.#server!.close(() => resolve()));
    this.#server = undefined;
  }
}
