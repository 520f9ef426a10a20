import { Inject, Injectable } from '@nestjs/common';
import { generateKeyPairSync } from 'node:crypto';
import type { AppendResult, EventStore } from '#ledger';
import { HubConfig } from '../config/hub-config.js';
import type { Leadership } from '../leadership/leadership.js';
import { LEADERSHIP } from '../leadership/tokens.js';
import { CLOCK, EVENT_STORE, type Clock } from '../ledger/tokens.js';
import { ProvisionSigner, provisionKeyOf, provisionSeedOf, type ProvisionKey } from '../linkage/hub-secrets.js';
import { RotatedKeyRing, readRotatedKeyFile, storeRotatedKeyFile } from './rotated-key-ring.js';

/** The stream of ProvisionSigningKeyRotated events, in rotation order. */
export const PROVISION_KEY_STREAM = '$provision-signing-keys';
export const PROVISION_SIGNING_KEY_ROTATED = 'ProvisionSigningKeyRotated';
/**
 * How long an intermediate server still accepts a signature by a key after the hub retired it: the
 * freshness window of a provision request (schemas/provision/README.md), so that a request the old key
 * signed just before the rotation is accepted while it may still be fresh, and nothing signed later.
 */
export const RETIRED_KEY_ACCEPTED_MS = 300_000;

/** A rotated key: `provision-signing.<16 hex key id>.key.json`, beside the first key's file. */
const ROTATED_KEY_PREFIX = 'provision-signing';

/** Data of ProvisionSigningKeyRotated (schemas/events/provision-signing-key-rotated.v1.json): public. */
export interface ProvisionSigningKeyRotatedData {
  readonly keyId: string;
  readonly publicKey: string;
  readonly previousKeyId: string;
  readonly rotatedAt: string;
}

/** One key of the set GET /v1/hub/keys serves. */
export interface ServedProvisionKey {
  readonly keyId: string;
  /** The raw 32-byte Ed25519 public key, base64url. */
  readonly publicKey: string;
  /** Since when it signs: the first key's creation, a rotated key's announcement. */
  readonly from?: string;
  /** When the next key replaced it (absent for the key that signs now). */
  readonly until?: string;
  /** Until when an intermediate server accepts its signatures: `until` + RETIRED_KEY_ACCEPTED_MS. */
  readonly acceptedUntil?: string;
  /** Position of the ProvisionSigningKeyRotated event that announced it (absent for the first key). */
  readonly announcedAt?: number;
}

/** GET /v1/hub/keys: the key that signs now (`provisionSigningKey`, as before) and every key, first to newest. */
export interface ServedHubKeys {
  readonly provisionSigningKey: string;
  readonly provisionSigningKeyId: string;
  readonly provisionSigningKeys: readonly ServedProvisionKey[];
}

/** The answer to a rotation. */
export interface ProvisionKeyRotation {
  readonly keyId: string;
  readonly publicKey: string;
  readonly previousKeyId: string;
  /** Position of the ProvisionSigningKeyRotated event. */
  readonly position: number;
  readonly serial: string;
  readonly rotatedAt: string;
  /** Until when intermediate servers still accept the previous key's signatures. */
  readonly previousAcceptedUntil: string;
}

/**
 * Generates a rotated provision signing key and stores it (mode 0600, created exclusively) under its key
 * id, BEFORE it is announced in the log: a key the log announces always has its seed here. A key stored
 * but never announced (a crash, or a refused append in between) is never used to sign.
 */
export function createRotatedProvisionKey(keysDir: string, now: Date): ProvisionKey {
  const { path, file } = storeRotatedKeyFile(keysDir, ROTATED_KEY_PREFIX, () => {
    const { privateKey } = generateKeyPairSync('ed25519');
    const pkcs8 = privateKey.export({ format: 'der', type: 'pkcs8' });
    const seed = pkcs8.subarray(pkcs8.length - 32);
    return { keyId: provisionKeyOf(seed).keyId, file: { purpose: 'provision-signing', alg: 'Ed25519', key: seed.toString('base64url'), createdAt: now.toISOString() } };
  });
  return provisionKeyOf(provisionSeedOf(path, file));
}

/** A rotated key, by its id, if this hub holds its file. */
export function loadRotatedProvisionKey(keysDir: string, keyId: string): ProvisionKey | undefined {
  const held = readRotatedKeyFile(keysDir, ROTATED_KEY_PREFIX, keyId);
  if (held === undefined) return undefined;
  const key = provisionKeyOf(provisionSeedOf(held.path, held.file));
  if (key.keyId !== keyId) throw new Error(`key file ${held.path} holds key ${key.keyId}, not ${keyId}`);
  return key;
}

/**
 * The provision signing key's rotation (docs/key-rotation.md): the command, the key set served to
 * intermediate servers, and which key signs. At start, and when this hub takes over as leader, the
 * signer signs with the newest key the log announces (stream `$provision-signing-keys`). A retired key
 * signs nothing more; intermediate servers accept its signatures for RETIRED_KEY_ACCEPTED_MS.
 */
@Injectable()
export class ProvisionKeyRing extends RotatedKeyRing<ProvisionSigningKeyRotatedData, ProvisionKey, ProvisionKeyRotation> {
  constructor(
    config: HubConfig,
    @Inject(EVENT_STORE) store: EventStore,
    @Inject(CLOCK) clock: Clock,
    @Inject(LEADERSHIP) leadership: Leadership | null,
    private readonly signer: ProvisionSigner,
  ) {
    super({ stream: PROVISION_KEY_STREAM, type: PROVISION_SIGNING_KEY_ROTATED, what: 'provision signing key', logger: 'ProvisionKeys' }, config, store, clock, leadership);
  }

  /**
   * Signs with the newest key the log announces. If this hub lacks its file (hubs on one log MUST share
   * the keys dir), it keeps the newest announced key it holds and says why: intermediate servers then
   * refuse its signatures once that key's acceptance ends (HUB_SIGNATURE_KEY_RETIRED).
   */
  async load(): Promise<void> {
    const ids = (await this.announced()).map((e) => (e.data as ProvisionSigningKeyRotatedData).keyId);
    let held = -1;
    for (let k = ids.length - 1; k >= 0 && held < 0; k--) {
      const key = loadRotatedProvisionKey(this.config.keysDir, ids[k]!);
      if (key === undefined) continue;
      this.signer.use(key);
      held = k;
    }
    // None held: the key it signs with already (the first, at start).
    this.setProblem(held === ids.length - 1 ? undefined : `the log announces provision signing key ${ids.at(-1)!}, whose file is not in ${this.config.keysDir}; signing with ${this.signer.keyId}`);
  }

  /** Every provision signing key of this log, first to newest, as announced in it (read at each call). */
  async served(): Promise<ServedHubKeys> {
    const announced = (await this.announced()).map((e) => ({ data: e.data as ProvisionSigningKeyRotatedData, position: e.position }));
    const first = this.signer.first;
    const keys: ServedProvisionKey[] = [];
    const all = [{ keyId: first.keyId, publicKey: first.publicKey, from: first.createdAt, announcedAt: undefined as number | undefined }, ...announced.map((a) => ({ keyId: a.data.keyId, publicKey: a.data.publicKey, from: a.data.rotatedAt, announcedAt: a.position as number | undefined }))];
    for (const [k, key] of all.entries()) {
      const until = announced[k]?.data.rotatedAt;
      keys.push({
        keyId: key.keyId,
        publicKey: key.publicKey,
        ...(key.from === undefined ? {} : { from: key.from }),
        ...(until === undefined ? {} : { until, acceptedUntil: new Date(Date.parse(until) + RETIRED_KEY_ACCEPTED_MS).toISOString() }),
        ...(key.announcedAt === undefined ? {} : { announcedAt: key.announcedAt }),
      });
    }
    const current = keys.at(-1)!;
    return { provisionSigningKey: current.publicKey, provisionSigningKeyId: current.keyId, provisionSigningKeys: keys };
  }

  /**
   * The rotation (operator command, `rotate`): a new Ed25519 key is stored in the keys dir (0600,
   * exclusively), announced by a ProvisionSigningKeyRotated event (its own serial), and signs every
   * provision request and push from then on. On KurrentDB only the leader rotates.
   */
  protected make(last: ProvisionSigningKeyRotatedData | undefined): { key: ProvisionKey; data: ProvisionSigningKeyRotatedData } {
    const previousKeyId = last === undefined ? this.signer.first.keyId : last.keyId;
    const now = this.clock();
    const key = createRotatedProvisionKey(this.config.keysDir, now);
    return { key, data: { keyId: key.keyId, publicKey: key.publicKey, previousKeyId, rotatedAt: now.toISOString() } };
  }

  /** It signs from now on. */
  protected adopt(key: ProvisionKey): void {
    this.signer.use(key);
    this.setProblem(undefined);
  }

  protected answer(data: ProvisionSigningKeyRotatedData, result: AppendResult): ProvisionKeyRotation {
    return {
      keyId: data.keyId,
      publicKey: data.publicKey,
      previousKeyId: data.previousKeyId,
      position: result.firstPosition,
      serial: result.serial,
      rotatedAt: data.rotatedAt,
      previousAcceptedUntil: new Date(Date.parse(data.rotatedAt) + RETIRED_KEY_ACCEPTED_MS).toISOString(),
    };
  }
}
