import { existsSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { canonicalize } from '#ledger';
import { DEFAULT_RELAY_TOPIC, RELAY_CHECKPOINT_FILE, RelayConsumer, SqliteRelayCheckpoint, type RelayedEvent } from '#relay';
import { startMockBroker, topicSize, waitUntil, type MockBroker } from '../../../libs/relay/test/mock-broker.js';
import { EventRelay } from '../src/relay/event-relay.service.js';
import { startTestHub, type TestHub } from './support/test-hub.js';

const stops: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const stop of stops.splice(0).reverse()) await stop().catch(() => undefined);
});

let registry = 430_002_000_000;
async function designate(hub: TestHub, count: number): Promise<void> {
  for (let i = 0; i < count; i++) {
    const body = { registryNumber: String(++registry), name: `株式会社リレー${registry}`, location: '北海道室蘭市幸町1番2号', kind: 'stock-company' };
    expect((await hub.post('/v1/corporate-numbers', body, hub.operator)).statusCode).toBe(201);
  }
}

async function hubWith(mock: MockBroker, dataDir?: string): Promise<TestHub> {
  const hub = await startTestHub({ ...(dataDir === undefined ? {} : { dataDir }), env: { HUB_KAFKA_BROKERS: mock.brokers.join(',') } });
  stops.push(() => hub.close());
  return hub;
}

describe('the hub relays committed events to Kafka when HUB_KAFKA_BROKERS is set', () => {
  it('relays every event, resumes from relay.sqlite after a restart, and the consumer gets each once', async () => {
    const mock = await startMockBroker([`${DEFAULT_RELAY_TOPIC}:3`]);
    stops.push(() => mock.stop());
    const first = await hubWith(mock);
    const dataDir = first.dataDir;
    stops.push(async () => rmSync(dataDir, { recursive: true, force: true }));
    await designate(first, 4);
    const relay = first.app.get(EventRelay);
    const head1 = await first.head();
    expect(head1).toBeGreaterThanOrEqual(4);
    await waitUntil('the hub relayed its log', async () => (await relay.checkpoint()) === head1 - 1);
    await first.close();
    const file = new SqliteRelayCheckpoint({ path: join(dataDir, RELAY_CHECKPOINT_FILE), name: DEFAULT_RELAY_TOPIC });
    expect(await file.load()).toBe(head1 - 1);
    await file.close();

    const second = await hubWith(mock, dataDir);
    await designate(second, 3);
    const head2 = await second.head();
    await waitUntil('the restarted hub relayed the rest', async () => (await second.app.get(EventRelay).checkpoint()) === head2 - 1);
    // A clean stop checkpointed everything Kafka acknowledged: the second hub resumed there, sending no copy.
    expect(await topicSize(mock.brokers, DEFAULT_RELAY_TOPIC)).toBe(head2);

    const got: RelayedEvent[] = [];
    const consumer = new RelayConsumer({ brokers: mock.brokers, groupId: 'hub-relay', handler: (r) => void got.push(r) });
    stops.push(() => consumer.stop());
    await consumer.start();
    await waitUntil(`${head2} events handed on`, () => got.length >= head2);
    await new Promise((r) => setTimeout(r, 300));
    const log = await second.store.readAll();
    expect(got.map((r) => r.event.position).sort((a, b) => a - b)).toEqual(log.map((e) => e.position));
    for (const r of got) expect(r.text).toBe(canonicalize(log[r.event.position]));
    expect(got.some((r) => r.event.type === 'CorporateNumberDesignated')).toBe(true);
  });

  it('runs no relay and writes no relay file when HUB_KAFKA_BROKERS is unset', async () => {
    const hub = await startTestHub();
    stops.push(() => hub.dispose());
    await designate(hub, 1);
    expect(await hub.app.get(EventRelay).checkpoint()).toBeUndefined();
    expect(existsSync(join(hub.dataDir, RELAY_CHECKPOINT_FILE))).toBe(false);
  });
});
