import { Inject, Injectable, Logger, type BeforeApplicationShutdown, type OnApplicationBootstrap } from '@nestjs/common';
import { randomUUID } from 'node:crypto';
import { formatVerifierKey, publicKeyOf } from '#audit-log';
import { checkpointAppendRequest, signedCheckpointData, type EventStore } from '#ledger';
import { HubConfig } from '../config/hub-config.js';
import type { Leadership } from '../leadership/leadership.js';
import { LEADERSHIP } from '../leadership/tokens.js';
import { CLOCK, EVENT_STORE, type Clock } from '../ledger/tokens.js';
import { loadOrCreateCheckpointKey } from './audit-keys.js';
import { SelfCheckService } from './self-check.service.js';
import { TreeFollower } from './tree-follower.service.js';

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
  private readonly seed: Uint8Array;
  readonly origin: string;
  readonly verifierKey: string;
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
    this.seed = loadOrCreateCheckpointKey(config.keysDir);
    this.origin = config.checkpoints.origin;
    this.verifierKey = formatVerifierKey({ name: this.origin, publicKey: publicKeyOf(this.seed) });
    leadership?.onTakeover(async () => {
      if (this.bootstrapped) await this.signFence();
      else this.fencePending = true;
    });
  }

  /** Starts after start-up recovery and the tree's catch-up (both run in onModuleInit). */
  async onApplicationBootstrap(): Promise<void> {
    this.startedMs = this.clock().getTime();
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
    let signed: Signed | undefined;
    this.signing = (async () => {
      const timeMs = Math.max(nowMs, (last?.timeMs ?? 0) + 1);
      const data = signedCheckpointData(this.origin, size, tree.root(size), timeMs, this.seed);
      const result = await this.store.append(checkpointAppendRequest(data, { actor: 'system:checkpoint-signer', correlationId: `checkpoint-${randomUUID()}` }));
      signed = { size, timeMs, position: result.firstPosition };
      this.last = signed;
    })().finally(() => {
      this.signing = undefined;
    });
    await this.signing;
    return signed;
  }

  private poke(timerFired: boolean): void {
    if (this.signing || this.stopped) return;
    this.signIfDue(timerFired).catch((error: unknown) => this.logger.error(`could not sign a checkpoint: ${(error as Error).message}`));
  }
}
