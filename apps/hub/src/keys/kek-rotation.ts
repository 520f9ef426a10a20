import { Inject, Injectable, Logger, type OnApplicationBootstrap } from '@nestjs/common';
import { EventBus } from '@nestjs/cqrs';
import { join } from 'node:path';
import type { EventStore } from '#ledger';
import {
  KurrentKeyring,
  REWRAP_BATCH,
  SqliteKeyring,
  currentKekId,
  generateSealingKekFile,
  heldKekIds,
  readSealingKeys,
  retireSealingKeks,
  sealingKekFileName,
  writeSecretFileExclusive,
  type Keyring,
  type WrapCounts,
} from '#sealing';
import { HubConfig } from '../config/hub-config.js';
import { HubProblem } from '../http/hub-problem.js';
import type { Leadership } from '../leadership/leadership.js';
import { LEADERSHIP } from '../leadership/tokens.js';
import { EventsAppended } from '../ledger/events-appended.event.js';
import { CLOCK, EVENT_STORE, type Clock } from '../ledger/tokens.js';
import { KEYRING } from '../sealing/sealing.providers.js';
import { SEALING_KEY_FILE } from '../sealing/sealing-keys.js';
import { IdentifierVault } from '../vault/identifier-vault.js';
import { createRotatedVaultKek, loadOrCreateVaultKeys } from '../vault/vault-keys.js';
import { OneAtATime, appendRotation, refuseOnStandby, type RotationMetadata } from './rotation.js';

/** Which key-encryption key: the key ring's (keys/sealing.key.json) or the identifier vault's (keys/key-encryption.key.json). */
export type KekName = 'sealing' | 'vault';
export const KEK_NAMES: readonly KekName[] = ['sealing', 'vault'];

/** The stream of KeyEncryptionKeyRotated events, in rotation order. */
export const KEK_ROTATION_STREAM = '$key-encryption-keys';
export const KEY_ENCRYPTION_KEY_ROTATED = 'KeyEncryptionKeyRotated';

/** Data of a KeyEncryptionKeyRotated event: key ids and counts, all public (I10; schemas/events/key-encryption-key-rotated.v1.json). */
export interface KeyEncryptionKeyRotatedData {
  readonly kek: KekName;
  /** Id of the new key-encryption key. */
  readonly kekId: string;
  /** Ids of the key-encryption keys it replaced (what was wrapped under them is re-wrapped, or, for the vault, kept for opening). */
  readonly previousKekIds: readonly string[];
  /** Person keys of the key ring re-wrapped under the new KEK (0 for the vault). */
  readonly rewrappedPersonKeys: number;
  /** Period keys of the key ring re-wrapped under the new KEK (0 for the vault). */
  readonly rewrappedPeriodKeys: number;
  /** Earlier KEKs removed from the keys dir because no wrap names them any more. */
  readonly retiredKekIds: readonly string[];
  /** Earlier KEKs still held because wraps name them (the vault's: inside log events, for ever). */
  readonly keptKekIds: readonly string[];
  /** When the rotation began (the new KEK was stored). */
  readonly rotatedAt: string;
}

/** What the command answers: the event's data, where the log holds it, and what still names the kept KEKs. */
export interface KekRotation extends KeyEncryptionKeyRotatedData {
  readonly serial: string;
  readonly position: number;
}

/** GET status of one KEK. */
export interface KekStatus {
  readonly kek: KekName;
  readonly kekId: string;
  /** Every KEK id the hub holds, current first. */
  readonly heldKekIds: readonly string[];
  /** Sealing: live wraps of the key ring per KEK id (a held KEK no count names can be retired: a rotation does it). */
  readonly wraps?: WrapCounts;
  /** Sealing: a re-wrap begun and not finished (a crash): the next start (or the next rotation) completes it. */
  readonly pending?: { readonly kekId: string; readonly previousKekIds: readonly string[]; readonly startedAt: string; readonly rewrappedPersonKeys: number; readonly rewrappedPeriodKeys: number };
  /** Why the earlier KEKs stay (vault). */
  readonly note?: string;
}

/** The ring's meta key of a re-wrap in progress (JSON of PendingRewrap): written before the first page, removed after the event. */
const PENDING_META = 'kek-rotation-pending';

interface PendingRewrap {
  readonly kekId: string;
  readonly previousKekIds: readonly string[];
  readonly startedAt: string;
  /** Key id (hex) after which the next page starts; null: from the start. 'done' once every page is re-wrapped. */
  readonly after: string | null;
  readonly rewrappedPersonKeys: number;
  readonly rewrappedPeriodKeys: number;
}

export const VAULT_NOTE =
  'The vault wraps each data key inside the log event that holds the sealed value (numbering events and notices written before the sealer): the log is append-only, so those wraps are never re-wrapped and every earlier vault KEK stays, for opening. New values (none in current schemas) are wrapped under the newest.';

/** The hub's own key ring, as the rotation uses it (SQLite file, or a shared ring's local copy). */
function localOf(ring: Keyring): SqliteKeyring {
  if (ring instanceof KurrentKeyring) return ring.local;
  if (ring instanceof SqliteKeyring) return ring;
  throw new Error('the key ring is neither the SQLite ring nor the shared KurrentDB ring: it cannot be re-wrapped');
}

/**
 * Rotation of the hub's key-encryption keys (docs/key-rotation.md).
 *
 * Sealing: a new KEK is stored as `keys/sealing-kek.<kid>.key.json` (0600, created exclusively, synced)
 * before anything is wrapped under it; the ring then wraps every key it makes under it, and every live
 * key of the ring is re-wrapped under it page by page (SQLite: each page and the progress in one
 * transaction; KurrentDB: a KeyRewrapped event in the key's own stream, then the local copy). The log is
 * never rewritten. Once no wrap names an earlier KEK, that KEK is retired from the keys dir, and a
 * `KeyEncryptionKeyRotated` event records the rotation (its own serial). A crash mid-way leaves a ring
 * readable with both KEKs and a pending record; the next start completes the re-wrap and the event.
 *
 * Vault: a new KEK file `keys/key-encryption.<kid>.key.json`; what the vault wrapped is inside log events,
 * so nothing is re-wrapped and the earlier KEKs stay (the event says so: keptKekIds).
 */
@Injectable()
export class KekRotations implements OnApplicationBootstrap {
  readonly #logger = new Logger('KekRotations');
  /** Keys re-wrapped per page (one transaction on SQLite; one batch of appends on KurrentDB). */
  pageSize = REWRAP_BATCH;
  /** A pause between two pages (0: only a turn of the event loop), to leave a busy hub's appends more room. */
  pagePauseMs = 0;
  readonly #oneAtATime = new OneAtATime();

  constructor(
    private readonly config: HubConfig,
    @Inject(EVENT_STORE) private readonly store: EventStore,
    @Inject(CLOCK) private readonly clock: Clock,
    @Inject(LEADERSHIP) private readonly leadership: Leadership | null,
    @Inject(KEYRING) private readonly ring: Keyring,
    private readonly vault: IdentifierVault,
    private readonly eventBus: EventBus,
  ) {}

  /** A re-wrap a crash interrupted is completed at start (on KurrentDB by the leader only), in the background. */
  onApplicationBootstrap(): void {
    const resume = (): void => {
      if (this.#pending() === undefined) return;
      void this.#oneAtATime.run(() => this.#completeSealing({ actor: 'system:kek-rotation', correlationId: 'kek-rotation-resume' })).then(
        (r) => r !== undefined && this.#logger.log(`the interrupted re-wrap under ${r.kekId} is complete: ${r.rewrappedPersonKeys} person keys, ${r.rewrappedPeriodKeys} period keys`),
        (error: unknown) => this.#logger.warn(`the interrupted re-wrap could not be completed (the next start or rotation tries again): ${(error as Error).message}`),
      );
    };
    if (this.leadership === null) resume();
    else {
      this.leadership.onTakeover(async () => resume());
      if (this.leadership.acceptsCommands) resume();
    }
  }

  /** Rotates one key-encryption key (one at a time: a second call waits for the first). */
  rotate(kek: KekName, metadata: RotationMetadata): Promise<KekRotation> {
    return this.#oneAtATime.run(async () => {
      refuseOnStandby(this.leadership, 'key-encryption keys', 'written');
      return kek === 'vault' ? this.#rotateVault(metadata) : this.#rotateSealing(metadata);
    });
  }

  status(kek: KekName): KekStatus {
    if (kek === 'vault') {
      const ids = this.vault.keyEncryptionIds();
      return { kek, kekId: ids.current, heldKekIds: [ids.current, ...ids.previous], note: VAULT_NOTE };
    }
    const local = localOf(this.ring);
    const keys = local.keys;
    const pending = this.#pending();
    return {
      kek,
      kekId: currentKekId(keys),
      heldKekIds: heldKekIds(keys),
      wraps: local.wrapCounts(),
      ...(pending === undefined
        ? {}
        : { pending: { kekId: pending.kekId, previousKekIds: pending.previousKekIds, startedAt: pending.startedAt, rewrappedPersonKeys: pending.rewrappedPersonKeys, rewrappedPeriodKeys: pending.rewrappedPeriodKeys } }),
    };
  }

  get #sealingPath(): string {
    return join(this.config.keysDir, SEALING_KEY_FILE);
  }

  #pending(): PendingRewrap | undefined {
    const text = localOf(this.ring).meta(PENDING_META);
    return text === undefined || text === '' ? undefined : (JSON.parse(text) as PendingRewrap);
  }

  #setPending(p: PendingRewrap | undefined): void {
    localOf(this.ring).setMeta(PENDING_META, p === undefined ? '' : JSON.stringify(p));
  }

  /** Makes the ring (and a shared ring's local copy) wrap and open with the key files as they are now. */
  #reloadSealingKeys(): void {
    const next = readSealingKeys(this.#sealingPath);
    if (this.ring instanceof KurrentKeyring) this.ring.useKeys(next);
    else localOf(this.ring).useKeys(next);
  }

  async #rotateSealing(metadata: RotationMetadata): Promise<KekRotation> {
    // An interrupted re-wrap is completed first (its own event), so that each rotation's event counts only its own work.
    if (this.#pending() !== undefined) await this.#completeSealing(metadata);
    const local = localOf(this.ring);
    const before = local.keys;
    const now = this.clock();
    // 1. The new KEK on disk (exclusive, 0600, synced) before anything is wrapped under it.
    const made = generateSealingKekFile(before.kid, now);
    writeSecretFileExclusive(join(this.config.keysDir, sealingKekFileName(made.kid)), made.file);
    // 2. From now on every key made is wrapped under it; the earlier KEKs still open.
    this.#reloadSealingKeys();
    if (currentKekId(local.keys) !== made.kid) throw new HubProblem('INTERNAL', `the new key-encryption key ${made.kid} is not the newest of the keys dir: check the clocks and the sealing-kek files`);
    this.#setPending({ kekId: made.kid, previousKekIds: heldKekIds(before), startedAt: now.toISOString(), after: null, rewrappedPersonKeys: 0, rewrappedPeriodKeys: 0 });
    this.#logger.log(`sealing key-encryption key rotating: ${currentKekId(before)} -> ${made.kid}; re-wrapping the key ring`);
    const done = await this.#completeSealing(metadata);
    return done!;
  }

  /**
   * Re-wraps what the pending record says is left, retires the KEKs no wrap names, appends the event and
   * clears the record. Each step is safe to redo: a crash anywhere leaves the record, and this runs again.
   */
  async #completeSealing(metadata: RotationMetadata): Promise<KekRotation | undefined> {
    let p = this.#pending();
    if (p === undefined) return undefined;
    this.#reloadSealingKeys();
    const local = localOf(this.ring);
    if (currentKekId(local.keys) !== p.kekId) throw new HubProblem('INTERNAL', `the pending re-wrap is to ${p.kekId}, but the newest key-encryption key of the keys dir is ${currentKekId(local.keys)}`);
    if (this.ring instanceof KurrentKeyring) await this.ring.follow();
    // Pages until the end; then, while any wrap still names another KEK (made meanwhile by a seal worker
    // started before the rotation), another pass.
    for (let pass = 0; ; pass++) {
      while (p.after !== 'done') {
        const after: Buffer | undefined = p.after === null ? undefined : Buffer.from(p.after, 'hex');
        const epochs = p.after === null;
        const base: PendingRewrap = p;
        const progress = (last: Buffer | undefined, n: { personKeys: number; periodKeys: number }): PendingRewrap => ({
          ...base,
          after: last === undefined ? 'done' : last.toString('hex'),
          rewrappedPersonKeys: base.rewrappedPersonKeys + n.personKeys,
          rewrappedPeriodKeys: base.rewrappedPeriodKeys + n.periodKeys,
        });
        let next: PendingRewrap | undefined;
        if (this.ring instanceof KurrentKeyring) {
          const page = await this.ring.rewrapPage(after, this.pageSize, { epochs });
          next = progress(page.last, page);
          this.#setPending(next);
        } else {
          // The page and the progress in one transaction: a crash keeps both or neither.
          local.rewrapPage(after, this.pageSize, {
            epochs,
            onPage: (last, n) => {
              next = progress(last, n);
              local.setMeta(PENDING_META, JSON.stringify(next));
            },
          });
        }
        p = next!;
        // Appends go on between pages.
        await new Promise((r) => (this.pagePauseMs > 0 ? setTimeout(r, this.pagePauseMs) : setImmediate(r)));
      }
      const left = this.#wrapsUnder(local.wrapCounts(), p.kekId);
      if (left === 0) break;
      if (pass >= 3) throw new HubProblem('INTERNAL', `${left} keys of the ring are still wrapped under an earlier key-encryption key after ${pass + 1} passes; nothing was retired: rotate again`);
      p = { ...p, after: null };
      this.#setPending(p);
    }
    local.forgetOldWraps();
    // Retire every earlier KEK no wrap names (all of them now), from the keys dir and from memory.
    const counts = local.wrapCounts();
    const held = heldKekIds(local.keys).filter((id) => id !== p.kekId);
    const unused = held.filter((id) => (counts.personKeys[id] ?? 0) + (counts.periodKeys[id] ?? 0) === 0);
    const retired = retireSealingKeks(this.#sealingPath, unused);
    this.#reloadSealingKeys();
    const kept = heldKekIds(local.keys).filter((id) => id !== p.kekId);
    const data: KeyEncryptionKeyRotatedData = {
      kek: 'sealing',
      kekId: p.kekId,
      previousKekIds: p.previousKekIds,
      rewrappedPersonKeys: p.rewrappedPersonKeys,
      rewrappedPeriodKeys: p.rewrappedPeriodKeys,
      retiredKekIds: retired,
      keptKekIds: kept,
      rotatedAt: p.startedAt,
    };
    const rotation = await this.#announce(data, metadata);
    this.#setPending(undefined);
    this.#logger.log(`sealing key-encryption key rotated to ${p.kekId}: ${p.rewrappedPersonKeys} person keys and ${p.rewrappedPeriodKeys} period keys re-wrapped; retired ${retired.join(', ') || 'none'}`);
    return rotation;
  }

  #wrapsUnder(counts: WrapCounts, current: string): number {
    let n = 0;
    for (const c of [counts.personKeys, counts.periodKeys]) for (const [id, k] of Object.entries(c)) if (id !== current) n += k;
    return n;
  }

  async #rotateVault(metadata: RotationMetadata): Promise<KekRotation> {
    const before = this.vault.keyEncryptionIds();
    const now = this.clock();
    const kid = createRotatedVaultKek(this.config.keysDir, now);
    const next = loadOrCreateVaultKeys(this.config.keysDir, now);
    if (next.keyEncryption.kid !== kid) throw new HubProblem('INTERNAL', `the new vault key-encryption key ${kid} is not the newest of the keys dir: check the clocks and the key-encryption files`);
    this.vault.useKeys(next);
    const previous = [before.current, ...before.previous];
    return this.#announce({ kek: 'vault', kekId: kid, previousKekIds: previous, rewrappedPersonKeys: 0, rewrappedPeriodKeys: 0, retiredKekIds: [], keptKekIds: previous, rotatedAt: now.toISOString() }, metadata);
  }

  async #announce(data: KeyEncryptionKeyRotatedData, metadata: RotationMetadata): Promise<KekRotation> {
    const result = await appendRotation(this.store, KEK_ROTATION_STREAM, KEY_ENCRYPTION_KEY_ROTATED, { ...data }, 'any', metadata);
    this.eventBus.publish(EventsAppended.of(KEK_ROTATION_STREAM, result, [KEY_ENCRYPTION_KEY_ROTATED]));
    return { ...data, serial: result.serial, position: result.firstPosition };
  }
}
