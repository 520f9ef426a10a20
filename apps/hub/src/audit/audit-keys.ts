import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { generateSigningKey, keyId, publicKeyOf, toHex } from '#audit-log';
import { loadOrCreateSecretFile } from '../keys/key-file.js';

export const CHECKPOINT_KEY_FILE = 'checkpoint-signing.key.json';

/** A rotated key: `checkpoint-signing.<8 hex key id>.key.json`, beside the first key's file. */
const ROTATED_KEY_FILE = /^checkpoint-signing\.([0-9a-f]{8})\.key\.json$/;

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
 * only its public half is served (GET /v1/audit/verifier-key). It is the first key of the chain a
 * verifier pins; later keys are rotated in (checkpoint-key-rotations) and kept in their own files.
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

function parseSeed(path: string, parsed: Partial<KeyFile>): Uint8Array {
  const seed = typeof parsed.key === 'string' ? Buffer.from(parsed.key, 'base64url') : Buffer.alloc(0);
  if (parsed.purpose !== 'checkpoint-signing' || seed.length !== 32) {
    throw new Error(`key file ${path} is not a valid checkpoint signing key (needs purpose "checkpoint-signing" and a 32-byte base64url Ed25519 seed)`);
  }
  return new Uint8Array(seed);
}

/**
 * Generates a rotated checkpoint key and stores it (mode 0600, created exclusively) under its key id,
 * BEFORE it is announced in the log: a key the log announces always has its seed here. A key stored
 * but never announced (a crash, or a refused append in between) is never used to sign.
 */
export function createRotatedCheckpointKey(keysDir: string, origin: string, now: Date): { readonly seed: Uint8Array; readonly keyIdHex: string } {
  for (;;) {
    const seed = generateSigningKey().privateKey;
    const keyIdHex = toHex(keyId(origin, publicKeyOf(seed)));
    const path = join(keysDir, `checkpoint-signing.${keyIdHex}.key.json`);
    let created = false;
    const parsed = loadOrCreateSecretFile(path, (): KeyFile & Record<string, unknown> => {
      created = true;
      return { purpose: 'checkpoint-signing', alg: 'Ed25519', key: Buffer.from(seed).toString('base64url'), createdAt: now.toISOString() };
    });
    // A 32-bit key id collision with an older file: draw again.
    if (created) return { seed: parseSeed(path, parsed as Partial<KeyFile>), keyIdHex };
  }
}

/** The seed of a rotated key, by its key id (hex), if this hub holds it. */
export function loadRotatedCheckpointKey(keysDir: string, keyIdHex: string): Uint8Array | undefined {
  const name = `checkpoint-signing.${keyIdHex}.key.json`;
  if (!ROTATED_KEY_FILE.test(name) || !readdirSync(keysDir).includes(name)) return undefined;
  const path = join(keysDir, name);
  return parseSeed(path, loadOrCreateSecretFile(path, () => ({})) as Partial<KeyFile>);
}

/** The public halves of every checkpoint key this hub holds: the first, then each rotated one (for the start self-check). */
export function loadCheckpointPublicKeys(keysDir: string): Uint8Array[] {
  const rotated = readdirSync(keysDir)
    .filter((f) => ROTATED_KEY_FILE.test(f))
    .sort()
    .map((f) => publicKeyOf(parseSeed(join(keysDir, f), loadOrCreateSecretFile(join(keysDir, f), () => ({})) as Partial<KeyFile>)));
  return [publicKeyOf(loadOrCreateCheckpointKey(keysDir)), ...rotated];
}
