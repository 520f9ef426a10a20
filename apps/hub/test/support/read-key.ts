import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { EventSealer, KEYRING_FILE, SqliteKeyring, parseSealingKeys } from '#sealing';

/** A supervisory auditor's opener over a hub's data directory: its read key and its key ring, read-only. */
export function readKey(dataDir: string): { readonly sealer: EventSealer; close(): void } {
  const keys = parseSealingKeys(JSON.parse(readFileSync(join(dataDir, 'keys', 'sealing.key.json'), 'utf8')));
  const ring = new SqliteKeyring({ path: join(dataDir, KEYRING_FILE), keys, readonly: true });
  return { sealer: new EventSealer(keys, ring), close: () => ring.close() };
}
