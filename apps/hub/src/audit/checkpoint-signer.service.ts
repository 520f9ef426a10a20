import { Inject, Injectable, Logger, type BeforeApplicationShutdown, type OnApplicationBootstrap } from '@nestjs/common';
import { randomUUID } from 'node:crypto';
import { formatVerifierKey, publicKeyOf } from '#audit-log';
import { checkpointAppendRequest, signedCheckpointData, type EventStore } from '#ledger';
import { HubConfig } from '../config/hub-config.js';
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

  constructor(
    private readonly config: HubConfig,
    @Inject(EVENT_STORE) private readonly store: EventStore,
    @Inject(CLOCK) private readonly clock: Clock,
    private readonly follower: TreeFollower,
    private readonly selfCheck: SelfCheckService,
  ) {
    this.seed = loadOrCreateCheckpointKey(config.keysDir);
    this.origin = config.checkpoints.origin;
    this.verifierKey = formatVerifierKey({ name: this.origin, publicKey: publicKeyOf(this.seed) });
  }

  /** Starts after start-up recovery and the tree's catch-up (both run in onModuleInit). */
  onApplicationBootstrap(): void {
    this.startedMs = this.clock().getTime();
    const latest = this.follower.projection.latestCheckpoint();
    if (latest !== undefined) this.last = { size: latest.size, timeMs: latest.timeMs, position: latest.position };
    this.follower.onAdvance(() => this.poke(false));
    this.timer = setInterval(() => this.poke(true), Math.min(this.config.checkpoints.everyMs, 250));
    this.timer.unref();
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
  async signIfDue(timerFired = true): Promise<Signed | undefined> {
    if (this.signing) await this.signing;
    // MUST NOT sign over a log the self-check found altered, or has not checked at start.
    if (!this.selfCheck.allowsSigning) return undefined;
    const tree = this.follower.projection;
    const size = tree.size;
    const last = this.last;
    const nowMs = this.clock().getTime();
    // The log grew beyond the previous checkpoint's own event: there is something new to attest.
    const grew = last === undefined ? size > 0 : size > last.position + 1;
    const byCount = size - (last?.size ?? 0) >= this.config.checkpoints.everyEvents;
    const byTime = timerFired && nowMs - (last?.timeMs ?? this.startedMs) >= this.config.checkpoints.everyMs;
    if (this.stopped || !grew || !(byCount || byTime)) return undefined;
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
