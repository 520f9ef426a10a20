import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { InMemoryEventStore } from '#ledger';
import {
  CodeLocator,
  FallbackCodeMapper,
  RedisCodeMapper,
  StoreCodeMapper,
  catchUp,
  clusterRedisLike,
  createMapperRedisCluster,
  follow,
  hashTagOf,
  newCodeKey,
  rebuildFrom,
  type RedisCodeMapperOptions,
  type RedisLike,
} from '#mapper';
import { startRedisCluster, type RedisClusterUnderTest } from '../../../test/support/redis-cluster.js';
import { codeMapperContract } from './code-mapper.contract.js';
import { MURORAN, PENSION, acquireInStore, asEvents, population } from './fixtures.js';

// A real three-master Redis Cluster on loopback ports of its own, started here and stopped in afterAll
// (test/support/redis-cluster.ts). The mapper talks to it through node-redis' cluster client.
let cluster: RedisClusterUnderTest;
let client: ReturnType<typeof createMapperRedisCluster>;
let redis: RedisLike;
let killed = false;
const RUN = `lmc-${process.pid}-${randomBytes(3).toString('hex')}`;
let counter = 0;
const prefix = (): string => `${RUN}-${counter++}`;
const SMALL: RedisCodeMapperOptions = { codeBucketBits: 8, subjectBucketBits: 8, slotGroupBits: 3 };

async function open(options: RedisCodeMapperOptions = {}): Promise<RedisCodeMapper> {
  return RedisCodeMapper.open(redis, { ...SMALL, prefix: prefix(), ...options });
}

/** Every key of this run, per master. */
async function keysPerMaster(pattern = `${RUN}-*`): Promise<string[][]> {
  const out: string[][] = [];
  for (const node of await redis.masters!()) {
    const keys: string[] = [];
    let cursor = '0';
    do {
      const [next, batch] = (await node.sendCommand(['SCAN', cursor, 'MATCH', pattern, 'COUNT', '1000'])) as [string, string[]];
      cursor = String(next);
      keys.push(...batch.map(String));
    } while (cursor !== '0');
    out.push(keys);
  }
  return out;
}

beforeAll(async () => {
  cluster = await startRedisCluster();
  client = createMapperRedisCluster({ nodes: cluster.nodes });
  client.on('error', () => {});
  await client.connect();
  redis = clusterRedisLike(client);
}, 120_000);

afterAll(async () => {
  try {
    if (killed) client.destroy();
    else if (client?.isOpen) {
      // Nothing of this run may stay behind.
      expect((await keysPerMaster()).flat()).toEqual([]);
      await client.close();
    }
  } finally {
    await cluster?.stop();
  }
});

// The same contract the single-node Redis mapper runs (redis-code-mapper.int.spec.ts).
codeMapperContract('redis cluster', async () => {
  const mapper = await open();
  return { mapper, cleanup: () => mapper.drop() };
}, { propertyRuns: 15 });

codeMapperContract('redis cluster, forced subject tag collisions', async () => {
  const mapper = await open({ subjectTag: (subject, length) => Buffer.alloc(length, subject[15]! & 63) });
  return { mapper, cleanup: () => mapper.drop() };
}, { propertyRuns: 8 });

const LOCATOR = new CodeLocator(newCodeKey());
codeMapperContract('redis cluster, codes minted with sealed locators', async () => {
  const mapper = await open({ locator: LOCATOR });
  return { mapper, cleanup: () => mapper.drop() };
}, { propertyRuns: 15, mint: (s) => LOCATOR.mint(s) });

describe('Redis Cluster code mapper', () => {
  test('a slot group is one hash slot: the buckets spread over every master, each multi-key command stays in one slot', async () => {
    const mapper = await open({ slotGroupBits: 6 });
    await mapper.apply(asEvents(population(300, [PENSION, MURORAN])));
    const perMaster = await keysPerMaster(`${mapper.layout.prefix}:*`);
    expect(perMaster).toHaveLength(3);
    for (const keys of perMaster) expect(keys.length).toBeGreaterThan(0);
    // Every key of one hash tag lives on one master.
    const masterOf = new Map<string, number>();
    perMaster.forEach((keys, m) => {
      for (const key of keys) {
        const tag = hashTagOf(key);
        expect(masterOf.get(tag) ?? m, key).toBe(m);
        masterOf.set(tag, m);
      }
    });
    expect(await mapper.entries()).toHaveLength(600);
    await mapper.drop();
    expect((await keysPerMaster(`${mapper.layout.prefix}:*`)).flat()).toEqual([]);
  });

  test('I8: the live cluster projection, followed as the log grows, equals one rebuilt from the log, byte for byte', async () => {
    const store = new InMemoryEventStore();
    const live = await open({ locator: LOCATOR });
    const controller = new AbortController();
    const following = follow(store, live, { signal: controller.signal, maxBatch: 50 });
    for (let i = 0; i < 4; i++) await acquireInStore(store, population(40, [PENSION, MURORAN], (s) => LOCATOR.mint(s)));
    await acquireInStore(store, population(10)); // codes drawn at random: these keep code buckets too
    const head = (await store.head()) - 1;
    for (let i = 0; i < 400 && (await live.checkpoint()) < head; i++) await new Promise((r) => setTimeout(r, 10));
    controller.abort();
    await following;
    expect(await live.checkpoint()).toBe(head);

    const rebuilt = await open({ locator: LOCATOR });
    await rebuildFrom(store, rebuilt, { pageSize: 333 });
    expect(await rebuilt.checkpoint()).toBe(head);
    expect(await rebuilt.entries()).toHaveLength(360);
    expect(await rebuilt.entries()).toEqual(await live.entries());
    expect(await rebuilt.dump()).toEqual(await live.dump());
    expect((await live.dump()).some(([k]) => k.startsWith(':c{'))).toBe(true);
    await Promise.all([live.drop(), rebuilt.drop(), store.close()]);
  });

  test('reset() empties the prefix on every master and the projection rebuilds', async () => {
    const store = new InMemoryEventStore();
    const people = population(60, [PENSION, MURORAN]);
    await acquireInStore(store, people);
    const mapper = await open();
    await catchUp(store, mapper);
    await mapper.reset();
    expect(await mapper.checkpoint()).toBe(-1);
    expect(await mapper.entries()).toEqual([]);
    expect((await keysPerMaster(`${mapper.layout.prefix}:*`)).flat().sort()).toEqual([`${mapper.layout.prefix}:meta`]);
    await catchUp(store, mapper);
    expect(await mapper.entries()).toHaveLength(120);
    await Promise.all([mapper.drop(), store.close()]);
  });
});

describe('a slot migration under load', () => {
  test('translations stay right while slots move (redirections followed; a batch Redis refuses meanwhile is answered by the store), then Redis answers from the new owner', async () => {
    const store = new InMemoryEventStore();
    const people = population(300, [PENSION, MURORAN]);
    await acquireInStore(store, people);
    const mapper = await open({ slotGroupBits: 8 });
    await catchUp(store, mapper);
    const fallback = new FallbackCodeMapper(mapper, new StoreCodeMapper(store), { retryAfterMs: 20 });
    const pension = people.filter((p) => p.agencyId === PENSION);
    const muroranOf = new Map(people.filter((p) => p.agencyId === MURORAN).map((p) => [p.subjectId, p.code]));
    const check = async (): Promise<void> => {
      const got = await fallback.translateMany(PENSION, pension.map((p) => p.code), MURORAN);
      expect(got.map((t) => (t.status === 'translated' ? t.code : t.status))).toEqual(pension.map((p) => muroranOf.get(p.subjectId)));
    };
    const keysOn = async (port: number): Promise<number> => {
      const master = client.masters.find((m) => m.port === port)!;
      const node = await client.nodeClient(master);
      let n = 0;
      let cursor = '0';
      do {
        const [next, batch] = (await node.sendCommand(['SCAN', cursor, 'MATCH', `${mapper.layout.prefix}:*`, 'COUNT', '1000'])) as [string, string[]];
        cursor = String(next);
        n += batch.length;
      } while (cursor !== '0');
      return n;
    };
    const [from, to] = [cluster.ports[0]!, cluster.ports[2]!];
    const before = [await keysOn(from), await keysOn(to)];

    let running = true;
    let batches = 0;
    const load = (async () => {
      while (running) {
        await check();
        batches++;
      }
    })();
    try {
      await cluster.reshard(from, to, 1500);
    } finally {
      running = false;
      await load;
    }
    expect(batches).toBeGreaterThan(0);
    const after = [await keysOn(from), await keysOn(to)];
    expect(after[0]).toBeLessThan(before[0]!);
    expect(after[0]! + after[1]!).toBe(before[0]! + before[1]!);

    let primary = false;
    for (let i = 0; i < 100 && !primary; i++) {
      await new Promise((r) => setTimeout(r, 30));
      await check();
      primary = fallback.health().mode === 'primary';
    }
    expect(primary).toBe(true);
    expect(await mapper.entries()).toHaveLength(600);
    await Promise.all([mapper.drop(), store.close()]);
  });
});

// Last in this file: it kills a master (the cluster is not usable afterwards; afterAll only stops it).
describe('a master killed mid-run', () => {
  test('the fallback keeps answering every translation from the store and reports degraded', async () => {
    const store = new InMemoryEventStore();
    const people = population(200, [PENSION, MURORAN]);
    await acquireInStore(store, people);
    const mapper = await open({ operationTimeoutMs: 1000, slotGroupBits: 6 });
    await catchUp(store, mapper);
    const fallback = new FallbackCodeMapper(mapper, new StoreCodeMapper(store), { retryAfterMs: 50 });
    const pension = people.filter((p) => p.agencyId === PENSION);
    const muroranOf = new Map(people.filter((p) => p.agencyId === MURORAN).map((p) => [p.subjectId, p.code]));
    const check = async (): Promise<void> => {
      const got = await fallback.translateMany(PENSION, pension.map((p) => p.code), MURORAN);
      expect(got.map((t) => (t.status === 'translated' ? t.code : t.status))).toEqual(pension.map((p) => muroranOf.get(p.subjectId)));
    };
    await check();
    expect(fallback.health().mode).toBe('primary');

    // The earlier tests left nothing behind (afterAll cannot look once a master is gone).
    const keys = (await keysPerMaster()).flat();
    expect(keys.filter((k) => !k.startsWith(`${mapper.layout.prefix}:`))).toEqual([]);

    killed = true;
    await cluster.kill(cluster.ports[1]!);
    for (let i = 0; i < 5; i++) await check();
    expect(fallback.health()).toMatchObject({ mode: 'degraded', degraded: true });
    await store.close();
  });
});
