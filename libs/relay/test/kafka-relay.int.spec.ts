import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { InMemoryEventStore, SqliteEventStore, canonicalize, type AppendRequest, type EventStore, type RecordedEvent } from '#ledger';
import {
  DEFAULT_RELAY_TOPIC,
  KafkaRelay,
  RelayConsumer,
  SqliteRelayCheckpoint,
  type RelayCheckpointStore,
  type RelayedEvent,
} from '#relay';
import { readTopic, startMockBroker, topicSize, waitUntil, type MockBroker } from './mock-broker.js';

const dir = mkdtempSync(join(tmpdir(), 'kafka-relay-'));
let n = 0;
const file = (name: string) => join(dir, `${name}-${++n}.sqlite`);

// Everything a test starts, stopped after it whatever happened (a relay, a consumer, a broker, a store).
const cleanups: (() => Promise<unknown>)[] = [];
const later = <T extends { stop?(): Promise<void>; close?(): Promise<void> }>(thing: T): T => {
  cleanups.push(() => (thing.stop ? thing.stop() : thing.close!()));
  return thing;
};
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup().catch(() => undefined);
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const STREAMS = 7;
const meta = { actor: 'system:test', correlationId: 'c' };
const request = (i: number): AppendRequest => ({
  streamId: `stream-${i % STREAMS}`,
  expectedRevision: 'any',
  serial: { allocate: true },
  events: [{ type: i % 2 === 0 ? 'Even' : 'Odd', data: { i, text: 'é✓ 情報' }, terminal: 'completed' }],
  metadata: meta,
});
let appended = 0;
/** Appends `count` events concurrently (group commit), over STREAMS streams. */
const append = (store: EventStore, count: number) => Promise.all(Array.from({ length: count }, () => store.append(request(appended++))));

async function broker(partitions = 3): Promise<MockBroker> {
  return later(await startMockBroker([`${DEFAULT_RELAY_TOPIC}:${partitions}`]));
}

function relayOf(store: EventStore, mock: MockBroker, checkpoint: RelayCheckpointStore, errors: unknown[] = []): KafkaRelay {
  return later(
    new KafkaRelay({ store, brokers: mock.brokers, checkpoint, maxBatch: 40, retry: { initialMs: 20, maxMs: 200 }, requestTimeoutMs: 2000, onError: (e) => errors.push(e) }),
  );
}

function consumerOf(mock: MockBroker, groupId: string): { consumer: RelayConsumer; got: RelayedEvent[] } {
  const got: RelayedEvent[] = [];
  const consumer = later(new RelayConsumer({ brokers: mock.brokers, groupId, handler: (relayed) => void got.push(relayed) }));
  return { consumer, got };
}

/** Every event of the log handed on exactly once, as stored, and in log order within each stream. */
async function expectExactlyTheLog(store: EventStore, got: readonly RelayedEvent[]): Promise<readonly RecordedEvent[]> {
  const log = await store.readAll();
  expect(got.map((r) => r.event.eventId).sort()).toEqual(log.map((e) => e.eventId).sort());
  expect(new Set(got.map((r) => r.event.eventId)).size).toBe(got.length);
  const byId = new Map(log.map((e) => [e.eventId, e]));
  for (const r of got) expect(r.text).toBe(canonicalize(byId.get(r.event.eventId)));
  const perStream = new Map<string, number[]>();
  for (const r of got) perStream.set(r.event.streamId, [...(perStream.get(r.event.streamId) ?? []), r.event.position]);
  expect(perStream.size).toBe(STREAMS);
  for (const positions of perStream.values()) expect(positions).toEqual([...positions].sort((a, b) => a - b));
  return log;
}

describe.each([
  ['SqliteEventStore', () => new SqliteEventStore({ path: file('ledger'), nodeId: 1 })],
  ['InMemoryEventStore', () => new InMemoryEventStore()],
])('KafkaRelay over %s', (_name, open) => {
  it('hands every event of the log to the consumer exactly once, in log order per stream, as its stored text', async () => {
    const mock = await broker();
    const store = later(open());
    await append(store, 150);
    const checkpoint = later(new SqliteRelayCheckpoint({ path: file('relay'), name: DEFAULT_RELAY_TOPIC }));
    const relay = relayOf(store, mock, checkpoint);
    relay.start();
    const { consumer, got } = consumerOf(mock, 'g-all');
    await consumer.start();
    await append(store, 120); // live appends while it follows
    await waitUntil('270 events handed on', () => got.length >= 270);
    await waitUntil('the checkpoint reaches the head', async () => (await checkpoint.load()) === 269);
    await new Promise((r) => setTimeout(r, 300)); // nothing more arrives
    await expectExactlyTheLog(store, got);
    expect(got).toHaveLength(270);
    expect(consumer.stats).toEqual({ handedOn: 270, duplicatesDropped: 0 });
    expect(await topicSize(mock.brokers, DEFAULT_RELAY_TOPIC)).toBe(270);
  });
});

describe('KafkaRelay', () => {
  it('keys each message by stream id and carries the event id, position, serial and type as headers', async () => {
    const mock = await broker(4);
    const store = later(new SqliteEventStore({ path: file('ledger'), nodeId: 1 }));
    await append(store, 60);
    const relay = relayOf(store, mock, later(new SqliteRelayCheckpoint({ path: file('relay'), name: DEFAULT_RELAY_TOPIC })));
    relay.start();
    await waitUntil('the relay reaches the head', async () => (await relay.checkpoint()) === 59);
    const raw = await readTopic(mock.brokers, DEFAULT_RELAY_TOPIC, 'g-raw');
    const log = await store.readAll();
    expect(raw).toHaveLength(60);
    const byPosition = new Map(raw.map((m) => [Number(m.headers['position']), m]));
    const partitionOf = new Map<string, number>();
    for (const event of log) {
      const m = byPosition.get(event.position)!;
      expect(m).toBeDefined();
      expect(m.key).toBe(event.streamId);
      expect(m.value).toBe(canonicalize(event));
      expect(m.headers).toEqual({ 'event-id': event.eventId, position: String(event.position), serial: event.serial, type: event.type });
      // one stream, one partition
      expect(partitionOf.get(event.streamId) ?? m.partition).toBe(m.partition);
      partitionOf.set(event.streamId, m.partition);
    }
    expect(new Set(partitionOf.values()).size).toBeGreaterThan(1);
  });

  it('resumes after a stop mid-stream from its checkpoint: nothing lost, the copies dropped by the consumer', async () => {
    const mock = await broker();
    const store = later(new SqliteEventStore({ path: file('ledger'), nodeId: 1 }));
    const path = file('relay');
    const durable = later(new SqliteRelayCheckpoint({ path, name: DEFAULT_RELAY_TOPIC }));
    // The first relay's checkpoint writes after position 60 never reach the disk, as when a relay dies
    // between Kafka's acknowledgement and its checkpoint write: the next relay sends those events again.
    let kept = -1;
    const lossy: RelayCheckpointStore = {
      load: () => durable.load(),
      save: async (position) => {
        if (position <= 60) await durable.save(position);
        await new Promise((r) => setTimeout(r, 30)); // a slow disk: the stop below lands mid-stream
        kept = position;
      },
      close: async () => undefined,
    };
    const first = relayOf(store, mock, lossy);
    first.start();
    const burst = append(store, 250);
    await waitUntil('the first relay is past position 100', () => kept > 100);
    await first.stop(); // mid-stream: appends are still committing
    await burst;
    const stoppedAt = kept;
    expect(stoppedAt).toBeLessThan(249);
    expect(await durable.load()).toBeLessThanOrEqual(60);
    await append(store, 100);

    const second = relayOf(store, mock, durable);
    second.start();
    await waitUntil('the second relay reaches the head', async () => (await durable.load()) === 349);
    const raw = await topicSize(mock.brokers, DEFAULT_RELAY_TOPIC);
    expect(raw).toBeGreaterThan(350); // the copies are on the topic…

    const { consumer, got } = consumerOf(mock, 'g-restart');
    await consumer.start();
    await waitUntil('every message consumed', () => consumer.stats.handedOn + consumer.stats.duplicatesDropped >= raw);
    await expectExactlyTheLog(store, got); // …and the consumer hands on each event once
    expect(got).toHaveLength(350);
    expect(consumer.stats.duplicatesDropped).toBe(raw - 350);
  });

  it('never moves its checkpoint past what Kafka acknowledged: a broker outage holds it, recovery catches up', async () => {
    const mock = await broker();
    const store = later(new SqliteEventStore({ path: file('ledger'), nodeId: 1 }));
    const checkpoint = later(new SqliteRelayCheckpoint({ path: file('relay'), name: DEFAULT_RELAY_TOPIC }));
    const errors: unknown[] = [];
    const relay = relayOf(store, mock, checkpoint, errors);
    relay.start();
    await append(store, 80);
    await waitUntil('the relay reaches the head', async () => (await checkpoint.load()) === 79);

    await mock.down();
    await append(store, 50);
    await waitUntil('the relay reports failed sends', () => errors.length >= 2, 15_000);
    await new Promise((r) => setTimeout(r, 500));
    expect(await checkpoint.load()).toBe(79);
    expect(await relay.checkpoint()).toBe(79);

    await mock.up();
    await waitUntil('the relay catches up after the outage', async () => (await checkpoint.load()) === 129, 30_000);
    const { consumer, got } = consumerOf(mock, 'g-outage');
    await consumer.start();
    await waitUntil('130 events handed on', () => got.length >= 130);
    await new Promise((r) => setTimeout(r, 300));
    await expectExactlyTheLog(store, got);
    expect(got).toHaveLength(130);
  });

  it('starts even while the broker is down, and relays once it is up', async () => {
    const mock = await broker();
    await mock.down();
    const store = later(new InMemoryEventStore());
    await append(store, 30);
    const checkpoint = later(new SqliteRelayCheckpoint({ path: file('relay'), name: DEFAULT_RELAY_TOPIC }));
    const errors: unknown[] = [];
    relayOf(store, mock, checkpoint, errors).start();
    await waitUntil('the relay reports a failed connection', () => errors.length >= 1, 15_000);
    expect(await checkpoint.load()).toBe(-1);
    await mock.up();
    await waitUntil('the relay reaches the head', async () => (await checkpoint.load()) === 29, 30_000);
    expect(await topicSize(mock.brokers, DEFAULT_RELAY_TOPIC)).toBeGreaterThanOrEqual(30);
  });
});
