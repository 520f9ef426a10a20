import { Inject, Injectable, Logger, type BeforeApplicationShutdown, type OnApplicationBootstrap } from '@nestjs/common';
import { randomUUID } from 'node:crypto';
import { CHECKPOINT_KEY_ROTATED, CheckpointKeyChain, type ChainKey, type CheckpointKeyRotatedData, cosignNote, formatVerifierKey, publicKeyOf } from '#audit-log';
import { checkpointAppendRequest, signedCheckpointData, type EventStore } from '#ledger';
import { HubConfig } from '../config/hub-config.js';
import { HubProblem } from '../http/hub-problem.js';
import type { Leadership } from '../leadership/leadership.js';
import { LEADERSHIP } from '../leadership/tokens.js';
import { CLOCK, EVENT_STORE, type Clock } from '../ledger/tokens.js';
import { createRotatedCheckpointKey, loadOrCreateCheckpointKey, loadRotatedCheckpointKey } from './audit-keys.js';
import { SelfCheckService } from './self-check.service.js';
import { TreeFollower } from './tree-follower.service.js';
import { readAnnouncements } from '../keys/announcements.js';

/** The stream of CheckpointKeyRotated events, in rotation order. */
export const CHECKPOINT_KEY_STREAM = '$checkpoint-keys';

/** A signing key this hub holds: its seed and key id (hex). */
interface SigningKey {
  readonly seed: Uint8Array;
  readonly keyIdHex: string;
  readonly verifierKey: string;
}

/** The answer to a rotation: the new key and where the log announced and handed over to it. */
export interface CheckpointKeyRotation {
  readonly keyId: string;
  readonly verifierKey: string;
  readonly previousKeyId: string;
  /** Position of the CheckpointKeyRotated event. */
  readonly position: number;
  readonly serial: string;
  readonly rotatedAt: string;
  /** The checkpoint signed by both keys over the log including the announcement. */
  readonly handoverSize: number;
}

/** The last checkpoint this hub signed: what the next one must exceed. */
interface Signed {
  readonly size: number;
  readonly timeMs: number;
  /** Position of its CheckpointSigned event. */
  readonly position: number;
}

/**
 * Signs a checkpoint (origin, size, root, time) every N events or T milliseconds, whichever comes
 * first, and appends it to the log as a CheckpointSigned event. Only when the log grew by something
 * other than the previous checkpoint's own event, so an idle hub signs nothing. Sizes and times
 * strictly increase: one signing at a time, and a clock that stepped back is clamped.
 *
 * On KurrentDB only the leader signs, and a hub that takes over signs one checkpoint at once, over the
 * log as it found it: that append is also the fence that a deposed leader's next append fails on.
 */
@Injectable()
export class CheckpointSigner implements OnApplicationBootstrap, BeforeApplicationShutdown {
  private readonly logger = new Logger('Checkpoints');
  /** The first key of the chain (keys/checkpoint-signing.key.json): the one verifiers pin. */
  private readonly first: SigningKey;
  /** The key that signs now: the newest key announced in the log. */
  private active: SigningKey;
  /** After a rotation until its hand-over checkpoint is signed: the previous key, and the first size the new key signs. */
  private handover: { readonly previous: SigningKey; readonly fromSize: number } | undefined;
  /** Set when the log announces a key whose seed this hub does not hold: it then signs nothing. */
  private keyProblem: string | undefined;
  readonly origin: string;
  private last: Signed | undefined;
  private signing: Promise<void> | undefined;
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;
  /** Before the first checkpoint, T is counted from start-up. */
  private startedMs = 0;
  private bootstrapped = false;
  /** A takeover before bootstrap (the first election at start): its fencing checkpoint is signed at bootstrap. */
  private fencePending = false;

  constructor(
    private readonly config: HubConfig,
    @Inject(EVENT_STORE) private readonly store: EventStore,
    @Inject(CLOCK) private readonly clock: Clock,
    private readonly follower: TreeFollower,
    private readonly selfCheck: SelfCheckService,
    @Inject(LEADERSHIP) private readonly leadership: Leadership | null,
  ) {
    this.origin = config.checkpoints.origin;
    this.first = this.signingKey(loadOrCreateCheckpointKey(config.keysDir));
    this.active = this.first;
    leadership?.onTakeover(async () => {
      if (this.bootstrapped) await this.signFence();
      else this.fencePending = true;
    });
  }

  /** Starts after start-up recovery and the tree's catch-up (both run in onModuleInit). */
  async onApplicationBootstrap(): Promise<void> {
    this.startedMs = this.clock().getTime();
    await this.loadKeys();
    this.resumeFromTree();
    this.follower.onAdvance(() => this.poke(false));
    this.timer = setInterval(() => this.poke(true), Math.min(this.config.checkpoints.everyMs, 250));
    this.timer.unref();
    this.bootstrapped = true;
    if (this.fencePending && this.leadership?.role === 'leader') {
      this.fencePending = false;
      await this.signFence();
    }
  }

  /** The latest checkpoint in the log, as the tree indexed it (signed by this hub or the previous leader). */
  private resumeFromTree(): void {
    const latest = this.follower.projection.latestCheckpoint();
    if (latest !== undefined && (this.last === undefined || latest.size > this.last.size)) this.last = { size: latest.size, timeMs: latest.timeMs, position: latest.position };
  }

  /**
   * A takeover's checkpoint: over the whole log as the new leader read it. Appended at the log's expected
   * revision, it is what fences off the previous leader (whose view of the log is now behind).
   */
  private async signFence(): Promise<void> {
    if (this.signing) await this.signing;
    await this.follower.catchUp();
    this.resumeFromTree();
    // The previous leader may have rotated the key: sign with the newest one the log announces.
    await this.loadKeys();
    const signed = await this.signIfDue(true, true);
    this.logger.log(signed === undefined ? 'took over: no checkpoint to sign (empty log, or the self-check does not allow signing)' : `took over: signed checkpoint ${signed.size} over the log as found`);
  }

  async beforeApplicationShutdown(): Promise<void> {
    this.stopped = true;
    if (this.timer !== undefined) clearInterval(this.timer);
    await this.signing;
  }

  /** The last checkpoint signed by this hub (its event may not be hashed into the tree yet). */
  get lastSigned(): Signed | undefined {
    return this.last;
  }

  /** Signs now if a checkpoint is due; resolves when that one is durable. Returns it, if one was signed. */
  async signIfDue(timerFired = true, takeover = false): Promise<Signed | undefined> {
    if (this.signing) await this.signing;
    // MUST NOT sign over a log the self-check found altered, or has not checked at start.
    if (!this.selfCheck.allowsSigning) return undefined;
    // On KurrentDB only the leader signs (and a hub taking over, its fencing checkpoint).
    if (this.leadership !== null && !this.leadership.acceptsCommands && !(takeover && this.leadership.inTakeover)) return undefined;
    const tree = this.follower.projection;
    const size = tree.size;
    const last = this.last;
    const nowMs = this.clock().getTime();
    // The log grew beyond the previous checkpoint's own event: there is something new to attest.
    const grew = last === undefined ? size > 0 : size > last.position + 1;
    const byCount = size - (last?.size ?? 0) >= this.config.checkpoints.everyEvents;
    const byTime = timerFired && nowMs - (last?.timeMs ?? this.startedMs) >= this.config.checkpoints.everyMs;
    const fence = takeover && size > (last?.size ?? 0);
    if (this.stopped || !(fence || (grew && (byCount || byTime)))) return undefined;
    if (this.keyProblem !== undefined) return undefined;
    let signed: Signed | undefined;
    this.signing = (async () => {
      signed = await this.signNow(size, nowMs);
    })().finally(() => {
      this.signing = undefined;
    });
    await this.signing;
    return signed;
  }

  /** Signs the checkpoint of `size` with the active key (and the previous one, if this is the hand-over). */
  private async signNow(size: number, nowMs: number, correlationId = `checkpoint-${randomUUID()}`): Promise<Signed> {
    const last = this.last;
    const timeMs = Math.max(nowMs, (last?.timeMs ?? 0) + 1);
    const root = this.follower.projection.root(size);
    const handover = this.handover !== undefined && size >= this.handover.fromSize ? this.handover : undefined;
    let data = signedCheckpointData(this.origin, size, root, timeMs, (handover?.previous ?? this.active).seed);
    if (handover !== undefined) data = { ...data, note: cosignNote(data.note, { name: this.origin, privateKey: this.active.seed }) };
    const result = await this.store.append(checkpointAppendRequest(data, { actor: 'system:checkpoint-signer', correlationId }));
    if (handover !== undefined) this.handover = undefined;
    const signed = { size, timeMs, position: result.firstPosition };
    this.last = signed;
    return signed;
  }

  /** The first key's verifier key: the root of the chain that verifiers pin (GET /v1/audit/verifier-key). */
  get firstVerifierKey(): string {
    return this.first.verifierKey;
  }

  /** The newest key's verifier key (`<origin>+<key id>+<base64>`): what signs checkpoints now. */
  get verifierKey(): string {
    return this.active.verifierKey;
  }

  /**
   * Every checkpoint key of this log, first to newest, as announced in it: the chain a verifier follows
   * from the first key (read from the log each time, so a standby serves the leader's rotations too).
   */
  async verifierKeys(): Promise<readonly ChainKey[]> {
    return (await this.readChain()).chain.keys;
  }

  /**
   * Rotates the checkpoint signing key (operator command): a new Ed25519 key is stored in the keys dir
   * (0600), announced by a CheckpointKeyRotated event (its own serial), and the checkpoint over the log
   * including that event is signed at once by the old and the new key; later ones by the new key only.
   * On KurrentDB only the leader rotates.
   */
  async rotate(metadata: { readonly actor: string; readonly correlationId: string }): Promise<CheckpointKeyRotation> {
    while (this.signing) await this.signing;
    if (this.leadership !== null && !this.leadership.acceptsCommands) {
      throw new HubProblem('NOT_LEADER', `this hub (${this.leadership.instanceId}) is a standby and does not rotate the checkpoint key; nothing was recorded: send the command to the leader`, { instanceId: this.leadership.instanceId });
    }
    if (!this.selfCheck.allowsSigning || this.keyProblem !== undefined || this.stopped) {
      throw new HubProblem('SERVICE_UNAVAILABLE', `the checkpoint signer is stopped (${this.keyProblem ?? 'the self-check does not allow signing'}); nothing was recorded`);
    }
    let rotation: CheckpointKeyRotation | undefined;
    this.signing = (async () => {
      const previous = this.active;
      const now = this.clock();
      const created = createRotatedCheckpointKey(this.config.keysDir, this.origin, now);
      const next = this.signingKey(created.seed);
      const data: CheckpointKeyRotatedData = { origin: this.origin, verifierKey: next.verifierKey, keyId: next.keyIdHex, previousKeyId: previous.keyIdHex, rotatedAt: now.toISOString() };
      const result = await this.store.append({
        streamId: CHECKPOINT_KEY_STREAM,
        expectedRevision: 'any',
        serial: { allocate: true },
        events: [{ type: CHECKPOINT_KEY_ROTATED, data, terminal: 'completed' }],
        metadata,
      });
      this.active = next;
      this.handover = { previous, fromSize: result.firstPosition + 1 };
      this.logger.log(`checkpoint key rotated: ${previous.keyIdHex} -> ${next.keyIdHex} (announced at ${result.firstPosition})`);
      // The hand-over, at once: the old key vouches for the new one over a tree that holds the announcement.
      await this.follower.catchUp();
      const signed = await this.signNow(Math.max(this.follower.projection.size, result.firstPosition + 1), this.clock().getTime(), metadata.correlationId);
      rotation = { keyId: next.keyIdHex, verifierKey: next.verifierKey, previousKeyId: previous.keyIdHex, position: result.firstPosition, serial: result.serial, rotatedAt: data.rotatedAt, handoverSize: signed.size };
    })().finally(() => {
      this.signing = undefined;
    });
    await this.signing;
    return rotation!;
  }

  private signingKey(seed: Uint8Array): SigningKey {
    const verifierKey = formatVerifierKey({ name: this.origin, publicKey: publicKeyOf(seed) });
    return { seed, verifierKey, keyIdHex: verifierKey.split('+')[1]! };
  }

  /** The chain as the log announces it, with each key's hand-over checkpoint as the tree indexed it. */
  private async readChain(): Promise<{ chain: CheckpointKeyChain; problems: string[] }> {
    const chain = new CheckpointKeyChain(this.first.verifierKey, this.origin);
    const problems: string[] = [];
    for (const e of await readAnnouncements(this.store, CHECKPOINT_KEY_STREAM, CHECKPOINT_KEY_ROTATED)) {
      const problem = chain.announce(e.data as CheckpointKeyRotatedData, e.position);
      if (problem !== undefined) {
        problems.push(`CheckpointKeyRotated at ${e.position}: ${problem}`);
        break;
      }
      const handover = this.follower.projection.checkpointCovering(e.position + 1);
      if (handover === undefined) continue;
      try {
        chain.verify(handover.note);
      } catch (error) {
        problems.push(`the hand-over checkpoint ${handover.size}: ${(error as Error).message}`);
        break;
      }
    }
    return { chain, problems };
  }

  /** Signs with the newest key the log announces; a restart keeps the rotated key. */
  private async loadKeys(): Promise<void> {
    const { chain, problems } = await this.readChain();
    for (const p of problems) this.logger.error(`checkpoint key chain: ${p}`);
    const keys = chain.keys;
    const seedOf = (k: ChainKey): Uint8Array | undefined => (k.keyId === this.first.keyIdHex ? this.first.seed : loadRotatedCheckpointKey(this.config.keysDir, k.keyId));
    const newest = keys.at(-1)!;
    const seed = seedOf(newest);
    if (seed === undefined) {
      this.keyProblem = `the log announces checkpoint key ${newest.keyId}, whose seed is not in ${this.config.keysDir}`;
      this.logger.error(`${this.keyProblem}: no checkpoint is signed until it is`);
      return;
    }
    this.keyProblem = undefined;
    this.active = this.signingKey(seed);
    this.handover = undefined;
    if (keys.length > 1 && newest.handoverSize === undefined) {
      const previousSeed = seedOf(keys.at(-2)!);
      if (previousSeed === undefined) {
        this.keyProblem = `the hand-over to checkpoint key ${newest.keyId} needs the previous key ${keys.at(-2)!.keyId}, whose seed is not in ${this.config.keysDir}`;
        this.logger.error(this.keyProblem);
        return;
      }
      this.handover = { previous: this.signingKey(previousSeed), fromSize: newest.fromSize };
    }
  }

  private poke(timerFired: boolean): void {
    if (this.signing || this.stopped) return;
    this.signIfDue(timerFired).catch((error: unknown) => this.logger.error(`could not sign a checkpoint: ${(error as Error).message}`));
  }
}
