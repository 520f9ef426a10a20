import { randomBytes } from 'node:crypto';
import { createServer } from 'node:net';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { InMemoryEventStore } from '#ledger';
import { FallbackCodeMapper, PendingCodeMapper, RedisCodeMapper, StoreCodeMapper, catchUp, createMapperRedisClient, type MapperHealth } from '#mapper';
import { MURORAN, PENSION, acquireInStore, population } from './fixtures.js';
import { RedisProxy } from './redis-proxy.js';


const proxy = new RedisProxy();
const PREFIX = `lmt-${process.pid}-${randomBytes(3).toString('hex')}-fallback`;
const direct = createMapperRedisClient({ url: 'redis://127.0.0.1:6379' });

beforeAll(async () => {
  await proxy.start();
  await direct.connect();
});
afterAll(async () => {
  const cleaner = await RedisCodeMapper.open(direct, { prefix: PREFIX, codeBucketBits: 8, subjectBucketBits: 8, slotGroupBits: 2 });
  await cleaner.drop();
  await direct.close();
});

describe('Redis stopped mid-run: the fallback keeps answering from the store (README, Architecture)', () => {
  test('batches succeed before, during and after the outage; health reports degraded, then primary again', async () => {
    const store = new InMemoryEventStore();
    const people = population(200, [PENSION, MURORAN]);
    await acquireInStore(store, people);
    const client = createMapperRedisClient({ url: `redis://127.0.0.1:${proxy.port}`, maxReconnectDelayMs: 100 });
    client.on('error', () => {}); // reconnection errors are expected while the proxy is down
    await client.connect();
    const redis = await RedisCodeMapper.open(client, { prefix: PREFIX, codeBucketBits: 8, subjectBucketBits: 8, slotGroupBits: 2, operationTimeoutMs: 1000 });
    await catchUp(store, redis);
    const changes: MapperHealth[] = [];
    const mapper = new FallbackCodeMapper(redis, new StoreCodeMapper(store), { retryAfterMs: 50, onChange: (h) => changes.push(h) });

    const pension = people.filter((p) => p.agencyId === PENSION);
    const muroranOf = new Map(people.filter((p) => p.agencyId === MURORAN).map((p) => [p.subjectId, p.code]));
    const check = async (): Promise<void> => {
      const got = await mapper.translateMany(PENSION, pension.map((p) => p.code), MURORAN);
      expect(got.map((t) => (t.status === 'translated' ? t.code : t.status))).toEqual(pension.map((p) => muroranOf.get(p.subjectId)));
    };

    await check();
    expect(mapper.health().mode).toBe('primary');

    await proxy.stop();
    for (let i = 0; i < 5; i++) await check();
    expect(mapper.health()).toMatchObject({ mode: 'degraded', degraded: true });
    expect(mapper.health().reason).toMatch(/Redis mapper translate (failed|did not finish)/);

    await proxy.start();
    let recovered = false;
    for (let i = 0; i < 100 && !recovered; i++) {
      await new Promise((r) => setTimeout(r, 60));
      await check();
      recovered = mapper.health().mode === 'primary';
    }
    expect(recovered).toBe(true);
    expect(changes.map((c) => c.mode)).toEqual(['degraded', 'primary']);
    await client.close();
    await store.close();
  });

  test('Redis unreachable at boot: the store answers until Redis appears, then Redis does', async () => {
    const store = new InMemoryEventStore();
    const people = population(3, [PENSION, MURORAN]);
    await acquireInStore(store, people);
    const late = new RedisProxy();
    const probe = createServer();
    await new Promise<void>((r) => probe.listen(0, '127.0.0.1', r));
    const port = (probe.address() as { port: number }).port;
    await new Promise<void>((r) => probe.close(() => r()));

    const client = createMapperRedisClient({ url: `redis://127.0.0.1:${port}`, maxReconnectDelayMs: 50 });
    client.on('error', () => {});
    const opening = client.connect().then(async () => {
      const redis = await RedisCodeMapper.open(client, { prefix: PREFIX, codeBucketBits: 8, subjectBucketBits: 8, slotGroupBits: 2 });
      await redis.reset();
      await catchUp(store, redis);
      return redis;
    });
    const primary = new PendingCodeMapper(opening);
    const mapper = new FallbackCodeMapper(primary, new StoreCodeMapper(store), { retryAfterMs: 20 });
    const expected = { status: 'translated', subjectId: people[0]!.subjectId, code: people[1]!.code };

    expect(await mapper.translate(PENSION, people[0]!.code, MURORAN)).toEqual(expected);
    expect(mapper.health()).toMatchObject({ mode: 'degraded', reason: expect.stringMatching(/not open yet/) });

    await late.start(port);
    await opening;
    expect(primary.ready).toBe(true);
    await new Promise((r) => setTimeout(r, 25));
    // After the cool-down a call probes Redis in the background (the store answers it); Redis answers, so the breaker closes.
    expect(await mapper.translate(PENSION, people[0]!.code, MURORAN)).toEqual(expected);
    for (let i = 0; i < 100 && mapper.health().mode !== 'primary'; i++) await new Promise((r) => setTimeout(r, 10));
    expect(mapper.health().mode).toBe('primary');
    expect(await mapper.translate(PENSION, people[0]!.code, MURORAN)).toEqual(expected);
    await client.close();
    await late.stop();
    await store.close();
  });

  test('a stalled Redis (connections open, no answers) trips the breaker once: the rest answer from the store without waiting, then Redis again once it answers', async () => {
    const store = new InMemoryEventStore();
    const people = population(50, [PENSION, MURORAN]);
    await acquireInStore(store, people);
    const stalling = new RedisProxy();
    await stalling.start();
    const client = createMapperRedisClient({ url: `redis://127.0.0.1:${stalling.port}`, maxReconnectDelayMs: 100 });
    client.on('error', () => {});
    await client.connect();
    const TIMEOUT = 400;
    const redis = await RedisCodeMapper.open(client, { prefix: PREFIX, codeBucketBits: 8, subjectBucketBits: 8, slotGroupBits: 2, operationTimeoutMs: TIMEOUT });
    await catchUp(store, redis);
    const changes: string[] = [];
    const COOL_DOWN = 1500;
    const mapper = new FallbackCodeMapper(redis, new StoreCodeMapper(store), { retryAfterMs: COOL_DOWN, onChange: (h) => changes.push(`${h.mode}/${h.breaker}`) });
    const pension = people.filter((p) => p.agencyId === PENSION);
    const timed = async (i: number): Promise<number> => {
      const p = pension[i % pension.length]!;
      const t0 = performance.now();
      expect(await mapper.translate(PENSION, p.code, MURORAN)).toMatchObject({ status: 'translated', subjectId: p.subjectId });
      return performance.now() - t0;
    };

    for (let i = 0; i < 10; i++) await timed(i);
    expect(mapper.health()).toMatchObject({ mode: 'primary', breaker: 'closed' });

    stalling.stall();
    const latencies: number[] = [];
    for (let i = 0; i < 40; i++) latencies.push(await timed(i));
    // A burst of concurrent queries on the open breaker: none waits either.
    const t0 = performance.now();
    await Promise.all(pension.map((_, i) => timed(i)));
    const burst = performance.now() - t0;
    const waited = latencies.filter((ms) => ms >= TIMEOUT * 0.9);
    expect(waited).toHaveLength(1); // the tripping query
    expect(latencies[0]!).toBeGreaterThanOrEqual(TIMEOUT * 0.9);
    expect(latencies.slice(1).every((ms) => ms < TIMEOUT / 2)).toBe(true);
    expect(burst).toBeLessThan(TIMEOUT / 2);
    expect(mapper.health()).toMatchObject({ mode: 'degraded', breaker: 'open', reason: expect.stringMatching(/did not finish within/) });

    // Still stalled after the cool-down: one query of a concurrent burst also probes Redis, in the
    // background, and none waits for it; the probe's failure opens the breaker for another cool-down.
    await new Promise((r) => setTimeout(r, COOL_DOWN));
    const probing = await Promise.all(pension.map((_, i) => timed(i)));
    expect(probing.filter((ms) => ms >= TIMEOUT / 2)).toHaveLength(0);
    expect(mapper.health()).toMatchObject({ mode: 'degraded', breaker: 'half-open' });
    await new Promise((r) => setTimeout(r, TIMEOUT * 1.5));
    expect(mapper.health()).toMatchObject({ mode: 'degraded', breaker: 'open' });

    // Redis answers again: after the cool-down one probe closes the breaker.
    stalling.resume();
    let recovered = false;
    for (let i = 0; i < 100 && !recovered; i++) {
      await new Promise((r) => setTimeout(r, 100));
      await timed(i);
      recovered = mapper.health().mode === 'primary';
    }
    expect(recovered).toBe(true);
    expect(mapper.health().breaker).toBe('closed');
    expect(changes).toEqual(['degraded/open', 'primary/closed']);
    await client.close();
    await stalling.stop();
    await store.close();
  });
});
