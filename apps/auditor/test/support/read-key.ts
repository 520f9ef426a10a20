import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { NewEvent, RecordedEvent } from '#ledger';
import { EventSealer, KEYRING_FILE, SEAL_CATALOG, SqliteKeyring, generateSealingKeysFile, isClearEventType, parseSealingKeys } from '#sealing';

/** Seals as the hub does; event types a test invents for "another stream" pass as they are. */
class TestSealer extends EventSealer {
  override seal(streamId: string, event: NewEvent): NewEvent {
    return SEAL_CATALOG[event.type] !== undefined || isClearEventType(event.type) ? super.seal(streamId, event) : event;
  }
}

/**
 * A hub's sealing keys in `<dir>/keys/sealing.key.json` (the read key a supervisory auditor is given) and
 * its key ring in `<dir>/keyring.sqlite`, beside the ledger, as the hub lays them out.
 */
export function readKey(dir: string): { readonly keyFile: string; readonly sealer: EventSealer; close(): void } {
  mkdirSync(join(dir, 'keys'), { recursive: true });
  const file = generateSealingKeysFile(new Date());
  const keyFile = join(dir, 'keys', 'sealing.key.json');
  writeFileSync(keyFile, JSON.stringify(file), { mode: 0o600 });
  const ring = new SqliteKeyring({ path: join(dir, KEYRING_FILE), keys: parseSealingKeys(file) });
  return { keyFile, sealer: new TestSealer(parseSealingKeys(file), ring), close: () => ring.close() };
}

/** How the hub's projections file a person (the id of their key), read from events without opening them. */
export const people = (sealer: EventSealer) => ({ subjectRef: (s: string) => sealer.personRef(s), personOf: (e: RecordedEvent) => sealer.referenceOf(e) });
