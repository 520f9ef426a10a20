import { describe, expect, it } from 'vitest';
import { InMemoryEventStore, type AppendRequest } from '#ledger';
import { HubMetrics } from '../src/metrics/hub-metrics.js';

/** The ledger's group-commit hook (BatchedEventStore.observeBatches) as the hub's metrics use it. */

const request = (streamId: string, events = 1): AppendRequest => ({
  streamId,
  expectedRevision: 'any',
  serial: { allocate: true },
  events: Array.from({ length: events }, (_, i) => ({ type: 'Done', data: { i }, ...(i === events - 1 ? { terminal: 'completed' as const } : {}) })),
  metadata: { actor: 'system:test', correlationId: 'c' },
});

describe('the batch observer of the ledger', () => {
  it('is told each batch once, with its appends, events and commit time', async () => {
    const store = new InMemoryEventStore({ nodeId: 1 });
    const seen: [number, number, boolean][] = [];
    store.observeBatches((appends, events, seconds, failed) => {
      expect(seconds).toBeGreaterThanOrEqual(0);
      seen.push([appends, events, failed]);
    });
    // Issued in one turn of the event loop: one batch of three appends and six events.
    await Promise.all([store.append(request('a', 1)), store.append(request('b', 2)), store.append(request('c', 3))]);
    await store.append(request('d', 2));
    expect(seen).toEqual([
      [3, 6, false],
      [1, 2, false],
    ]);
    store.observeBatches(undefined);
    await store.append(request('e'));
    expect(seen).toHaveLength(2);
    await store.close();
  });

  it('changes nothing of the appends when the observer throws', async () => {
    const store = new InMemoryEventStore({ nodeId: 1 });
    store.observeBatches(() => {
      throw new Error('broken metrics');
    });
    const results = await Promise.all([store.append(request('a')), store.append(request('b'))]);
    expect(results.map((r) => r.status)).toEqual(['appended', 'appended']);
    expect(await store.head()).toBe(2);
    await store.close();
  });

  it('feeds the hub\'s batch histograms and the appended events counter', async () => {
    const metrics = new HubMetrics();
    const store = new InMemoryEventStore({ nodeId: 1 });
    store.observeBatches(metrics.observeBatch);
    await Promise.all([store.append(request('a', 2)), store.append(request('b', 3))]);
    const text = await metrics.registry.metrics();
    expect(text).toContain('linkage_ledger_batch_events_sum 5\n');
    expect(text).toContain('linkage_ledger_batch_events_count 1\n');
    expect(text).toContain('linkage_ledger_batch_appends_sum 2\n');
    expect(text).toContain('linkage_ledger_batch_commit_seconds_count{outcome="committed"} 1\n');
    expect(text).toContain('linkage_ledger_appended_events_total 5\n');
    await store.close();
  });
});
