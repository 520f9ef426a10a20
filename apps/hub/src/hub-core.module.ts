import { Global, Module, type DynamicModule } from '@nestjs/common';
import { mkdirSync } from 'node:fs';
import { SqliteEventStore } from '#ledger';
import { HubConfig } from './config/hub-config.js';
import { IdempotencyKeys } from './ledger/idempotency.js';
import { LedgerLifecycle } from './ledger/ledger-lifecycle.service.js';
import { CLOCK, EVENT_STORE } from './ledger/tokens.js';
import { MunicipalityDirectory } from './municipalities/municipality-directory.js';
import { IdentifierVault } from './vault/identifier-vault.js';
import { SEALING_EXPORTS, sealingProviders } from './sealing/sealing.providers.js';
import { loadOrCreateVaultKeys } from './vault/vault-keys.js';

/** What every feature uses: configuration, the ledger (stored and sealed views), the vault, the sealer, the municipality list, the clock. */
@Global()
@Module({})
export class HubCoreModule {
  static forRoot(config: HubConfig): DynamicModule {
    return {
      module: HubCoreModule,
      providers: [
        { provide: HubConfig, useValue: config },
        {
          provide: EVENT_STORE,
          useFactory: () => {
            mkdirSync(config.dataDir, { recursive: true, mode: 0o700 });
            // The writer keeps the Merkle tree (I3) in the transactions that write the events.
            return new SqliteEventStore({ path: config.ledgerPath, nodeId: config.nodeId, tree: true });
          },
        },
        { provide: CLOCK, useValue: () => new Date() },
        { provide: IdentifierVault, useFactory: () => new IdentifierVault(loadOrCreateVaultKeys(config.keysDir)) },
        { provide: MunicipalityDirectory, useFactory: () => MunicipalityDirectory.fromFile(config.municipalitiesFile) },
        ...sealingProviders(config),
        LedgerLifecycle,
        IdempotencyKeys,
      ],
      exports: [HubConfig, EVENT_STORE, CLOCK, IdentifierVault, MunicipalityDirectory, LedgerLifecycle, IdempotencyKeys, ...SEALING_EXPORTS],
    };
  }
}
