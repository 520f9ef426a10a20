import { randomBytes } from 'node:crypto';
import { SealingError } from './errors.js';

/**
 * The hub's sealing keys (one file, `keys/sealing.key.json`). With them and the key ring a reader opens
 * every sealed field of the log: the hub, and a supervisory auditor given a copy ("read key").
 */
export interface SealingKeys {
  /** Names this key set (stored in the key ring's meta, so a ring never opens under another set). */
  readonly kid: string;
  /** AES-256-GCM: seals each event's key reference (whose key, which period) under a fresh IV. */
  readonly locator: Buffer;
  /** AES-256-GCM: wraps the person and period keys kept in the key ring. */
  readonly keyEncryption: Buffer;
  /** HMAC-SHA256: keyed handles (key-ring owners, projection rows, stream ids, claims). */
  readonly handle: Buffer;
  /** The hub's own base key: sealed fields that belong to no person (credentials, sources). */
  readonly hub: Buffer;
}

export const SEALING_KEY_PURPOSE = 'linkage-ledger/sealing-keys/v1';
const FIELDS = ['locatorKey', 'keyEncryptionKey', 'handleKey', 'hubKey'] as const;

/** A fresh key set, as the hub writes it at first start. */
export function generateSealingKeysFile(now: Date): Record<string, string> {
  const file: Record<string, string> = { purpose: SEALING_KEY_PURPOSE, kid: `seal-${randomBytes(8).toString('hex')}`, createdAt: now.toISOString() };
  for (const f of FIELDS) file[f] = randomBytes(32).toString('base64url');
  return file;
}

/** Reads a key file's JSON object; throws INVALID_KEYS naming what is wrong. */
export function parseSealingKeys(json: unknown, where = 'the sealing key file'): SealingKeys {
  if (typeof json !== 'object' || json === null) throw new SealingError('INVALID_KEYS', `${where} does not hold a JSON object`);
  const o = json as Record<string, unknown>;
  if (o['purpose'] !== SEALING_KEY_PURPOSE) throw new SealingError('INVALID_KEYS', `${where} is not a sealing key file (purpose must be "${SEALING_KEY_PURPOSE}")`);
  if (typeof o['kid'] !== 'string' || o['kid'].length === 0) throw new SealingError('INVALID_KEYS', `${where} has no kid`);
  const key = (name: (typeof FIELDS)[number]): Buffer => {
    const v = o[name];
    const b = typeof v === 'string' ? Buffer.from(v, 'base64url') : Buffer.alloc(0);
    if (b.length !== 32) throw new SealingError('INVALID_KEYS', `${where}: ${name} must be 32 bytes of base64url`);
    return b;
  };
  return { kid: o['kid'], locator: key('locatorKey'), keyEncryption: key('keyEncryptionKey'), handle: key('handleKey'), hub: key('hubKey') };
}
