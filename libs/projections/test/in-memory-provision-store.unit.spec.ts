import { InMemoryProvisionStore } from '#projections';
import { provisionStoreContract } from './provision-store.contract.js';

provisionStoreContract('InMemoryProvisionStore', async () => new InMemoryProvisionStore());
