import { InMemoryProvisionStore } from '#projections';
import { provisionStoreContract } from './provision-store.contract.js';
import { subjectRef } from './scenario.js';

provisionStoreContract('InMemoryProvisionStore', async () => new InMemoryProvisionStore({ subjectRef }));
