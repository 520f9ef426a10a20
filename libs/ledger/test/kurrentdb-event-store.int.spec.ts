import { randomUUID } from 'node:crypto';
import { describe, it } from 'vitest';
import { KurrentDbEventStore } from '#ledger/kurrentdb-event-store';
import { eventStoreContract } from './event-store.contract.js';

// The event store contract against a real KurrentDB server: set KURRENTDB_URL (for example
// kurrentdb://127.0.0.1:2113?tls=false). Each test writes its own log stream, so a shared server is fine.
const url = process.env['KURRENTDB_URL'];

if (url) {
  eventStoreContract(
    `kurrentdb (${url})`,
    async ({ nodeId, now }) => {
      const logStream = `linkage-ledger-test-${randomUUID()}`;
      const store = await KurrentDbEventStore.open({ connection: url, logStream, nodeId, now });
      return {
        store,
        reopen: async () => {
          await store.close();
          return KurrentDbEventStore.open({ connection: url, logStream, nodeId, now });
        },
      };
    },
    { durable: true },
  );
} else {
  console.warn('KurrentDB contract suite skipped: KURRENTDB_URL is not set (no KurrentDB server here). The adapter ran the contract against a stand-in server (kurrentdb-event-store.unit.spec.ts).');
  describe('EventStore contract: kurrentdb', () => {
    it.skip('KurrentDB contract suite skipped: KURRENTDB_URL is not set', () => undefined);
  });
}
