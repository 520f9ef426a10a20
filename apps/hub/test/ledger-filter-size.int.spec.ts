import { afterEach, describe, expect, it } from 'vitest';
import { SqliteEventStore, type EventStore } from '#ledger';
import { startTestHub, type TestHub } from './support/test-hub.js';

/** The SQLite ledger under the hub's wrappers (each names what it wraps `raw`). */
function ledgerOf(store: EventStore): SqliteEventStore {
  let s: unknown = store;
  while (!(s instanceof SqliteEventStore) && typeof s === 'object' && s !== null && 'raw' in s) s = (s as { raw: unknown }).raw;
  if (!(s instanceof SqliteEventStore)) throw new Error('the hub does not run on the SQLite ledger');
  return s;
}

let hub: TestHub | undefined;
afterEach(async () => {
  await hub?.close();
  hub = undefined;
});

describe('the ledger filter size is a hub setting', () => {
  it('opens the ledger with 4 MiB per filter by default', async () => {
    hub = await startTestHub();
    expect(ledgerOf(hub.store).filterStats.map((f) => [f.name, f.bytes])).toEqual([
      ['streams', 4 * 1024 * 1024],
      ['idempotency_keys', 4 * 1024 * 1024],
      ['claims', 4 * 1024 * 1024],
    ]);
  });

  it('opens the ledger with HUB_LEDGER_FILTER_MIB per filter', async () => {
    hub = await startTestHub({ env: { HUB_LEDGER_FILTER_MIB: '16' } });
    expect(ledgerOf(hub.store).filterStats.map((f) => f.bytes)).toEqual([16 * 1024 * 1024, 16 * 1024 * 1024, 16 * 1024 * 1024]);
  });
});
