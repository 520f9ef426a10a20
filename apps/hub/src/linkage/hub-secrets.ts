import { hash, createPrivateKey, createPublicKey, generateKeyPairSync, randomBytes, sign, type KeyObject } from 'node:crypto';
import { join } from 'node:path';
import { CODE_KEY_BYTES, CodeLocator, newCodeKey } from '#mapper';
import { loadOrCreateSecretFile } from '../keys/key-file.js';

export const PROVISION_KEY_FILE = 'provision-signing.key.json';
export const OPERATOR_TOKEN_FILE = 'operator.token.json';
export const AUDITOR_TOKEN_FILE = 'auditor.token.json';
export const INSTANCE_FILE = 'instance.json';
export const CODE_KEY_FILE = 'agency-code.key.json';

/** A bearer token: 32 random bytes, base64url. Only its SHA-256 is ever compared or stored. */
export function newBearerToken(): string {
  return randomBytes(32).toString('base64url');
}

/** Lowercase hex SHA-256 of a presented token: what the registry keeps and compares. */
export function tokenDigest(token: string): string {
  // One-shot: no Hash object per request (every authenticated call digests its token).
  return hash('sha256', token, 'hex');
}

/** The header that names the provision key which made `hub-signature` (its key id). */
export const SIGNATURE_KEY_HEADER = 'hub-signature-key';

/** A provision signing key's id: the first 8 bytes of SHA-256 over its raw 32-byte public key, hex. */
export function provisionKeyId(publicKey: string): string {
  return hash('sha256', Buffer.from(publicKey, 'base64url'), 'hex').slice(0, 16);
}

/** One provision signing key, loaded: its private half never leaves this object. */
export interface ProvisionKey {
  readonly keyId: string;
  /** The raw 32-byte Ed25519 public key, base64url. */
  readonly publicKey: string;
  readonly key: KeyObject;
}

/** The key of this Ed25519 seed. */
export function provisionKeyOf(seed: Uint8Array): ProvisionKey {
  // PKCS#8 prefix of an Ed25519 private key (RFC 8410) followed by the 32-byte seed.
  const der = Buffer.concat([Buffer.from('302e020100300506032b657004220420', 'hex'), Buffer.from(seed)]);
  const key = createPrivateKey({ key: der, format: 'der', type: 'pkcs8' });
  const spki = createPublicKey(key).export({ format: 'der', type: 'spki' });
  const publicKey = spki.subarray(spki.length - 32).toString('base64url');
  return { keyId: provisionKeyId(publicKey), publicKey, key };
}

/** Reads a provision signing key file: `{ purpose: "provision-signing", alg: "Ed25519", key: <seed>, createdAt }`. */
export function provisionSeedOf(path: string, file: Record<string, unknown>): Uint8Array {
  const seed = typeof file['key'] === 'string' ? Buffer.from(file['key'], 'base64url') : Buffer.alloc(0);
  if (file['purpose'] !== 'provision-signing' || seed.length !== 32) {
    throw new Error(`key file ${path} is not a valid provision signing key (needs purpose "provision-signing" and a 32-byte base64url Ed25519 seed)`);
  }
  return seed;
}

/**
 * The Ed25519 key with which the hub signs every provision request and push it sends an intermediate
 * server (`hub-signature`, naming the key in `hub-signature-key`, see schemas/provision/README.md).
 * The first key is generated at first start; later ones are rotated in (docs/key-rotation.md,
 * apps/hub/src/keys/provision-key-rotation.ts) and the newest announced one signs. The public halves are
 * served at GET /v1/hub/keys. A separate key from the checkpoint key: one key, one purpose.
 */
export class ProvisionSigner {
  /** The first key (keys/provision-signing.key.json) and when it was made. */
  readonly first: Omit<ProvisionKey, 'key'> & { readonly createdAt: string | undefined };
  #active: ProvisionKey;

  constructor(seed: Uint8Array, createdAt?: string) {
    this.#active = provisionKeyOf(seed);
    this.first = { keyId: this.#active.keyId, publicKey: this.#active.publicKey, createdAt };
  }

  /** The public key that signs now (raw 32 bytes, base64url). */
  get publicKey(): string {
    return this.#active.publicKey;
  }

  /** The id of the key that signs now. */
  get keyId(): string {
    return this.#active.keyId;
  }

  /** Signs with this key from now on (a rotation, or the newest key the log announces at start). */
  use(key: ProvisionKey): void {
    this.#active = key;
  }

  /** The `hub-signature` header value for these exact body bytes. */
  signature(body: Buffer): string {
    return this.sign(body).signature;
  }

  /** The signature and the id of the key that made it, from one key. */
  sign(body: Buffer): { readonly signature: string; readonly keyId: string } {
    const active = this.#active;
    return { signature: `ed25519=${sign(null, body, active.key).toString('base64url')}`, keyId: active.keyId };
  }

  /** The headers of a signed call: `hub-signature` and `hub-signature-key`. */
  headers(body: Buffer): { readonly 'hub-signature': string; readonly 'hub-signature-key': string } {
    const { signature, keyId } = this.sign(body);
    return { 'hub-signature': signature, 'hub-signature-key': keyId };
  }

  static loadOrCreate(keysDir: string, now: Date = new Date()): ProvisionSigner {
    const path = join(keysDir, PROVISION_KEY_FILE);
    const file = loadOrCreateSecretFile(path, () => {
      const { privateKey } = generateKeyPairSync('ed25519');
      const pkcs8 = privateKey.export({ format: 'der', type: 'pkcs8' });
      return { purpose: 'provision-signing', alg: 'Ed25519', key: pkcs8.subarray(pkcs8.length - 32).toString('base64url'), createdAt: now.toISOString() };
    });
    return new ProvisionSigner(provisionSeedOf(path, file), typeof file['createdAt'] === 'string' ? file['createdAt'] : undefined);
  }
}

/**
 * The code key (AES-128) under which the hub seals, into every agency code it mints, where the person is
 * filed in the code mapper (libs/mapper/src/code-locator.ts): one Redis read per translation. Generated
 * at first start. Losing it loses no mapping (the log holds every code): the mapper rebuilds under a new
 * key and finds the older codes the long way. This is the ring's first key (generation 0); keys rotated in
 * later (`agency-code.<key id>.key.json`) join it from the log (apps/hub/src/keys/code-key-rotation.ts).
 */
export function loadOrCreateCodeLocator(keysDir: string, now: Date = new Date()): CodeLocator {
  const path = join(keysDir, CODE_KEY_FILE);
  const file = loadOrCreateSecretFile(path, () => ({ purpose: 'agency-code-locator', alg: 'AES-128', key: newCodeKey().toString('base64url'), createdAt: now.toISOString() }));
  const key = typeof file['key'] === 'string' ? Buffer.from(file['key'], 'base64url') : Buffer.alloc(0);
  if (file['purpose'] !== 'agency-code-locator' || key.length !== CODE_KEY_BYTES) {
    throw new Error(`key file ${path} is not a valid code key (needs purpose "agency-code-locator" and a ${CODE_KEY_BYTES}-byte base64url key)`);
  }
  return new CodeLocator(key);
}

/**
 * A principal's bearer token generated at first start into keys/<file> (mode 0600) for that person to
 * read: the operator's (registers, rotates and revokes agencies) and the auditor's (reads the raw log).
 * Two principals, two tokens: running the hub does not let one read every event, nor the reverse. The
 * hub keeps only the digest in memory; `POST /v1/key-rotations/{operator,auditor}-credential` replaces
 * them (apps/hub/src/keys/credential-rotation.ts). Answers the token.
 */
export function loadOrCreateTokenFile(keysDir: string, file: string, purpose: string, now: Date): string {
  const path = join(keysDir, file);
  const content = loadOrCreateSecretFile(path, () => ({ purpose, token: newBearerToken(), createdAt: now.toISOString() }));
  const token = content['token'];
  if (content['purpose'] !== purpose || typeof token !== 'string' || token.length < 32) {
    throw new Error(`${path} is not a valid ${purpose} file (needs purpose "${purpose}" and a token of at least 32 characters)`);
  }
  return token;
}

function loadOrCreateTokenDigest(keysDir: string, file: string, purpose: string, now: Date): string {
  return tokenDigest(loadOrCreateTokenFile(keysDir, file, purpose, now));
}

export function loadOrCreateOperatorTokenDigest(keysDir: string, now: Date = new Date()): string {
  return loadOrCreateTokenDigest(keysDir, OPERATOR_TOKEN_FILE, 'operator-token', now);
}

export function loadOrCreateAuditorTokenDigest(keysDir: string, now: Date = new Date()): string {
  return loadOrCreateTokenDigest(keysDir, AUDITOR_TOKEN_FILE, 'auditor-token', now);
}

/** This hub's instance id (random, not secret): names its keyspace in a shared Redis. */
export function loadOrCreateInstanceId(dataDir: string): string {
  const path = join(dataDir, INSTANCE_FILE);
  const file = loadOrCreateSecretFile(path, () => ({ instanceId: randomBytes(6).toString('hex') }));
  const id = file['instanceId'];
  if (typeof id !== 'string' || !/^[0-9a-f]{12}$/.test(id)) throw new Error(`${path} does not hold a 12-hex-digit instanceId`);
  return id;
}
