import { Inject, Injectable, Logger, type OnApplicationShutdown, type Provider } from '@nestjs/common';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { EventStore } from '#ledger';
import { EventSealer, KEYRING_FILE, KeyedEventStore, KurrentKeyring, SealedEventStore, SqliteKeyring, type KurrentKeyClient, type Keyring, type SealingKeys } from '#sealing';
import { HubConfig } from '../config/hub-config.js';
import { EVENT_STORE, KURRENTDB_CLIENT, LEDGER } from '../ledger/tokens.js';
import { loadOrCreateSealingKeys } from './sealing-keys.js';

export const SEALING_KEYS = Symbol('SEALING_KEYS');
export const KEYRING = Symbol('KEYRING');

/** How often a hub on KurrentDB reads the key streams other hubs wrote (keys made, keys shredded). */
export const KEYRING_FOLLOW_MS = 50;

/** Closes the key ring after everything that seals or opens has stopped (a shared ring first waits for its deletions). */
@Injectable()
export class KeyringLifecycle implements OnApplicationShutdown {
  constructor(@Inject(KEYRING) private readonly ring: Keyring) {}
  async onApplicationShutdown(): Promise<void> {
    if (this.ring instanceof KurrentKeyring) await this.ring.settled();
    this.ring.close();
  }
}

/** The KurrentDB client as the key ring uses it; refuses a client without the calls it needs. */
function keyClientOf(client: unknown): KurrentKeyClient {
  const c = client as Partial<KurrentKeyClient> | null;
  for (const m of ['appendToStream', 'readStream', 'readAll', 'tombstoneStream'] as const) {
    if (typeof c?.[m] !== 'function') throw new Error(`the KurrentDB client has no ${m}: the shared key ring needs it`);
  }
  return c as KurrentKeyClient;
}

/**
 * The key ring: on the embedded SQLite ledger the hub's own `keyring.sqlite` beside the ledger. On
 * KurrentDB the ring the hubs of the log share: KurrentDB holds every key (wrapped), one stream per key,
 * and `keyring.sqlite` is this hub's copy, followed in the background (docs/keyring.md).
 */
export async function openKeyring(config: HubConfig, keys: SealingKeys, client: unknown): Promise<Keyring> {
  mkdirSync(config.dataDir, { recursive: true, mode: 0o700 });
  const shared = config.eventStore.kind === 'kurrentdb' && client !== null && client !== undefined;
  // A shared ring's copy answers a wrap under a KEK this hub no longer holds (retired by a rotation while
  // it was down) as "not here": the key is read again from KurrentDB, where it is re-wrapped.
  const local = new SqliteKeyring({ path: join(config.dataDir, KEYRING_FILE), keys, unknownKekIsMissing: shared });
  if (!shared) return local;
  const logger = new Logger('KeyRing');
  let failing = false;
  const ring = new KurrentKeyring({
    client: keyClientOf(client),
    local,
    keys,
    logStream: config.eventStore.logStream,
    // Said once per outage, not at every attempt.
    onError: (error) => {
      if (!failing) logger.warn(`the shared key ring could not reach KurrentDB (retrying every ${KEYRING_FOLLOW_MS} ms): ${error instanceof Error ? error.message : String(error)}`);
      failing = true;
    },
    onFollowed: () => {
      if (failing) logger.log('the shared key ring follows KurrentDB again');
      failing = false;
    },
  });
  try {
    // Once per data dir: keys this hub's ring held as its own file (before it was shared) go to KurrentDB first.
    const published = await ring.publish();
    if (published.keys + published.shredded > 0) logger.log(`the key ring's own keys are now in KurrentDB: ${published.keys} put there, ${published.shredded} shredded there`);
  } catch (error) {
    ring.close();
    throw error;
  }
  ring.startFollowing(KEYRING_FOLLOW_MS);
  return ring;
}

/**
 * The sealing of personal fields (I10): the keys (keys/sealing.key.json), the key ring (keyring.sqlite
 * beside the ledger, or shared through KurrentDB), the sealer, and LEDGER: the event store as command
 * handlers use it (appends sealed, reads opened).
 */
export function sealingProviders(config: HubConfig): Provider[] {
  return [
    { provide: SEALING_KEYS, useFactory: (): SealingKeys => loadOrCreateSealingKeys(config.keysDir) },
    { provide: KEYRING, inject: [SEALING_KEYS, KURRENTDB_CLIENT], useFactory: (keys: SealingKeys, client: unknown): Promise<Keyring> => openKeyring(config, keys, client) },
    { provide: EventSealer, inject: [SEALING_KEYS, KEYRING], useFactory: (keys: SealingKeys, ring: Keyring) => new EventSealer(keys, ring) },
    { provide: LEDGER, inject: [EVENT_STORE, EventSealer], useFactory: (raw: EventStore, sealer: EventSealer) => new SealedEventStore(raw, sealer) },
    KeyringLifecycle,
  ];
}

/**
 * The stored log as the hub's folds read it (EVENT_STORE) on a shared key ring: each page's keys made
 * ready in the local copy before it is handed out (KeyedEventStore). The embedded ledger's store as it is.
 */
export function keyedEventStore(store: EventStore, sealer: EventSealer): EventStore {
  return sealer.keyring instanceof KurrentKeyring ? new KeyedEventStore(store, sealer) : store;
}

export const SEALING_EXPORTS = [SEALING_KEYS, KEYRING, EventSealer, LEDGER];
