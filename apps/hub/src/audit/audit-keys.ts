import { join } from 'node:path';
import { generateSigningKey } from '#audit-log';
import { loadOrCreateSecretFile } from '../keys/key-file.js';

export const CHECKPOINT_KEY_FILE = 'checkpoint-signing.key.json';

interface KeyFile {
  readonly purpose: 'checkpoint-signing';
  readonly alg: 'Ed25519';
  /** base64url, the 32-byte Ed25519 seed. */
  readonly key: string;
  readonly createdAt: string;
}

/**
 * The Ed25519 seed that signs checkpoints, generated at first start (file mode 0600, created
 * exclusively so two processes cannot overwrite each other's key). It MUST NOT be committed or logged;
 * only its public half is served (GET /v1/audit/verifier-key).
 */
export function loadOrCreateCheckpointKey(keysDir: string, now: Date = new Date()): Uint8Array {
  const path = join(keysDir, CHECKPOINT_KEY_FILE);
  const parsed = loadOrCreateSecretFile(path, (): KeyFile & Record<string, unknown> => ({
    purpose: 'checkpoint-signing',
    alg: 'Ed25519',
    key: Buffer.from(generateSigningKey().privateKey).toString('base64url'),
    createdAt: now.toISOString(),
  })) as Partial<KeyFile>;
  const seed = typeof parsed.key === 'string' ? Buffer.from(parsed.key, 'base64url') : Buffer.alloc(0);
  if (parsed.purpose !== 'checkpoint-signing' || seed.length !== 32) {
    throw new Error(`key file ${path} is not a valid checkpoint signing key (needs purpose "checkpoint-signing" and a 32-byte base64url Ed25519 seed)`);
  }
  return new Uint8Array(seed);
}
