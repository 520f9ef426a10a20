import { InMemoryEventStore } from '#ledger';
import { eventStoreContract } from './event-store.contract.js';

eventStoreContract('in-memory', async ({ nodeId, now }) => ({ store: new InMemoryEventStore({ nodeId, now }) }), { durable: false });
