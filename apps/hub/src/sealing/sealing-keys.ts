import { join } from 'node:path';
import { generateSealingKeysFile, readSealingKeys, type SealingKeys } from '#sealing';
import { loadOrCreateSecretFile } from '../keys/key-file.js';

/** The sealing key file in the hub's keys directory; a supervisory auditor's read key is a copy of it (with the KEK files beside it). */
export const SEALING_KEY_FILE = 'sealing.key.json';

/**
 * Loads the sealing keys, generating them at first start (mode 0600, never committed), with the
 * key-encryption keys rotations put beside the file (`sealing-kek.<kid>.key.json`, docs/key-rotation.md):
 * the newest wraps the keys made now, the others open what is still wrapped under them.
 */
export function loadOrCreateSealingKeys(keysDir: string, now: Date = new Date()): SealingKeys {
  const path = join(keysDir, SEALING_KEY_FILE);
  loadOrCreateSecretFile(path, () => generateSealingKeysFile(now));
  return readSealingKeys(path);
}
