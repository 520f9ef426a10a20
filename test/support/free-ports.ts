import { createServer, type Server } from 'node:net';

/**
 * Free loopback ports for processes a test starts, all different: every port stays bound until all are
 * chosen (a port released at once could be handed out again for the next one), then all are released.
 */
export async function freePorts(n: number): Promise<number[]> {
  const servers: Server[] = [];
  const ports: number[] = [];
  try {
    for (let i = 0; i < n; i++) {
      const s = createServer();
      servers.push(s);
      ports.push(await new Promise<number>((resolve, reject) => {
        s.once('error', reject);
        s.listen(0, '127.0.0.1', () => resolve((s.address() as { port: number }).port));
      }));
    }
  } finally {
    await Promise.all(servers.map((s) => new Promise<void>((resolve) => (s.listening ? s.close(() => resolve()) : resolve()))));
  }
  return ports;
}
