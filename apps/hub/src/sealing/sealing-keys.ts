import { join } from 'node:path';
import { generateSealingKeysFile, parseSealingKeys, type SealingKeys } from '#sealing';
import { loadOrCreateSecretFile } from '../keys/key-file.js';

/** The sealing key file in the hub's keys directory; a supervisory auditor's read key is a copy of it. */
export const SEALING_KEY_FILE = 'sealing.key.json';

/** Loads the sealing keys, generating them at first start (mode 0600, never committed). */
export function loadOrCreateSealingKeys(keysDir: string, now: Date = new Date()): SealingKeys {
  const path = join(keysDir, SEALING_KEY_FILE);
  return parseSealingKeys(loadOrCreateSecretFile(path, () => generateSealingKeysFile(now)), path);
}
