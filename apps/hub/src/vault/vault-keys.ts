import { closeSync, fsyncSync, mkdirSync, openSync, readFileSync, readdirSync, writeSync } from 'node:fs';
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
  /** Key-encryption key (AES-256-GCM) that wraps the per-event data keys made now (the newest). */
  readonly keyEncryption: VaultKey;
  /**
   * Earlier key-encryption keys, by kid: the data keys they wrapped are inside log events (immutable, never
   * re-wrapped), so every one of them stays for opening.
   */
  readonly previousKeyEncryption?: ReadonlyMap<string, Buffer>;
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
  const first = loadOrCreate(keysDir, FILES.keyEncryption, now);
  const keks = [{ ...first, createdAt: '' }, ...rotatedVaultKeks(keysDir)];
  const newest = keks.at(-1)!;
  const previous = new Map(keks.slice(0, -1).map((k) => [k.kid, k.key] as const));
  return {
    blindIndex: loadOrCreate(keysDir, FILES.blindIndex, now),
    keyEncryption: { kid: newest.kid, key: newest.key },
    ...(previous.size > 0 ? { previousKeyEncryption: previous } : {}),
  };
}

/** The file of a rotated vault key-encryption key: `key-encryption.<kid>.key.json` beside the first one. */
export function vaultKekFileName(kid: string): string {
  return `key-encryption.${kid}.key.json`;
}
const ROTATED_KEK = /^key-encryption\.(kek-[0-9a-f]{16})\.key\.json$/;

/** The rotated vault KEKs of a keys dir, oldest first (createdAt, then kid). */
function rotatedVaultKeks(keysDir: string): { kid: string; key: Buffer; createdAt: string }[] {
  const found: { kid: string; key: Buffer; createdAt: string }[] = [];
  for (const name of readdirSync(keysDir)) {
    const m = ROTATED_KEK.exec(name);
    if (m === null) continue;
    const path = join(keysDir, name);
    const o = JSON.parse(readFileSync(path, 'utf8')) as Partial<KeyFile>;
    const key = typeof o.key === 'string' ? Buffer.from(o.key, 'base64url') : Buffer.alloc(0);
    if (o.kid !== m[1] || o.purpose !== FILES.keyEncryption.purpose || key.length !== 32 || typeof o.createdAt !== 'string') {
      throw new Error(`key file ${path} is not a valid key-encryption key (needs kid ${m[1]}, purpose "key-encryption", a 32-byte base64url key and createdAt)`);
    }
    found.push({ kid: m[1]!, key, createdAt: o.createdAt });
  }
  return found.sort((a, b) => (a.createdAt === b.createdAt ? (a.kid < b.kid ? -1 : 1) : a.createdAt < b.createdAt ? -1 : 1));
}

/**
 * A new vault key-encryption key, written to the keys dir before it is used (created exclusively, mode
 * 0600, synced): answers its kid. `loadOrCreateVaultKeys` then takes it as the newest.
 */
export function createRotatedVaultKek(keysDir: string, now: Date): string {
  const kid = `${FILES.keyEncryption.prefix}-${randomBytes(8).toString('hex')}`;
  const file: KeyFile = { kid, purpose: FILES.keyEncryption.purpose, alg: FILES.keyEncryption.alg, key: randomBytes(32).toString('base64url'), createdAt: now.toISOString() };
  const fd = openSync(join(keysDir, vaultKekFileName(kid)), 'wx', 0o600);
  try {
    writeSync(fd, `${JSON.stringify(file, null, 2)}\n`);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  const dir = openSync(keysDir, 'r');
  try {
    fsyncSync(dir);
  } finally {
    closeSync(dir);
  }
  return kid;
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
