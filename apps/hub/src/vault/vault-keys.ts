import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { loadOrCreateSecretFile } from '../keys/key-file.js';

/** A 256-bit secret with its key id. */
export interface VaultKey {
  readonly kid: string;
  readonly key: Buffer;
}

export interface VaultKeys {
  /** HMAC-SHA256 key of the blind indexes (digests of numbers and resident record codes). */
  readonly blindIndex: VaultKey;
  /** Key-encryption key (AES-256-GCM) that wraps the per-event data keys. */
  readonly keyEncryption: VaultKey;
}

interface KeyFile {
  readonly kid: string;
  readonly purpose: string;
  readonly alg: string;
  /** base64url, 32 bytes. */
  readonly key: string;
  readonly createdAt: string;
}

const FILES = {
  blindIndex: { file: 'blind-index.key.json', purpose: 'blind-index', alg: 'HS256', prefix: 'bi' },
  keyEncryption: { file: 'key-encryption.key.json', purpose: 'key-encryption', alg: 'A256GCMKW', prefix: 'kek' },
} as const;

/**
 * Loads the vault keys from `keysDir`, generating each one that is missing (first start). Files are
 * created exclusively with mode 0600 in a 0700 directory. Losing these files makes the sealed
 * identifiers unreadable and the blind indexes unmatchable: back them up apart from the ledger.
 */
export function loadOrCreateVaultKeys(keysDir: string, now: Date = new Date()): VaultKeys {
  mkdirSync(keysDir, { recursive: true, mode: 0o700 });
  return {
    blindIndex: loadOrCreate(keysDir, FILES.blindIndex, now),
    keyEncryption: loadOrCreate(keysDir, FILES.keyEncryption, now),
  };
}

function loadOrCreate(dir: string, spec: (typeof FILES)[keyof typeof FILES], now: Date): VaultKey {
  const path = join(dir, spec.file);
  const parsed = loadOrCreateSecretFile(path, (): KeyFile & Record<string, unknown> => ({
    kid: `${spec.prefix}-${randomBytes(8).toString('hex')}`,
    purpose: spec.purpose,
    alg: spec.alg,
    key: randomBytes(32).toString('base64url'),
    createdAt: now.toISOString(),
  })) as Partial<KeyFile>;
  const key = typeof parsed.key === 'string' ? Buffer.from(parsed.key, 'base64url') : Buffer.alloc(0);
  if (typeof parsed.kid !== 'string' || parsed.kid.length === 0 || key.length !== 32 || parsed.purpose !== spec.purpose) {
    throw new Error(`key file ${path} is not a valid ${spec.purpose} key (needs kid, purpose "${spec.purpose}" and a 32-byte base64url key)`);
  }
  return { kid: parsed.kid, key };
}
