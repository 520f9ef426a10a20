import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll } from 'vitest';
import { SqliteEventStore } from '#ledger';
import { eventStoreContract } from './event-store.contract.js';

const dir = mkdtempSync(join(tmpdir(), 'ledger-contract-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;

eventStoreContract('sqlite', async ({ nodeId, now }) => {
  const path = join(dir, `ledger-${++n}.sqlite`);
  const store = new SqliteEventStore({ path, nodeId, now });
  return {
    store,
    reopen: async () => {
      await store.close();
      return new SqliteEventStore({ path, nodeId, now });
    },
  };
}, { durable: true });
