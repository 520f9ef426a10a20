import { Logger } from '@nestjs/common';
import { NO_STREAM, StreamNotFoundError, WrongExpectedVersionError, binaryEvent, type AppendStreamState } from '@kurrent/kurrentdb-client';
import { randomUUID } from 'node:crypto';
import { describeKurrentError, type KurrentDbEventStore, type KurrentLogClient } from '#ledger/kurrentdb-event-store';

export type HubRole = 'leader' | 'standby';

/** Who holds the lease, as its last claim or renewal in the lease stream says. */
export interface LeaderInfo {
  readonly instanceId: string;
  /** The leader's HTTP base URL, as it announced it. */
  readonly url?: string;
}

/** One event of the lease stream: a claim (first of a term) or a renewal. */
interface LeaseData {
  readonly instanceId: string;
  readonly url?: string;
  /** A new id per term (claim); renewals repeat it. */
  readonly term: string;
  /** `release`: the holder stopped cleanly and hands the lease over at once. */
  readonly kind: 'claim' | 'renewal' | 'release';
  /** The holder's clock: informative only, expiry is judged by each standby on its own clock. */
  readonly atMs: number;
}

export interface LeadershipOptions {
  readonly client: KurrentLogClient;
  readonly store: KurrentDbEventStore;
  /** The KurrentDB stream of the lease (one per log). */
  readonly leaseStream: string;
  readonly instanceId: string;
  readonly url?: string;
  readonly renewMs: number;
  readonly leaseMs: number;
  /** How often a standby reads what the leader appended (default 50 ms). */
  readonly followMs?: number;
  readonly now?: () => number;
}

/** Something to do when this hub becomes the leader, before it takes commands (recovery, the fencing checkpoint). */
export type TakeoverStep = () => Promise<void>;

const LEASE_TYPE = 'HubLeaseHeld';
/** Lease events KurrentDB keeps (older ones are scavenged): enough to read who held the lease recently. */
const LEASE_EVENTS_KEPT = 1000;

/**
 * Leadership among the hubs on one KurrentDB log: a lease held in a KurrentDB stream.
 *
 * Whoever appends a claim at the lease stream's current revision leads (optimistic concurrency: of two
 * standbys claiming at once, one gets a wrong-expected-version error). The leader renews every
 * `renewMs`, each renewal appended at the revision of its previous one, so that it learns at its next
 * renewal when another hub has claimed. A standby takes over when it has seen the lease stream unchanged
 * for `leaseMs` on its own clock (no clocks are compared). A leader that cannot renew for
 * `leaseMs - renewMs` steps down on its own, before any standby may take over.
 *
 * The lease says who SHOULD write; the log's expected revision is what makes it safe: the store of a
 * leader is opened with `onConflict: 'fence'`, so a deposed leader that wakes up and appends fails (its
 * view of the log is behind the new leader's first append, the fencing checkpoint) and then steps down.
 */
export class Leadership {
  private readonly logger = new Logger('Leadership');
  private readonly now: () => number;
  private readonly followMs: number;
  private current: HubRole = 'standby';
  private takingOver = false;
  /** Revision of this hub's last claim or renewal while it leads. */
  private leaseRevision: bigint | undefined;
  private term = '';
  private lastRenewedMs = 0;
  /** What a standby last saw of the lease stream, and since when (its own clock). */
  private observed: { revision: bigint | 'none'; sinceMs: number } | undefined;
  private holder: LeaderInfo | undefined;
  private leaseTimer: NodeJS.Timeout | undefined;
  private followTimer: NodeJS.Timeout | undefined;
  private following = false;
  private followFailing = false;
  private leaseFailing = false;
  private ticking: Promise<void> | undefined;
  private stopped = false;
  private readonly steps: TakeoverStep[] = [];
  private readonly listeners: ((role: HubRole) => void)[] = [];
  private leaderSinceMs: number | undefined;
  private takeovers = 0;

  constructor(private readonly options: LeadershipOptions) {
    this.now = options.now ?? Date.now;
    this.followMs = options.followMs ?? 50;
  }

  get instanceId(): string {
    return this.options.instanceId;
  }

  get store(): KurrentDbEventStore {
    return this.options.store;
  }

  /** `leader` once its takeover steps are done; `standby` otherwise. */
  get role(): HubRole {
    return this.current;
  }

  /** Commands are taken: this hub leads and its takeover (recovery, fencing checkpoint) is done. */
  get acceptsCommands(): boolean {
    return this.current === 'leader' && this.store.isWritable;
  }

  /** This hub is running its takeover steps: only their own (system) appends are taken. */
  get inTakeover(): boolean {
    return this.takingOver;
  }

  /** The leader as this hub knows it (itself when it leads). */
  get leader(): LeaderInfo | undefined {
    if (this.current === 'leader') return { instanceId: this.options.instanceId, ...(this.options.url === undefined ? {} : { url: this.options.url }) };
    return this.holder;
  }

  /** Takeovers this hub ran since it started (its first claim included). */
  get takeoverCount(): number {
    return this.takeovers;
  }

  /** Runs `step` (in registration order) each time this hub becomes the leader, before it takes commands. */
  onTakeover(step: TakeoverStep): void {
    this.steps.push(step);
  }

  onRoleChange(listener: (role: HubRole) => void): void {
    this.listeners.push(listener);
  }

  /**
   * The first election: claims the lease when nobody holds it or this instance held it last (a restart);
   * else stands by, and the background loop takes over once the lease is left unrenewed. Then starts
   * the lease loop and, while standing by, the follower of the leader's appends.
   */
  async start(): Promise<void> {
    const last = await this.readLease();
    if (last === undefined) await this.claim(NO_STREAM);
    else if (last.data?.instanceId === this.options.instanceId || last.data?.kind === 'release') await this.claim(last.revision);
    else this.observe(last);
    if (this.current === 'standby') this.logger.log(`standing by: ${this.describeHolder()} leads`);
    this.leaseTimer = setInterval(() => void this.tick(), this.options.renewMs);
    this.leaseTimer.unref();
    this.followTimer = setInterval(() => void this.follow(), this.followMs);
    this.followTimer.unref();
  }

  /**
   * A clean stop: nothing more is appended, and a leader releases its lease (a standby claims it at its
   * next look instead of waiting for the lease to run out).
   */
  async stop(): Promise<void> {
    this.halt();
    await this.ticking;
    this.store.setWritable(false);
    if (this.current === 'leader' && this.leaseRevision !== undefined) {
      this.current = 'standby';
      try {
        await this.appendLease('release', this.leaseRevision);
        this.logger.log('released the lease: a standby takes over now');
      } catch (error) {
        this.logger.warn(`could not release the lease (a standby takes over when it runs out): ${describeKurrentError(error)}`);
      }
    }
  }

  /**
   * Stops the loops without touching the store or the lease: what a process that froze looks like to the
   * others. Its store stays writable, as a frozen leader's would: the log's fence is what stops it.
   */
  halt(): void {
    this.stopped = true;
    if (this.leaseTimer !== undefined) clearInterval(this.leaseTimer);
    if (this.followTimer !== undefined) clearInterval(this.followTimer);
  }

  /** The store was fenced off (another hub appended at the revision it expected): step down at once. */
  fenced(reason: string): void {
    if (this.current !== 'leader' && !this.takingOver) return;
    this.stepDown(`fenced off the log: ${reason}`);
  }

  private async tick(): Promise<void> {
    if (this.ticking !== undefined || this.stopped) return;
    this.ticking = (this.current === 'leader' ? this.renew() : this.watch())
      .then(() => {
        if (this.leaseFailing) this.logger.log('the lease stream answers again');
        this.leaseFailing = false;
      })
      .catch((error: unknown) => {
        // Once per outage, not at every renewal interval.
        if (!this.leaseFailing) this.logger.error(`lease: ${describeKurrentError(error)} (retrying every ${this.options.renewMs} ms)`);
        this.leaseFailing = true;
      })
      .finally(() => {
        this.ticking = undefined;
      });
    await this.ticking;
  }

  /** A standby reads what the leader appended (the store wakes its followers). */
  private async follow(): Promise<void> {
    if (this.following || this.stopped || this.current === 'leader' || this.takingOver) return;
    this.following = true;
    try {
      await this.store.refresh();
      if (this.followFailing) this.logger.log('following the log again');
      this.followFailing = false;
    } catch (error) {
      // Once per outage, not at every attempt.
      if (!this.followFailing) this.logger.warn(`could not read the log (retrying every ${this.followMs} ms): ${describeKurrentError(error)}`);
      this.followFailing = true;
    } finally {
      this.following = false;
    }
  }

  private async renew(): Promise<void> {
    if (!this.store.isWritable) {
      this.stepDown('the log fenced this hub off');
      return;
    }
    try {
      this.leaseRevision = await this.appendLease('renewal', this.leaseRevision!);
      this.lastRenewedMs = this.now();
    } catch (error) {
      if (error instanceof WrongExpectedVersionError) {
        // A renewal whose answer was lost (written, but the client saw an error) moved the lease stream
        // on by this hub's own event: not another hub's claim. Go on from it (its time unknown, so the
        // step-down clock keeps the last renewal this hub saw confirmed).
        const last = await this.readLease().catch(() => undefined);
        if (last !== undefined && last.data?.instanceId === this.options.instanceId && last.data.term === this.term && last.data.kind !== 'release') {
          this.leaseRevision = last.revision;
          this.logger.warn(`a lease renewal was written but its answer was lost: going on from revision ${last.revision}`);
          return;
        }
        this.stepDown('another hub claimed the lease');
        return;
      }
      // Not renewed: stop writing before any standby may take over (they wait leaseMs).
      if (this.now() - this.lastRenewedMs >= this.options.leaseMs - this.options.renewMs) this.stepDown(`the lease could not be renewed (${describeKurrentError(error)})`);
    }
  }

  private async watch(): Promise<void> {
    const last = await this.readLease();
    if (last === undefined) {
      await this.claim(NO_STREAM);
      return;
    }
    this.observe(last);
    if (last.data?.kind === 'release') {
      this.logger.log(`${this.describeHolder()} released the lease: taking over`);
      await this.claim(last.revision);
      return;
    }
    if (this.now() - this.observed!.sinceMs >= this.options.leaseMs) {
      this.logger.warn(`${this.describeHolder()} has not renewed the lease for ${this.options.leaseMs} ms: taking over`);
      await this.claim(last.revision);
    }
  }

  private observe(last: { revision: bigint; data: LeaseData | undefined }): void {
    if (this.observed === undefined || this.observed.revision !== last.revision) this.observed = { revision: last.revision, sinceMs: this.now() };
    if (last.data !== undefined) this.holder = { instanceId: last.data.instanceId, ...(last.data.url === undefined ? {} : { url: last.data.url }) };
  }

  private async claim(expected: bigint | typeof NO_STREAM): Promise<void> {
    this.term = randomUUID();
    try {
      this.leaseRevision = await this.appendLease('claim', expected);
    } catch (error) {
      if (error instanceof WrongExpectedVersionError) return; // another standby claimed first
      throw error;
    }
    this.lastRenewedMs = this.now();
    await this.boundLeaseStream();
    await this.takeover();
  }

  /**
   * The lease stream gets a renewal a second: KurrentDB keeps only its last events ($maxCount), when the
   * client can set stream metadata (the real one can; a stand-in may not).
   */
  private async boundLeaseStream(): Promise<void> {
    const client = this.options.client as KurrentLogClient & { setStreamMetadata?: (stream: string, metadata: { maxCount: number }) => Promise<unknown> };
    if (typeof client.setStreamMetadata !== 'function') return;
    try {
      await client.setStreamMetadata(this.options.leaseStream, { maxCount: LEASE_EVENTS_KEPT });
    } catch (error) {
      this.logger.warn(`could not bound the lease stream ${this.options.leaseStream} to its last ${LEASE_EVENTS_KEPT} events: ${describeKurrentError(error)}`);
    }
  }

  /** Reads the log to its end, lets the store write, runs the takeover steps, then takes commands. */
  private async takeover(): Promise<void> {
    const started = this.now();
    this.takingOver = true;
    try {
      await this.store.refresh();
      this.store.setWritable(true);
      for (const step of this.steps) await step();
      if (!this.store.isWritable) throw new Error('the log fenced this hub off during its takeover');
      this.current = 'leader';
      this.leaderSinceMs = this.now();
      this.takeovers += 1;
      this.observed = undefined;
      this.logger.log(`leading (instance ${this.options.instanceId}): takeover done in ${this.now() - started} ms at log head ${await this.store.head()}`);
      for (const l of this.listeners) l('leader');
    } catch (error) {
      this.stepDown(`takeover failed: ${describeKurrentError(error)}`);
    } finally {
      this.takingOver = false;
    }
  }

  private stepDown(reason: string): void {
    const was = this.current;
    this.store.setWritable(false);
    this.current = 'standby';
    this.leaseRevision = undefined;
    this.observed = undefined;
    this.leaderSinceMs = undefined;
    this.logger.warn(`stepped down (${reason}); standing by`);
    if (was === 'leader') for (const l of this.listeners) l('standby');
  }

  /** Since when this hub leads (its clock), if it does. */
  get leadingSinceMs(): number | undefined {
    return this.leaderSinceMs;
  }

  private async appendLease(kind: LeaseData['kind'], expected: AppendStreamState): Promise<bigint> {
    const data: LeaseData = { instanceId: this.options.instanceId, ...(this.options.url === undefined ? {} : { url: this.options.url }), term: this.term, kind, atMs: this.now() };
    const event = binaryEvent({ id: randomUUID(), type: LEASE_TYPE, data: Buffer.from(JSON.stringify(data), 'utf8') });
    await this.options.client.appendToStream(this.options.leaseStream, [event], { streamState: expected });
    return typeof expected === 'bigint' ? expected + 1n : 0n;
  }

  private async readLease(): Promise<{ revision: bigint; data: LeaseData | undefined } | undefined> {
    try {
      for await (const resolved of this.options.client.readStream(this.options.leaseStream, { fromRevision: 'end', maxCount: 1n, direction: 'backwards' })) {
        const e = resolved.event;
        if (e === undefined) continue;
        let data: LeaseData | undefined;
        try {
          data = e.data instanceof Uint8Array ? (JSON.parse(Buffer.from(e.data).toString('utf8')) as LeaseData) : undefined;
        } catch {
          data = undefined;
        }
        return { revision: e.revision, data };
      }
    } catch (error) {
      if (error instanceof StreamNotFoundError) return undefined;
      throw error;
    }
    return undefined;
  }

  private describeHolder(): string {
    return this.holder === undefined ? 'another hub' : `hub ${this.holder.instanceId}${this.holder.url === undefined ? '' : ` (${this.holder.url})`}`;
  }
}
