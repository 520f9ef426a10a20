import { randomBytes } from 'node:crypto';
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createClient } from 'redis';
import { startTestHub, type TestHub } from './support/test-hub.js';

// The rate limiter's mode in readiness and /metrics (docs/rate-limits.md): whether the budgets are shared
// in Redis or this hub's own (by configuration, or as the fallback while Redis does not answer), and how
// often decisions fell back to local budgets. Redis is reached through a TCP relay this test cuts and
// restores, so the hub sees Redis go away and come back.

const REDIS_DB = 12;
const tag = `${process.pid}-${randomBytes(3).toString('hex')}`;
const RATE_PREFIX = `ll-rate-ready-${tag}`;
const MAPPER_PREFIX = `llt-ready-${tag}`;

interface RateLimitsReady {
  mode: string;
  shared: boolean;
  fallbacks: number;
  since?: string;
  reason?: string;
}

async function ready(hub: TestHub): Promise<RateLimitsReady> {
  const res = await hub.get('/health/ready');
  expect(res.statusCode, res.body).toBe(200);
  return res.json<{ rateLimits: RateLimitsReady }>().rateLimits;
}

/** The rate-limit samples of /metrics: the mode gauge per mode, and the two counters. */
async function scraped(hub: TestHub): Promise<{ mode: Record<string, number>; fallbacks: number; decisions: number }> {
  const res = await hub.get('/metrics');
  expect(res.statusCode).toBe(200);
  const mode: Record<string, number> = {};
  let fallbacks = Number.NaN;
  let decisions = Number.NaN;
  for (const line of res.body.split('\n')) {
    const m = /^linkage_rate_limit_mode\{mode="([a-z]+)"\} (\S+)$/.exec(line);
    if (m !== null) mode[m[1]!] = Number(m[2]);
    if (line.startsWith('linkage_rate_limit_fallbacks_total ')) fallbacks = Number(line.split(' ')[1]);
    if (line.startsWith('linkage_rate_limit_fallback_decisions_total ')) decisions = Number(line.split(' ')[1]);
  }
  expect(res.body).toContain('# TYPE linkage_rate_limit_fallbacks_total counter');
  return { mode, fallbacks, decisions };
}

const read = (hub: TestHub, n: number, from = '192.0.2.61') => Promise.all(Array.from({ length: n }, () => hub.inject({ method: 'GET', url: '/v1/audit/verifier-key', remoteAddress: from })));

/** A TCP relay to the real Redis that can be cut (every connection closed, the port refusing) and restored on the same port. */
class Relay {
  #server: Server | undefined;
  readonly #sockets = new Set<Socket>();
  port = 0;

  async open(): Promise<void> {
    this.#server = createServer((client) => {
      const upstream = createConnection(6379, '127.0.0.1');
      for (const s of [client, upstream]) {
        this.#sockets.add(s);
        s.on('close', () => this.#sockets.delete(s));
        s.on('error', () => {});
      }
      client.pipe(upstream).pipe(client);
      client.on('close', () => upstream.destroy());
      upstream.on('close', () => client.destroy());
    });
    await new Promise<void>((resolve) => this.#server!.listen(this.port, '127.0.0.1', resolve));
    this.port = (this.#server.address() as { port: number }).port;
  }

  async cut(): Promise<void> {
    for (const s of this.#sockets) s.destroy();
    await new Promise<void>((resolve) => (this.#server ? this.#server.close(() => resolve()) : resolve()));
    this.#server = undefined;
  }
}

describe('readiness and /metrics say where the rate limits are decided', () => {
  it('without Redis: local, not shared, no fallback; limits off: off', async () => {
    const local = await startTestHub({ env: { HUB_REDIS_URL: 'off' } });
    try {
      await read(local, 3);
      expect(await ready(local)).toEqual({ mode: 'local', shared: false, fallbacks: 0 });
      expect(await scraped(local)).toEqual({ mode: { redis: 0, degraded: 0, local: 1, off: 0 }, fallbacks: 0, decisions: 0 });
    } finally {
      await local.dispose();
    }
    const off = await startTestHub({ env: { HUB_REDIS_URL: 'off', HUB_RATE_LIMIT_AGENCY_PER_S: '0', HUB_RATE_LIMIT_CITIZEN_PER_S: '0', HUB_RATE_LIMIT_SOURCE_PER_S: '0' } });
    try {
      expect(await ready(off)).toEqual({ mode: 'off', shared: false, fallbacks: 0 });
      expect((await scraped(off)).mode).toEqual({ redis: 0, degraded: 0, local: 0, off: 1 });
    } finally {
      await off.dispose();
    }
  });

  describe('with Redis that goes away and comes back', () => {
    const relay = new Relay();
    let hub: TestHub;
    beforeAll(async () => {
      await relay.open();
      hub = await startTestHub({
        // A timeout no answer of a loaded machine's Redis misses, so that only the cut turns decisions local.
        env: { HUB_REDIS_URL: `redis://127.0.0.1:${relay.port}/${REDIS_DB}`, HUB_REDIS_PREFIX: MAPPER_PREFIX, HUB_RATE_LIMIT_REDIS_PREFIX: RATE_PREFIX, HUB_RATE_LIMIT_REDIS_TIMEOUT_MS: '2000' },
      });
      for (const deadline = Date.now() + 10_000; (await ready(hub)).mode !== 'redis'; ) {
        if (Date.now() > deadline) throw new Error('the rate limiter did not connect to Redis');
        await new Promise((r) => setTimeout(r, 50));
      }
    });
    afterAll(async () => {
      await hub?.dispose();
      await relay.cut();
      const client = createClient({ url: `redis://127.0.0.1:6379/${REDIS_DB}` });
      await client.connect();
      for (const prefix of [RATE_PREFIX, MAPPER_PREFIX]) {
        for await (const keys of client.scanIterator({ MATCH: `${prefix}*`, COUNT: 1000 })) if (keys.length > 0) await client.del(keys);
      }
      await client.close();
    });

    it('shared while Redis answers; local as the fallback while it does not (counted once per outage, each local decision counted); shared again after', async () => {
      await read(hub, 3);
      expect(await ready(hub)).toEqual({ mode: 'redis', shared: true, fallbacks: 0 });
      expect(await scraped(hub)).toEqual({ mode: { redis: 1, degraded: 0, local: 0, off: 0 }, fallbacks: 0, decisions: 0 });

      await relay.cut();
      const during = await read(hub, 6);
      // Nobody is refused because Redis is gone: the generous default budget, now this hub's own.
      expect(during.map((r) => r.statusCode)).toEqual([200, 200, 200, 200, 200, 200]);
      await read(hub, 4);
      const degraded = await ready(hub);
      expect(degraded).toMatchObject({ mode: 'degraded', shared: false, fallbacks: 1, since: expect.stringMatching(/^\d{4}-/), reason: expect.any(String) });
      const m = await scraped(hub);
      expect(m.mode).toEqual({ redis: 0, degraded: 1, local: 0, off: 0 });
      expect(m.fallbacks).toBe(1);
      expect(m.decisions).toBe(10);

      // Redis back on the same port: after the rest, a decision asks it again and it answers.
      await relay.open();
      const deadline = Date.now() + 20_000;
      while ((await ready(hub)).mode !== 'redis') {
        if (Date.now() > deadline) throw new Error(`Redis did not come back: ${JSON.stringify(await ready(hub))}`);
        await read(hub, 1);
        await new Promise((r) => setTimeout(r, 200));
      }
      expect(await ready(hub)).toEqual({ mode: 'redis', shared: true, fallbacks: 1 });
      const back = await scraped(hub);
      expect(back.mode).toEqual({ redis: 1, degraded: 0, local: 0, off: 0 });
      expect(back.fallbacks).toBe(1);
      expect(back.decisions).toBeGreaterThanOrEqual(10);
      const settled = back.decisions;
      await read(hub, 3);
      expect((await scraped(hub)).decisions).toBe(settled);
    }, 60_000);
  });
});
