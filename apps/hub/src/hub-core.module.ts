import { Global, Module, type DynamicModule } from '@nestjs/common';
import { KurrentDBClient } from '@kurrent/kurrentdb-client';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { SqliteEventStore, type EventStore } from '#ledger';
import { KurrentDbEventStore, type KurrentLogClient } from '#ledger/kurrentdb-event-store';
import { HubConfig, advertisedUrl } from './config/hub-config.js';
import { IdempotencyKeys } from './ledger/idempotency.js';
import { LedgerLifecycle } from './ledger/ledger-lifecycle.service.js';
import { CLOCK, EVENT_STORE, KURRENTDB_CLIENT } from './ledger/tokens.js';
import { LeaderGatedEventStore } from './leadership/leader-gated-event-store.js';
import { Leadership } from './leadership/leadership.js';
import { LEADERSHIP } from './leadership/tokens.js';
import { MunicipalityDirectory } from './municipalities/municipality-directory.js';
import { IdentifierVault } from './vault/identifier-vault.js';
import { SEALING_EXPORTS, keyedEventStore, sealingProviders } from './sealing/sealing.providers.js';
import { EventSealer } from '#sealing';
import { loadOrCreateVaultKeys } from './vault/vault-keys.js';

/** The file of the KurrentDB log's index (streams, serials, claims, idempotency keys) under the data dir. */
export const KURRENTDB_INDEX_FILE = 'kurrentdb-index.sqlite';

/** The KurrentDB stream of the leadership lease among the hubs of one log. */
export function leaseStreamOf(logStream: string): string {
  return `${logStream}-leadership`;
}

/** The log as opened: the store features use, and on KurrentDB the leadership among the hubs. */
interface HubLog {
  readonly store: EventStore;
  readonly leadership: Leadership | null;
}
const HUB_LOG = Symbol('HUB_LOG');

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
          provide: KURRENTDB_CLIENT,
          useFactory: (): KurrentLogClient | null => (config.eventStore.kind === 'kurrentdb' ? KurrentDBClient.connectionString(config.eventStore.connection) : null),
        },
        {
          provide: HUB_LOG,
          inject: [KURRENTDB_CLIENT],
          useFactory: async (client: KurrentLogClient | null): Promise<HubLog> => {
            mkdirSync(config.dataDir, { recursive: true, mode: 0o700 });
            if (client === null || config.eventStore.kind !== 'kurrentdb') {
              // The writer keeps the Merkle tree (I3) in the transactions that write the events.
              // Its Bloom filters have the size of HUB_LEDGER_FILTER_MIB (filters saved at another size are rebuilt at open).
              return { store: new SqliteEventStore({ path: config.ledgerPath, nodeId: config.nodeId, tree: true, filters: { bytes: config.ledgerFilterMiB * 1024 * 1024 } }), leadership: null };
            }
            // On KurrentDB every hub opens the log read-only; the lease decides which one writes, and the
            // log's expected revision fences off one that was deposed (leadership.ts).
            const elected: { leadership?: Leadership } = {};
            const store = await KurrentDbEventStore.open({
              connection: client,
              logStream: config.eventStore.logStream,
              nodeId: config.nodeId,
              writable: false,
              onConflict: 'fence',
              onFenced: (error) => elected.leadership?.fenced(error.message),
              // The planner's index as a local projection with its checkpoint: an open reads only the log's tail.
              indexPath: join(config.dataDir, KURRENTDB_INDEX_FILE),
            });
            const leadership = new Leadership({
              client,
              store,
              leaseStream: leaseStreamOf(config.eventStore.logStream),
              instanceId: config.instanceId,
              url: advertisedUrl(config),
              renewMs: config.leadership.renewMs,
              leaseMs: config.leadership.leaseMs,
            });
            elected.leadership = leadership;
            return { store: new LeaderGatedEventStore(store, leadership), leadership };
          },
        },
        // On a key ring shared through KurrentDB, every page of the log is handed out with its keys ready.
        { provide: EVENT_STORE, inject: [HUB_LOG, EventSealer], useFactory: (log: HubLog, sealer: EventSealer) => keyedEventStore(log.store, sealer) },
        { provide: LEADERSHIP, inject: [HUB_LOG], useFactory: (log: HubLog) => log.leadership },
        { provide: CLOCK, useValue: () => new Date() },
        { provide: IdentifierVault, useFactory: () => new IdentifierVault(loadOrCreateVaultKeys(config.keysDir)) },
        { provide: MunicipalityDirectory, useFactory: () => MunicipalityDirectory.fromFile(config.municipalitiesFile) },
        ...sealingProviders(config),
        LedgerLifecycle,
        IdempotencyKeys,
      ],
      exports: [HubConfig, EVENT_STORE, LEADERSHIP, KURRENTDB_CLIENT, CLOCK, IdentifierVault, MunicipalityDirectory, LedgerLifecycle, IdempotencyKeys, ...SEALING_EXPORTS],
    };
  }
}
