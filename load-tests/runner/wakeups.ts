/**
 * What it costs on this machine to hand work to another party and be woken by its answer: CPU microseconds per
 * round trip over a loopback TCP connection (both ends in this process, 200-byte messages) and through a worker
 * thread's message port, back to back and paced (one every 3 ms, as a query's steps are at a low fixed rate).
 *
 * A linkage query hands work on about eight times (the request and its answer, the rate limit's and the code
 * mapper's Redis calls, the provider call, two commits through the ledger's writer thread). Under load these
 * are shared by many queries; at a low rate each query pays them alone, and on a virtual machine a paced round
 * trip costs about twice a back-to-back one (an idle CPU woken each time). The load runner prints these figures
 * beside its own, so that runs on different machines can be compared (docs/throughput.md).
 */
import { createServer, connect, type AddressInfo, type Socket } from 'node:net';
import { Worker } from 'node:worker_threads';

export interface WakeupCosts {
  /** Loopback TCP round trips back to back, CPU µs each (both ends). */
  readonly tcp_busy: number;
  /** Loopback TCP round trips one every 3 ms. */
  readonly tcp_paced: number;
  /** Worker thread message round trips back to back, CPU µs each (both threads). */
  readonly thread_busy: number;
  /** Worker thread message round trips one every 3 ms. */
  readonly thread_paced: number;
}

const MESSAGE = 'x'.repeat(200);
const PACE_MS = 3;

async function cpuPerRoundTrip(count: number, paced: boolean, roundTrip: () => Promise<void>): Promise<number> {
  for (let i = 0; i < 50; i++) await roundTrip();
  const before = process.cpuUsage();
  for (let i = 0; i < count; i++) {
    await roundTrip();
    if (paced) await new Promise((resolve) => setTimeout(resolve, PACE_MS));
  }
  const used = process.cpuUsage(before);
  return Math.round((used.user + used.system) / count);
}

/** Measures the four costs (about 3 s). */
export async function measureWakeups(options: { readonly busy?: number; readonly paced?: number } = {}): Promise<WakeupCosts> {
  const busy = options.busy ?? 3000;
  const paced = options.paced ?? 300;
  const server = createServer((socket) => socket.on('data', (d) => socket.write(d)));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const client: Socket = connect((server.address() as AddressInfo).port, '127.0.0.1');
  const worker = new Worker('const { parentPort } = require("node:worker_threads"); parentPort.on("message", (m) => parentPort.postMessage(m));', { eval: true });
  try {
    await new Promise<void>((resolve, reject) => client.once('connect', resolve).once('error', reject));
    client.setNoDelay(true);
    // An echo may arrive in pieces: a round trip ends when all its bytes are back.
    const tcp = () =>
      new Promise<void>((resolve) => {
        let left = MESSAGE.length;
        const onData = (d: Buffer) => {
          left -= d.length;
          if (left > 0) return;
          client.off('data', onData);
          resolve();
        };
        client.on('data', onData);
        client.write(MESSAGE);
      });
    const thread = () =>
      new Promise<void>((resolve) => {
        worker.once('message', () => resolve());
        worker.postMessage(MESSAGE);
      });
    return {
      tcp_busy: await cpuPerRoundTrip(busy, false, tcp),
      tcp_paced: await cpuPerRoundTrip(paced, true, tcp),
      thread_busy: await cpuPerRoundTrip(busy, false, thread),
      thread_paced: await cpuPerRoundTrip(paced, true, thread),
    };
  } finally {
    client.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
    await worker.terminate();
  }
}

/** The line the runner prints. */
export function wakeupLine(costs: WakeupCosts): string {
  return `handing work on, on this machine (CPU µs per round trip, back to back / one every ${PACE_MS} ms): loopback TCP ${costs.tcp_busy} / ${costs.tcp_paced}, a worker thread ${costs.thread_busy} / ${costs.thread_paced}`;
}
