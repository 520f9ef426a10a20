import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CodeLocator, RedisCodeMapper, clusterRedisLike, createMapperRedisCluster, rebuildFrom } from '#mapper';
import { startRedisCluster, type RedisClusterUnderTest } from '../../../test/support/redis-cluster.js';
import { FakeProvider, MURORAN_CITY, PENSION, acquire, bearer, issuePerson, registerAgency, startLinkageHub, type Agency } from './support/linkage-fixture.js';
import { expectProblem } from './support/problem-assertions.js';
import type { TestHub } from './support/test-hub.js';

// The hub's code mapper on a real three-master Redis Cluster (HUB_REDIS_CLUSTER), started on loopback
// ports of its own by test/support/redis-cluster.ts and stopped in afterAll. What linkage-redis.int.spec.ts
// checks on one Redis: queries translated by Redis, the live projection equal to a rebuild, and a lost node.
let cluster: RedisClusterUnderTest;
const prefix = `llc-${process.pid}-${randomBytes(4).toString('hex')}`;
const provider = new FakeProvider();
let hub: TestHub;
let pension: Agency;
let muroran: Agency;
const codes: string[] = [];

async function query(code: string) {
  return hub.post('/v1/queries', { code, providerAgencyId: MURORAN_CITY, procedureCode: 'pension-award-claim', itemCodes: ['local-tax'] }, bearer(pension.token));
}

async function mode(): Promise<string> {
  return (await hub.get('/health/ready')).json<{ codeMapper: { mode: string } }>().codeMapper.mode;
}

async function until(check: () => Promise<boolean>, what: string): Promise<void> {
  const deadline = Date.now() + 30_000;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

beforeAll(async () => {
  cluster = await startRedisCluster();
  hub = await startLinkageHub({ env: { HUB_REDIS_URL: '', HUB_REDIS_CLUSTER: cluster.nodes.join(','), HUB_REDIS_PREFIX: prefix } });
  expect(hub.config.linkage).toMatchObject({ redisUrl: undefined, redisCluster: cluster.nodes });
  await provider.start(hub);
  pension = await registerAgency(hub, PENSION, 'pension-service', 'http://127.0.0.1:9');
  muroran = await registerAgency(hub, MURORAN_CITY, 'municipality', provider.endpoint);
  for (let i = 0; i < 12; i++) {
    const person = await issuePerson(hub);
    codes.push(await acquire(hub, pension, person.individualNumber));
    provider.behaviours.set(await acquire(hub, muroran, person.individualNumber), { answer: { 'local-tax': { n: i } } });
  }
}, 180_000);

afterAll(async () => {
  try {
    await provider.stop();
    await hub?.dispose();
  } finally {
    await cluster?.stop();
  }
});

describe('the code mapper on Redis Cluster (HUB_REDIS_CLUSTER)', () => {
  it('translates through the cluster: readiness says redis; answered, denied and bulk outcomes as on one Redis', async () => {
    await until(async () => (await mode()) === 'redis', 'the Redis Cluster mapper to open');
    for (const code of codes) expect((await query(code)).json()).toMatchObject({ outcome: 'answered' });
    expect(await mode()).toBe('redis');

    // Muroran's own code in the pension service's query: not the requester's (I7).
    const other = await issuePerson(hub);
    const muroranCode = await acquire(hub, muroran, other.individualNumber);
    const onlyPension = await acquire(hub, pension, (await issuePerson(hub)).individualNumber);
    expectProblem(await query(muroranCode), 403, 'CODE_NOT_ISSUED_TO_REQUESTER');
    expectProblem(await query(onlyPension), 403, 'NO_CODE_AT_PROVIDER');

    const bulk = await hub.post('/v1/queries/bulk', { codes: [...codes.slice(0, 4), muroranCode], providerAgencyId: MURORAN_CITY, procedureCode: 'pension-award-claim', itemCodes: ['local-tax'] }, bearer(pension.token));
    expect(bulk.statusCode, bulk.body).toBe(200);
    expect(bulk.json<{ results: { outcome: string; reason?: string }[] }>().results.map((r) => [r.outcome, r.reason ?? null])).toEqual([
      ...codes.slice(0, 4).map(() => ['answered', null]),
      ['denied', 'CODE_NOT_ISSUED_TO_REQUESTER'],
    ]);
    expect(await mode()).toBe('redis');
  });

  it('has a live cluster projection equal to one rebuilt from the log, spread over every master', async () => {
    const client = createMapperRedisCluster({ nodes: cluster.nodes });
    client.on('error', () => {});
    await client.connect();
    try {
      const redis = clusterRedisLike(client);
      const locator = hub.app.get(CodeLocator);
      const live = await RedisCodeMapper.open(redis, { prefix, locator });
      const head = await hub.store.head();
      await until(async () => (await live.checkpoint()) >= head - 1, 'the live projection to reach the head');
      const rebuilt = await RedisCodeMapper.open(redis, { prefix: `${prefix}-rebuilt`, locator });
      try {
        await rebuildFrom(hub.ledger, rebuilt);
        const entries = await rebuilt.entries();
        expect(entries.length).toBe(26);
        expect(await live.entries()).toEqual(entries);
        expect((await rebuilt.dump()).map(([k]) => k).filter((k) => k.startsWith(':c{'))).toEqual([]);
        expect((await live.dump()).filter(([k]) => k !== ':checkpoint')).toEqual((await rebuilt.dump()).filter(([k]) => k !== ':checkpoint'));
        // The hub's keyspace is on more than one master (its slot groups are hash slots).
        const perMaster: number[] = [];
        for (const node of await redis.masters!()) {
          const [, keys] = (await node.sendCommand(['SCAN', '0', 'MATCH', `${prefix}:s{*`, 'COUNT', '100000'])) as [string, string[]];
          perMaster.push(keys.length);
        }
        expect(perMaster.filter((n) => n > 0).length).toBeGreaterThan(1);
      } finally {
        await rebuilt.drop();
      }
    } finally {
      await client.close();
    }
  });

  // Last: the cluster is not whole again afterwards (its masters have no replicas).
  it('keeps answering queries when a master is killed mid-run, from the store, and says degraded', async () => {
    expect(await mode()).toBe('redis');
    await cluster.kill(cluster.ports[0]!);
    for (const code of codes) expect((await query(code)).json()).toMatchObject({ outcome: 'answered' });
    expect(await mode()).toBe('degraded');
    // A code acquired during the outage is translated too (the store has it).
    const late = await issuePerson(hub);
    const lateCode = await acquire(hub, pension, late.individualNumber);
    provider.behaviours.set(await acquire(hub, muroran, late.individualNumber), { answer: { 'local-tax': { n: 'late' } } });
    expect((await query(lateCode)).json()).toMatchObject({ outcome: 'answered' });
    expect(await mode()).toBe('degraded');
  });
});
