import { randomBytes } from 'node:crypto';
import { closeSync, fsyncSync, openSync, readFileSync, readdirSync, renameSync, unlinkSync, writeSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
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
  /** AES-256-GCM: wraps the person and period keys kept in the key ring (the current key-encryption key). */
  readonly keyEncryption: Buffer;
  /**
   * The id of `keyEncryption`, named by every wrap made under it. Absent: the key set's own kid (the first
   * key-encryption key, the one in the sealing key file itself, whose wraps predate rotation).
   */
  readonly kekId?: string;
  /** Earlier key-encryption keys still held, by id: wraps a rotation has not re-wrapped yet open under them. */
  readonly previousKeks?: ReadonlyMap<string, Buffer>;
  /** Asked for a key-encryption key that neither `keyEncryption` nor `previousKeks` holds (e.g. one another hub rotated to, read from the shared keys dir). */
  readonly loadKek?: (kekId: string) => Buffer | undefined;
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
  // A file whose first key-encryption key was retired (after a rotation re-wrapped every key) holds none:
  // the KEK files beside it do (readSealingKeys).
  const keyEncryption = o['keyEncryptionKey'] === undefined && Array.isArray(o['retiredKeks']) ? Buffer.alloc(0) : key('keyEncryptionKey');
  return { kid: o['kid'], locator: key('locatorKey'), keyEncryption, handle: key('handleKey'), hub: key('hubKey') };
}

/** The id of the key-encryption key that wraps keys made now. */
export function currentKekId(keys: SealingKeys): string {
  return keys.kekId ?? keys.kid;
}

/** Every key-encryption key id the key set holds now (current first). */
export function heldKekIds(keys: SealingKeys): string[] {
  return [currentKekId(keys), ...(keys.previousKeks?.keys() ?? [])];
}

/** A key-encryption key by its id, or undefined when this key set does not hold it (any more). */
export function kekById(keys: SealingKeys, kekId: string): Buffer | undefined {
  if (kekId === currentKekId(keys)) return keys.keyEncryption.length === 32 ? keys.keyEncryption : undefined;
  return keys.previousKeks?.get(kekId) ?? keys.loadKek?.(kekId);
}

export const SEALING_KEK_PURPOSE = 'linkage-ledger/sealing-kek/v1';
/** The file of a rotated key-encryption key, beside the sealing key file: `sealing-kek.<kek id>.key.json`. */
export function sealingKekFileName(kekId: string): string {
  return `sealing-kek.${kekId}.key.json`;
}
const KEK_FILE = /^sealing-kek\.(kek-[0-9a-f]{16})\.key\.json$/;

/** A new key-encryption key's file (JSON object) for a key set: `{ purpose, keySet, kid, key, createdAt }`. */
export function generateSealingKekFile(keySet: string, now: Date): { kid: string; file: Record<string, string> } {
  const kid = `kek-${randomBytes(8).toString('hex')}`;
  return { kid, file: { purpose: SEALING_KEK_PURPOSE, keySet, kid, key: randomBytes(32).toString('base64url'), createdAt: now.toISOString() } };
}

/** Reads one KEK file; throws INVALID_KEYS naming what is wrong. */
export function parseSealingKek(json: unknown, keySet: string, where: string): { kid: string; key: Buffer; createdAt: string } {
  const o = (typeof json === 'object' && json !== null ? json : {}) as Record<string, unknown>;
  if (o['purpose'] !== SEALING_KEK_PURPOSE) throw new SealingError('INVALID_KEYS', `${where} is not a key-encryption key file (purpose must be "${SEALING_KEK_PURPOSE}")`);
  if (o['keySet'] !== keySet) throw new SealingError('INVALID_KEYS', `${where} belongs to key set ${String(o['keySet'])}, not ${keySet}`);
  const key = typeof o['key'] === 'string' ? Buffer.from(o['key'], 'base64url') : Buffer.alloc(0);
  if (typeof o['kid'] !== 'string' || !/^kek-[0-9a-f]{16}$/.test(o['kid']) || key.length !== 32 || typeof o['createdAt'] !== 'string') {
    throw new SealingError('INVALID_KEYS', `${where} needs a kid (kek-<16 hex>), a 32-byte base64url key and createdAt`);
  }
  return { kid: o['kid'], key, createdAt: o['createdAt'] };
}

/**
 * The sealing keys of a key file and of the rotated key-encryption keys beside it
 * (`sealing-kek.<kid>.key.json` in the same directory, same key set): the newest of them (by createdAt)
 * wraps keys made now, the others (and the file's own first KEK, while it holds it) open the wraps that
 * name them. A hub and an auditor read a key file the same way: copy the file and its KEK files together.
 */
export function readSealingKeys(path: string): SealingKeys {
  const base = parseSealingKeys(JSON.parse(readFileSync(path, 'utf8')) as unknown, path);
  const dir = dirname(path);
  const keks = readKekFiles(dir, base.kid);
  const newest = keks.at(-1);
  const previous = new Map<string, Buffer>();
  if (base.keyEncryption.length === 32) previous.set(base.kid, base.keyEncryption);
  for (const k of keks.slice(0, -1)) previous.set(k.kid, k.key);
  // A KEK another hub rotated to after this one read the dir (a shared keys dir): read when a wrap names it.
  const loadKek = (kekId: string): Buffer | undefined => {
    if (!/^kek-[0-9a-f]{16}$/.test(kekId)) return undefined;
    try {
      return parseSealingKek(JSON.parse(readFileSync(join(dir, sealingKekFileName(kekId)), 'utf8')) as unknown, base.kid, sealingKekFileName(kekId)).key;
    } catch {
      return undefined;
    }
  };
  if (newest === undefined) {
    if (base.keyEncryption.length !== 32) throw new SealingError('INVALID_KEYS', `${path} holds no key-encryption key and no ${basename(sealingKekFileName('kek-…'))} file is beside it`);
    return { ...base, loadKek };
  }
  previous.delete(newest.kid);
  return { ...base, keyEncryption: newest.key, kekId: newest.kid, previousKeks: previous, loadKek };
}

/** The KEK files of a key set in a directory, oldest first (createdAt, then kid). */
export function readKekFiles(dir: string, keySet: string): { kid: string; key: Buffer; createdAt: string }[] {
  const found: { kid: string; key: Buffer; createdAt: string }[] = [];
  for (const name of readdirSync(dir)) {
    if (!KEK_FILE.test(name)) continue;
    found.push(parseSealingKek(JSON.parse(readFileSync(join(dir, name), 'utf8')) as unknown, keySet, join(dir, name)));
  }
  return found.sort((a, b) => (a.createdAt === b.createdAt ? (a.kid < b.kid ? -1 : 1) : a.createdAt < b.createdAt ? -1 : 1));
}

/** Writes a new secret file: created exclusively (never over another), mode 0600, synced before it is used. */
export function writeSecretFileExclusive(path: string, content: Record<string, unknown>): void {
  const fd = openSync(path, 'wx', 0o600);
  try {
    writeSync(fd, `${JSON.stringify(content, null, 2)}\n`);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  syncDir(dirname(path));
}

/**
 * Retires key-encryption keys no wrap names any more: their KEK files are deleted, and the sealing key
 * file's own first KEK is dropped from it (the file rewritten whole: a new file, synced, renamed over the
 * old one, so a crash leaves one or the other). Answers the ids retired.
 */
export function retireSealingKeks(path: string, kekIds: readonly string[]): string[] {
  const retired: string[] = [];
  const o = JSON.parse(readFileSync(path, 'utf8')) as Record<string, unknown>;
  const dir = dirname(path);
  for (const id of kekIds) {
    if (id === o['kid']) {
      if (o['keyEncryptionKey'] === undefined) continue;
      if (readKekFiles(dir, id).length === 0) throw new SealingError('INVALID_KEYS', `the first key-encryption key of ${path} is its only one: it is not retired`);
      const next: Record<string, unknown> = { ...o, retiredKeks: [...((o['retiredKeks'] as string[] | undefined) ?? []), id] };
      delete next['keyEncryptionKey'];
      const tmp = `${path}.${randomBytes(4).toString('hex')}.next`;
      writeSecretFileExclusive(tmp, next);
      renameSync(tmp, path);
      syncDir(dir);
      retired.push(id);
    } else {
      try {
        unlinkSync(join(dir, sealingKekFileName(id)));
        retired.push(id);
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
      }
    }
  }
  if (retired.length > 0) syncDir(dir);
  return retired;
}

function syncDir(dir: string): void {
  const fd = openSync(dir, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}
