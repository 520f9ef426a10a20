import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { performance } from 'node:perf_hooks';
import { afterEach, describe, expect, it } from 'vitest';
import { quantile, runPacedPhase } from '../../load-tests/runner/paced.js';
import type { LinkageFixture } from '../../load-tests/runner/setup.js';

// The fixed-rate phases of `npm run load:linkage` run at a constant arrival rate (k6's constant-arrival-rate):
// evenly spaced requests, latency from each request's due time.

type Handler = (req: IncomingMessage, res: ServerResponse, arrivedAt: number) => void;

let server: Server | undefined;

async function serve(handler: Handler): Promise<{ url: string; arrivals: number[] }> {
  const arrivals: number[] = [];
  server = createServer((req, res) => {
    const at = performance.now();
    arrivals.push(at);
    req.resume();
    req.on('end', () => handler(req, res, at));
  });
  await new Promise<void>((resolve) => server!.listen(0, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, arrivals };
}

function fixture(url: string): LinkageFixture {
  return { hubUrl: url, requesterToken: 't', providerAgencyId: 'muroran-city', procedureCode: 'pension-award-claim', itemCodes: ['local-tax'], codes: [] };
}

const answered = (res: ServerResponse): void => {
  res.writeHead(200, { 'content-type': 'application/json' }).end('{"outcome":"answered"}');
};

afterEach(async () => {
  await new Promise<void>((resolve) => (server === undefined ? resolve() : server.close(() => resolve())));
  server = undefined;
});

describe('a paced (constant-arrival-rate) phase', () => {
  it('sends the requests evenly over the phase, not each second in a burst', async () => {
    const { url, arrivals } = await serve((_req, res) => answered(res));
    const result = await runPacedPhase(fixture(url), ['{}'], { name: 'rate', connections: 32, durationSeconds: 3, rate: 50, timeoutSeconds: 5 });
    expect(result.requests).toBe(150);
    expect(result.errors).toBe(0);
    expect(result.statuses).toEqual({ '200': 150 });
    // 50/s is 5 per 100 ms. A per-second burst (autocannon's overallRate: 47 of them within 100 ms, measured
    // the same way) sends each connection's share of the second at its start; even pacing leaves every 100 ms
    // window near 5. The first requests wait for connections to open: the first 300 ms are left out.
    const t0 = arrivals[0]!;
    const steady = arrivals.filter((t) => t - t0 >= 300);
    let most = 0;
    for (let i = 0, j = 0; i < steady.length; i++) {
      while (steady[i]! - steady[j]! > 100) j++;
      most = Math.max(most, i - j + 1);
    }
    // What fell due while this thread was held up elsewhere (the generator and this server share it) arrives
    // together when it runs again: the generator's own lag says how much that can be.
    const heldUp = Math.ceil((50 * result.sendLagMs.max) / 1000);
    expect(most).toBeLessThanOrEqual(15 + heldUp);
    const span = arrivals[arrivals.length - 1]! - t0;
    expect(span).toBeGreaterThan(2800);
    expect(result.connectionsOpened).toBeGreaterThan(0);
    expect(result.connectionsOpened).toBeLessThanOrEqual(32);
  });

  it("measures latency from each request's due time, so a backlog counts for every request that waited in it", async () => {
    // One connection and 20 ms per answer serve 50/s at most; at 100/s the requests queue for the connection.
    // Timed from sending, every request would look like 20 ms; timed from its due time, the last of them has
    // waited about half the phase.
    const { url } = await serve((_req, res) => setTimeout(() => answered(res), 20));
    const result = await runPacedPhase(fixture(url), ['{}'], { name: 'rate', connections: 1, durationSeconds: 1, rate: 100, timeoutSeconds: 10 });
    expect(result.errors).toBe(0);
    expect(result.requests).toBe(100);
    expect(result.latencyMs.max).toBeGreaterThan(800);
    expect(result.latencyMs.p50).toBeGreaterThan(300);
    // The rate achieved is what was answered over the time it took, not the target.
    expect(result.perSecond).toBeLessThan(60);
    expect(result.connectionsOpened).toBe(1);
  });

  it('leaves the lead-in out of the figures, but not out of the errors', async () => {
    let first = 0;
    const { url } = await serve((_req, res, at) => {
      if (first === 0) first = at;
      // Slow while the lead-in lasts (as a pool's first handshakes are), quick after it.
      if (at - first < 300) setTimeout(() => answered(res), 200);
      else answered(res);
    });
    const result = await runPacedPhase(fixture(url), ['{}'], { name: 'rate', connections: 64, durationSeconds: 1, rate: 100, timeoutSeconds: 5, leadInSeconds: 0.5 });
    expect(result.requests).toBe(100);
    expect(result.leadIn).toMatchObject({ seconds: 0.5, requests: 50 });
    expect(result.allRequests).toBe(150);
    expect(result.leadIn!.max).toBeGreaterThanOrEqual(190);
    expect(result.latencyMs.max).toBeLessThan(result.leadIn!.max);
    expect(result.errors).toBe(0);

    let n = 0;
    await new Promise<void>((resolve) => server!.close(() => resolve()));
    const { url: second } = await serve((_req, res) => {
      n++;
      if (n <= 5) res.writeHead(500).end('{"code":"INTERNAL"}');
      else answered(res);
    });
    const failing = await runPacedPhase(fixture(second), ['{}'], { name: 'rate', connections: 4, durationSeconds: 0.5, rate: 100, timeoutSeconds: 5, leadInSeconds: 0.5 });
    expect(failing.requests).toBe(50);
    expect(failing.errors).toBe(5);
    expect(failing.errorCodes).toEqual({ INTERNAL: 5 });
  });

  it('counts other statuses, answers that are not "answered" and refused connections as errors, with their codes', async () => {
    let n = 0;
    const { url } = await serve((_req, res) => {
      n++;
      if (n % 3 === 0) res.writeHead(503, { 'content-type': 'application/problem+json' }).end('{"code":"PROVIDER_UNREACHABLE"}');
      else if (n % 3 === 1) res.writeHead(200, { 'content-type': 'application/json' }).end('{"outcome":"refused"}');
      else answered(res);
    });
    const result = await runPacedPhase(fixture(url), ['{}'], { name: 'rate', connections: 4, durationSeconds: 0.5, rate: 60, timeoutSeconds: 5 });
    expect(result.requests).toBe(30);
    expect(result.errors).toBe(20);
    expect(result.notAnswered).toBe(10);
    expect(result.errorCodes).toEqual({ PROVIDER_UNREACHABLE: 10 });

    await new Promise<void>((resolve) => server!.close(() => resolve()));
    server = undefined;
    const gone = await runPacedPhase(fixture(url), ['{}'], { name: 'rate', connections: 2, durationSeconds: 0.2, rate: 50, timeoutSeconds: 2 });
    expect(gone.requests).toBe(10);
    expect(gone.errors).toBe(10);
    expect(gone.socketErrors).toBe(10);
  });

  it('takes percentiles by nearest rank', () => {
    const sorted = Float64Array.from([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    expect(quantile(sorted, 0.5)).toBe(5);
    expect(quantile(sorted, 0.99)).toBe(10);
    expect(quantile(sorted, 0.1)).toBe(1);
    expect(quantile([], 0.5)).toBe(0);
  });
});
