import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createClient } from 'redis';
import { createMapperRedisClient, createMapperRedisCluster } from '#mapper';
import { RateLimits } from '../src/rate-limits/rate-limits.service.js';
import { RedisRateLimiter } from '../src/rate-limits/redis-rate-limiter.js';
import { startRedisCluster, type RedisClusterUnderTest } from '../../../test/support/redis-cluster.js';
import { startTestHub, type TestHub } from './support/test-hub.js';

/** The Redis limiter (one Lua script per decision): atomic under concurrency, on one Redis and on a Redis Cluster. */

const REDIS_URL = 'redis://127.0.0.1:6379/11';
const PREFIX = `rl-int-${process.pid}-${randomBytes(4).toString('hex')}`;
const slow = { perSecond: 0.01, burst: 20 };

describe('on one Redis (db 11, a prefix of this run)', () => {
  const client = createMapperRedisClient({ url: REDIS_URL });
  const limiter = new RedisRateLimiter((_key, args) => client.sendCommand([...args]), PREFIX);
  beforeAll(async () => {
    await client.connect();
  });
  afterAll(async () => {
    for await (const keys of client.scanIterator({ MATCH: `${PREFIX}*`, COUNT: 1000 })) if (keys.length > 0) await client.del(keys);
    await client.close();
  });

  it('200 concurrent requests of one principal: exactly its burst of 20 pass, the others are told when to retry', async () => {
    const decisions = await Promise.all(Array.from({ length: 200 }, () => limiter.take('agency:jpn-pension-service', slow)));
    expect(decisions.filter((d) => d.allowed)).toHaveLength(20);
    for (const d of decisions.filter((d) => !d.allowed)) expect(d.retryAfterMs).toBeGreaterThan(90_000);
    // Another principal has its own budget.
    expect((await limiter.take('agency:muroran-city', slow)).allowed).toBe(true);
  });

  it('keys are digests under the prefix with a hash tag (no subject id or address in Redis), and expire', async () => {
    await limiter.take('citizen:subject-0123456789', { perSecond: 10, burst: 5 });
    const keys: string[] = [];
    for await (const batch of client.scanIterator({ MATCH: `${PREFIX}:{citizen:*`, COUNT: 1000 })) keys.push(...batch);
    expect(keys).toHaveLength(1);
    expect(keys[0]).toMatch(new RegExp(`^${PREFIX}:\\{citizen:[A-Za-z0-9_-]{22}\\}$`));
    expect(keys[0]).not.toContain('subject-0123456789');
    const ttl = await client.pTTL(keys[0]!);
    expect(ttl).toBeGreaterThan(0);
    expect(ttl).toBeLessThanOrEqual(101);
  });

  it('a Redis that forgot the script (SCRIPT FLUSH, a restart) is sent it again', async () => {
    expect((await limiter.take('source:192.0.2.1', slow)).allowed).toBe(true);
    const admin = createClient({ url: REDIS_URL });
    await admin.connect();
    await admin.scriptFlush();
    await admin.close();
    expect((await limiter.take('source:192.0.2.1', slow)).allowed).toBe(true);
  });
});

describe('on a Redis Cluster of three masters', () => {
  let cluster: RedisClusterUnderTest;
  let client: ReturnType<typeof createMapperRedisCluster>;
  let hub: TestHub | undefined;
  beforeAll(async () => {
    cluster = await startRedisCluster();
    client = createMapperRedisCluster({ nodes: cluster.nodes });
    await client.connect();
  }, 60_000);
  afterAll(async () => {
    await hub?.dispose();
    await client?.close().catch(() => {});
    await cluster?.stop();
  });

  it('principals spread over the masters, each with exactly its burst under concurrency', async () => {
    const limiter = new RedisRateLimiter((key, args) => client.sendCommand(key, false, [...args]), PREFIX);
    const principals = Array.from({ length: 30 }, (_, i) => `source:198.51.100.${i}`);
    const decisions = await Promise.all(principals.flatMap((p) => Array.from({ length: 8 }, async () => ({ p, d: await limiter.take(p, { perSecond: 0.01, burst: 5 }) }))));
    for (const p of principals) expect(decisions.filter((x) => x.p === p && x.d.allowed), p).toHaveLength(5);
    const perMaster = await Promise.all(client.masters.map(async (m) => (await client.nodeClient(m)).dbSize()));
    expect(perMaster.filter((n) => n > 0).length).toBeGreaterThan(1);
  });

  it('a hub on the cluster (HUB_REDIS_CLUSTER) limits through it', async () => {
    hub = await startTestHub({ env: { HUB_REDIS_URL: '', HUB_REDIS_CLUSTER: cluster.nodes.join(','), HUB_RATE_LIMIT_REDIS_PREFIX: `${PREFIX}-hub`, HUB_RATE_LIMIT_SOURCE_PER_S: '0.01', HUB_RATE_LIMIT_SOURCE_BURST: '2' } });
    const codes = [];
    for (let i = 0; i < 3; i++) codes.push((await hub.inject({ method: 'GET', url: '/v1/audit/verifier-key', remoteAddress: '192.0.2.77' })).statusCode);
    expect(codes).toEqual([200, 200, 429]);
    expect(hub.app.get(RateLimits).health()).toEqual({ mode: 'redis' });
  });
});
