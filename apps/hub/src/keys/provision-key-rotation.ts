import { Inject, Injectable, Logger, type OnApplicationBootstrap } from '@nestjs/common';
import { generateKeyPairSync } from 'node:crypto';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import type { EventStore, RecordedEvent } from '#ledger';
import { HubConfig } from '../config/hub-config.js';
import { HubProblem } from '../http/hub-problem.js';
import type { Leadership } from '../leadership/leadership.js';
import { LEADERSHIP } from '../leadership/tokens.js';
import { CLOCK, EVENT_STORE, type Clock } from '../ledger/tokens.js';
import { ProvisionSigner, provisionKeyOf, provisionSeedOf, type ProvisionKey } from '../linkage/hub-secrets.js';
import { loadOrCreateSecretFile } from './key-file.js';
import { readAnnouncements } from './announcements.js';

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
const ROTATED_KEY_FILE = /^provision-signing\.([0-9a-f]{16})\.key\.json$/;

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
  for (;;) {
    const { privateKey } = generateKeyPairSync('ed25519');
    const pkcs8 = privateKey.export({ format: 'der', type: 'pkcs8' });
    const seed = pkcs8.subarray(pkcs8.length - 32);
    const key = provisionKeyOf(seed);
    const path = join(keysDir, `provision-signing.${key.keyId}.key.json`);
    let created = false;
    const file = loadOrCreateSecretFile(path, () => {
      created = true;
      return { purpose: 'provision-signing', alg: 'Ed25519', key: seed.toString('base64url'), createdAt: now.toISOString() };
    });
    // A 64-bit key id met again: draw again.
    if (created) return provisionKeyOf(provisionSeedOf(path, file));
  }
}

/** A rotated key, by its id, if this hub holds its file. */
export function loadRotatedProvisionKey(keysDir: string, keyId: string): ProvisionKey | undefined {
  const name = `provision-signing.${keyId}.key.json`;
  if (!ROTATED_KEY_FILE.test(name) || !readdirSync(keysDir).includes(name)) return undefined;
  const path = join(keysDir, name);
  const key = provisionKeyOf(provisionSeedOf(path, loadOrCreateSecretFile(path, () => ({}))));
  if (key.keyId !== keyId) throw new Error(`key file ${path} holds key ${key.keyId}, not ${keyId}`);
  return key;
}

/**
 * The provision signing key's rotation (docs/key-rotation.md): the command, the key set served to
 * intermediate servers, and which key signs. At start, and when this hub takes over as leader, the
 * signer signs with the newest key the log announces (stream `$provision-signing-keys`).
 */
@Injectable()
export class ProvisionKeyRing implements OnApplicationBootstrap {
  private readonly logger = new Logger('ProvisionKeys');
  #rotating: Promise<unknown> = Promise.resolve();
  #problem: string | undefined;

  constructor(
    private readonly config: HubConfig,
    @Inject(EVENT_STORE) private readonly store: EventStore,
    @Inject(CLOCK) private readonly clock: Clock,
    @Inject(LEADERSHIP) private readonly leadership: Leadership | null,
    private readonly signer: ProvisionSigner,
  ) {
    // The previous leader may have rotated: sign with the newest key the log announces.
    leadership?.onTakeover(() => this.load());
  }

  async onApplicationBootstrap(): Promise<void> {
    await this.load();
  }

  /** Why this hub does not sign with the newest announced key, if it does not. */
  get problem(): string | undefined {
    return this.#problem;
  }

  /** The announcements, oldest first. */
  async announced(): Promise<readonly RecordedEvent[]> {
    return readAnnouncements(this.store, PROVISION_KEY_STREAM, PROVISION_SIGNING_KEY_ROTATED);
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
    this.#problem = held === ids.length - 1 ? undefined : `the log announces provision signing key ${ids.at(-1)!}, whose file is not in ${this.config.keysDir}; signing with ${this.signer.keyId}`;
    if (this.#problem !== undefined) this.logger.error(this.#problem);
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
   * Rotates the provision signing key (operator command): a new Ed25519 key is stored in the keys dir
   * (0600, exclusively), announced by a ProvisionSigningKeyRotated event (its own serial), and signs
   * every provision request and push from then on. On KurrentDB only the leader rotates.
   */
  rotate(metadata: { readonly actor: string; readonly correlationId: string }): Promise<ProvisionKeyRotation> {
    if (this.leadership !== null && !this.leadership.acceptsCommands) {
      throw new HubProblem('NOT_LEADER', `this hub (${this.leadership.instanceId}) is a standby and does not rotate the provision signing key; nothing was recorded: send the command to the leader`, { instanceId: this.leadership.instanceId });
    }
    // One rotation at a time: each names the one before.
    const run = this.#rotating.catch(() => {}).then(() => this.#rotate(metadata));
    this.#rotating = run;
    return run;
  }

  async #rotate(metadata: { readonly actor: string; readonly correlationId: string }): Promise<ProvisionKeyRotation> {
    const announced = await this.announced();
    const last = announced.at(-1);
    const previousKeyId = last === undefined ? this.signer.first.keyId : (last.data as ProvisionSigningKeyRotatedData).keyId;
    const now = this.clock();
    const next = createRotatedProvisionKey(this.config.keysDir, now);
    const data: ProvisionSigningKeyRotatedData = { keyId: next.keyId, publicKey: next.publicKey, previousKeyId, rotatedAt: now.toISOString() };
    const result = await this.store.append({
      streamId: PROVISION_KEY_STREAM,
      expectedRevision: last === undefined ? 'no_stream' : last.streamRevision,
      serial: { allocate: true },
      events: [{ type: PROVISION_SIGNING_KEY_ROTATED, data, terminal: 'completed' }],
      metadata,
    });
    // Announced (durable): it signs from now on.
    this.signer.use(next);
    this.#problem = undefined;
    this.logger.log(`provision signing key rotated: ${previousKeyId} -> ${next.keyId} (announced at ${result.firstPosition})`);
    return {
      keyId: next.keyId,
      publicKey: next.publicKey,
      previousKeyId,
      position: result.firstPosition,
      serial: result.serial,
      rotatedAt: data.rotatedAt,
      previousAcceptedUntil: new Date(now.getTime() + RETIRED_KEY_ACCEPTED_MS).toISOString(),
    };
  }
}
