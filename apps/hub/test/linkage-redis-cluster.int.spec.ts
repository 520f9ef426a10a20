import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CodeLocator, DEFAULT_LAYOUT, RedisCodeMapper, RedisLayout, clusterRedisLike, createMapperRedisCluster, rebuildFrom } from '#mapper';
import { freePorts } from '../../../test/support/free-ports.js';
import { startRedisCluster, type RedisClusterUnderTest } from '../../../test/support/redis-cluster.js';
import { FakeProvider, MURORAN_CITY, PENSION, acquire, bearer, issuePerson, mapperMode, queryLocalTax, registerAgency, startLinkageHub, until, type Agency } from './support/linkage-fixture.js';
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

const query = (code: string) => queryLocalTax(hub, pension, code);
const mode = () => mapperMode(hub);

/** The port of the master that holds the subject bucket a code of the hub names (its translation reads it). */
async function masterHolding(code: string): Promise<number> {
  const layout = new RedisLayout({ ...DEFAULT_LAYOUT, prefix });
  const tag = hub.app.get(CodeLocator).open(Buffer.from(code, 'base64url')).subarray(0, layout.tagBytes);
  const key = layout.bucketKey('s', layout.subjectBucketAt(tag, 0));
  const client = createMapperRedisCluster({ nodes: cluster.nodes });
  client.on('error', () => {});
  await client.connect();
  try {
    for (const master of client.masters) {
      // Another master's slot answers MOVED.
      const held = await (await client.nodeClient(master)).sendCommand(['EXISTS', key]).catch(() => 0);
      if (Number(held) === 1) return master.port;
    }
    throw new Error(`no master holds ${key}`);
  } finally {
    await client.close();
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

  it('keeps answering queries when a master is killed mid-run, from the store, says degraded, and returns to the cluster when the master is back', async () => {
    expect(await mode()).toBe('redis');
    // The master that holds codes[0]'s bucket: its translation cannot come from Redis once it is gone.
    const victim = await masterHolding(codes[0]!);
    // Queries in flight, one after another, while the master dies.
    let running = true;
    const outcomes: unknown[] = [];
    const load = (async () => {
      for (let i = 0; running; i++) outcomes.push((await query(codes[i % codes.length]!)).json<{ outcome: string }>().outcome);
    })();
    await new Promise((r) => setTimeout(r, 300));
    await cluster.kill(victim);
    await new Promise((r) => setTimeout(r, 700));
    running = false;
    await load;
    expect(outcomes.length).toBeGreaterThan(codes.length);
    expect(outcomes.filter((o) => o !== 'answered')).toEqual([]);
    for (const code of codes) expect((await query(code)).json()).toMatchObject({ outcome: 'answered' });
    // Readiness tells what the last translation met: one on a live master's slots may find Redis answering,
    // one on the lost master's slots (codes[0]) cannot.
    expect((await query(codes[0]!)).json()).toMatchObject({ outcome: 'answered' });
    expect(await mode()).toBe('degraded');
    // A code acquired during the outage is translated too (the store has it).
    const late = await issuePerson(hub);
    const lateCode = await acquire(hub, pension, late.individualNumber);
    provider.behaviours.set(await acquire(hub, muroran, late.individualNumber), { answer: { 'local-tax': { n: 'late' } } });
    expect((await query(lateCode)).json()).toMatchObject({ outcome: 'answered' });
    expect((await query(codes[0]!)).json()).toMatchObject({ outcome: 'answered' });
    expect(await mode()).toBe('degraded');

    // The master comes back with its slots but without its data (no persistence): the hub returns to
    // Redis, and what the lost buckets held is confirmed from the store (every miss is), so every query
    // is still answered.
    await cluster.restart(victim);
    await until(async () => {
      expect((await query(codes[1]!)).json()).toMatchObject({ outcome: 'answered' });
      return (await mode()) === 'redis';
    }, 'the hub to translate through the cluster again');
    for (const code of [...codes, lateCode]) expect((await query(code)).json()).toMatchObject({ outcome: 'answered' });
    expect(await mode()).toBe('redis');
  });
});

describe('a Redis Cluster that does not answer at start', () => {
  it('is retried in the background: the store answers meanwhile (readiness degraded), the hub turns to the cluster once it is up, and stops promptly', async () => {
    const ports = await freePorts(3); // nobody listens there yet
    let late: RedisClusterUnderTest | undefined;
    const down = await startLinkageHub({ env: { HUB_REDIS_URL: '', HUB_REDIS_CLUSTER: ports.map((p) => `127.0.0.1:${p}`).join(','), HUB_REDIS_PREFIX: `${prefix}-down` } });
    const node = new FakeProvider();
    try {
      await node.start(down);
      const jps = await registerAgency(down, PENSION, 'pension-service', 'http://127.0.0.1:9');
      const city = await registerAgency(down, MURORAN_CITY, 'municipality', node.endpoint);
      const person = await issuePerson(down);
      const code = await acquire(down, jps, person.individualNumber);
      node.behaviours.set(await acquire(down, city, person.individualNumber), { answer: { 'local-tax': { n: 0 } } });
      const res = await down.post('/v1/queries', { code, providerAgencyId: MURORAN_CITY, procedureCode: 'pension-award-claim', itemCodes: ['local-tax'] }, bearer(jps.token));
      expect(res.json()).toMatchObject({ outcome: 'answered' });
      const modeOf = async (): Promise<string> => (await down.get('/health/ready')).json<{ codeMapper: { mode: string } }>().codeMapper.mode;
      expect(await modeOf()).toBe('degraded');

      late = await startRedisCluster({ ports });
      await until(async () => {
        expect((await down.post('/v1/queries', { code, providerAgencyId: MURORAN_CITY, procedureCode: 'pension-award-claim', itemCodes: ['local-tax'] }, bearer(jps.token))).json()).toMatchObject({ outcome: 'answered' });
        return (await modeOf()) === 'redis';
      }, 'the hub to connect to the cluster started late');
    } finally {
      await node.stop();
      const stopping = Date.now();
      await down.dispose();
      expect(Date.now() - stopping).toBeLessThan(5_000);
      await late?.stop();
    }
  });
});
