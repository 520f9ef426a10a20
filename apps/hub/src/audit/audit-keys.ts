import { chmodSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { generateSigningKey } from '#audit-log';

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
  mkdirSync(keysDir, { recursive: true, mode: 0o700 });
  const path = join(keysDir, CHECKPOINT_KEY_FILE);
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
    const created: KeyFile = { purpose: 'checkpoint-signing', alg: 'Ed25519', key: Buffer.from(generateSigningKey().privateKey).toString('base64url'), createdAt: now.toISOString() };
    try {
      writeFileSync(path, `${JSON.stringify(created, null, 2)}\n`, { mode: 0o600, flag: 'wx' });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    }
    text = readFileSync(path, 'utf8');
  }
  if ((statSync(path).mode & 0o077) !== 0) chmodSync(path, 0o600);
  const parsed = JSON.parse(text) as Partial<KeyFile>;
  const seed = typeof parsed.key === 'string' ? Buffer.from(parsed.key, 'base64url') : Buffer.alloc(0);
  if (parsed.purpose !== 'checkpoint-signing' || seed.length !== 32) {
    throw new Error(`key file ${path} is not a valid checkpoint signing key (needs purpose "checkpoint-signing" and a 32-byte base64url Ed25519 seed)`);
  }
  return new Uint8Array(seed);
}
