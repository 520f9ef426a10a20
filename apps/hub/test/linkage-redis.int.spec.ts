import { randomBytes } from 'node:crypto';
import { createServer } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CodeLocator, RedisCodeMapper, createMapperRedisClient, rebuildFrom } from '#mapper';
import { FakeProvider, MURORAN_CITY, PENSION, acquire, issuePerson, mapperMode, queryLocalTax, registerAgency, startLinkageHub, until as waitUntil, type Agency } from './support/linkage-fixture.js';
import { RedisProxy } from '../../../libs/mapper/test/redis-proxy.js';
import type { TestHub } from './support/test-hub.js';

const proxy = new RedisProxy();
const prefix = `llr-${process.pid}-${randomBytes(4).toString('hex')}`;
const provider = new FakeProvider();
let hub: TestHub;
let pension: Agency;
let muroran: Agency;
const codes: string[] = [];

const query = (code: string) => queryLocalTax(hub, pension, code);
const mode = () => mapperMode(hub);
const until = (check: () => Promise<boolean>, what: string) => waitUntil(check, what, 20_000);

beforeAll(async () => {
  await proxy.start();
  hub = await startLinkageHub({ env: { HUB_REDIS_URL: `redis://127.0.0.1:${proxy.port}`, HUB_REDIS_PREFIX: prefix, HUB_REDIS_TIMEOUT_MS: '15000', HUB_REDIS_SLOW_MS: '150' } });
  await provider.start(hub);
  pension = await registerAgency(hub, PENSION, 'pension-service', 'http://127.0.0.1:9');
  muroran = await registerAgency(hub, MURORAN_CITY, 'municipality', provider.endpoint);
  for (let i = 0; i < 5; i++) {
    const person = await issuePerson(hub);
    codes.push(await acquire(hub, pension, person.individualNumber));
    provider.behaviours.set(await acquire(hub, muroran, person.individualNumber), { answer: { 'local-tax': { n: i } } });
  }
});

afterAll(async () => {
  await provider.stop();
  await hub?.dispose();
  const client = createMapperRedisClient({ url: 'redis://127.0.0.1:6379' });
  await client.connect();
  await (await RedisCodeMapper.open(client, { prefix, onLayoutMismatch: 'reset' })).drop();
  await (await RedisCodeMapper.open(client, { prefix: `${prefix}-late`, onLayoutMismatch: 'reset' })).drop();
  await client.close();
});

describe('Redis is a projection the hub can lose (README, Architecture, I8)', () => {
  it('keeps answering queries while Redis is unreachable, says so in readiness, and recovers', async () => {
    await until(async () => (await mode()) === 'redis', 'the Redis mapper to open');
    expect((await query(codes[0]!)).json()).toMatchObject({ outcome: 'answered' });

    await proxy.stop();
    for (const code of codes) expect((await query(code)).json()).toMatchObject({ outcome: 'answered' });
    expect(await mode()).toBe('degraded');
    // A code acquired during the outage is translated too (the store has it).
    const late = await issuePerson(hub);
    const lateCode = await acquire(hub, pension, late.individualNumber);
    provider.behaviours.set(await acquire(hub, muroran, late.individualNumber), { answer: { 'local-tax': { n: 'late' } } });
    expect((await query(lateCode)).json()).toMatchObject({ outcome: 'answered' });

    await proxy.start();
    await until(async () => {
      await query(codes[1]!);
      return (await mode()) === 'redis';
    }, 'Redis to answer again');
    expect((await query(lateCode)).json()).toMatchObject({ outcome: 'answered' });
  });

  it('a stalled Redis (connections open, no answer) trips the breaker after HUB_REDIS_SLOW_MS, not HUB_REDIS_TIMEOUT_MS, and the hub returns to Redis once it answers', async () => {
    await until(async () => (await mode()) === 'redis', 'the Redis mapper');
    proxy.stall();
    try {
      const started = Date.now();
      expect((await query(codes[2]!)).json()).toMatchObject({ outcome: 'answered' });
      // The 15 s timeout was not waited out: the slow-call bound (150 ms) opened the breaker.
      expect(Date.now() - started).toBeLessThan(7_500);
      const ready = (await hub.get('/health/ready')).json<{ codeMapper: { mode: string; reason?: string } }>();
      expect(ready.codeMapper).toMatchObject({ mode: 'degraded', reason: 'no answer within 150 ms (stalled)' });
      for (const code of codes) expect((await query(code)).json()).toMatchObject({ outcome: 'answered' });
    } finally {
      proxy.resume();
    }
    await until(async () => {
      await query(codes[3]!);
      return (await mode()) === 'redis';
    }, 'Redis to answer again');
  });

  it('has a live Redis projection equal to one rebuilt from the log', async () => {
    const client = createMapperRedisClient({ url: 'redis://127.0.0.1:6379' });
    await client.connect();
    try {
      // The hub's code key: its codes carry sealed locators, and its keyspace's meta names the key.
      const locator = hub.app.get(CodeLocator);
      const live = await RedisCodeMapper.open(client, { prefix, locator });
      const head = await hub.store.head();
      await until(async () => (await live.checkpoint()) >= head - 1, 'the live projection to reach the head');
      const rebuilt = await RedisCodeMapper.open(client, { prefix: `${prefix}-rebuilt`, locator });
      try {
        // Rebuilt from the log and the hub's keys (the codes are sealed in the log, I10).
        await rebuildFrom(hub.ledger, rebuilt);
        const entries = await rebuilt.entries();
        expect(entries.length).toBe(12);
        expect(await live.entries()).toEqual(entries);
        // Every code was minted by the hub: none needs a code bucket, live or rebuilt.
        expect((await rebuilt.dump()).map(([k]) => k).filter((k) => k.startsWith(':c{'))).toEqual([]);
        expect((await live.dump()).filter(([k]) => k !== ':checkpoint')).toEqual((await rebuilt.dump()).filter(([k]) => k !== ':checkpoint'));
      } finally {
        await rebuilt.drop();
      }
    } finally {
      await client.close();
    }
  });
});

describe('readiness tells the truth from the start (circuit breaker)', () => {
  it('a hub started while Redis is unreachable reports degraded (breaker open) before any query, and redis once Redis appears', async () => {
    const spare = createServer();
    await new Promise<void>((r) => spare.listen(0, '127.0.0.1', r));
    const port = (spare.address() as { port: number }).port;
    await new Promise<void>((r) => spare.close(() => r()));
    const late = new RedisProxy();
    const other = await startLinkageHub({ env: { HUB_REDIS_URL: `redis://127.0.0.1:${port}`, HUB_REDIS_PREFIX: `${prefix}-late`, HUB_REDIS_COOLDOWN_MS: '200' } });
    try {
      const health = async () => (await other.get('/health/ready')).json<{ codeMapper: { mode: string; breaker?: string; reason?: string } }>().codeMapper;
      expect(await health()).toMatchObject({ mode: 'degraded', breaker: 'open', reason: expect.stringMatching(/not open yet/) });
      await new Promise((r) => setTimeout(r, 300));
      expect((await health()).mode).toBe('degraded');
      await late.start(port);
      const deadline = Date.now() + 20_000;
      while ((await health()).mode !== 'redis') {
        if (Date.now() > deadline) throw new Error('timed out waiting for the hub to turn to Redis');
        await new Promise((r) => setTimeout(r, 50));
      }
      expect(await health()).toMatchObject({ mode: 'redis', breaker: 'closed' });
    } finally {
      await other.dispose();
      await late.stop();
    }
  });
});
