import { Inject, Injectable, type OnApplicationShutdown, type Provider } from '@nestjs/common';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { EventStore } from '#ledger';
import { EventSealer, KEYRING_FILE, SealedEventStore, SqliteKeyring, type Keyring, type SealingKeys } from '#sealing';
import { HubConfig } from '../config/hub-config.js';
import { EVENT_STORE, LEDGER } from '../ledger/tokens.js';
import { loadOrCreateSealingKeys } from './sealing-keys.js';

export const SEALING_KEYS = Symbol('SEALING_KEYS');
export const KEYRING = Symbol('KEYRING');

/** Closes the key ring after everything that seals or opens has stopped. */
@Injectable()
export class KeyringLifecycle implements OnApplicationShutdown {
  constructor(@Inject(KEYRING) private readonly ring: Keyring) {}
  onApplicationShutdown(): void {
    this.ring.close();
  }
}

/**
 * The sealing of personal fields (I10): the keys (keys/sealing.key.json), the key ring (keyring.sqlite
 * beside the ledger), the sealer, and LEDGER: the event store as command handlers use it (appends
 * sealed, reads opened).
 */
export function sealingProviders(config: HubConfig): Provider[] {
  return [
    { provide: SEALING_KEYS, useFactory: (): SealingKeys => loadOrCreateSealingKeys(config.keysDir) },
    {
      provide: KEYRING,
      inject: [SEALING_KEYS],
      useFactory: (keys: SealingKeys): Keyring => {
        mkdirSync(config.dataDir, { recursive: true, mode: 0o700 });
        return new SqliteKeyring({ path: join(config.dataDir, KEYRING_FILE), keys });
      },
    },
    { provide: EventSealer, inject: [SEALING_KEYS, KEYRING], useFactory: (keys: SealingKeys, ring: Keyring) => new EventSealer(keys, ring) },
    { provide: LEDGER, inject: [EVENT_STORE, EventSealer], useFactory: (raw: EventStore, sealer: EventSealer) => new SealedEventStore(raw, sealer) },
    KeyringLifecycle,
  ];
}

export const SEALING_EXPORTS = [SEALING_KEYS, KEYRING, EventSealer, LEDGER];
