import { Inject, Injectable, Logger, type OnApplicationShutdown, type OnModuleInit } from '@nestjs/common';
import { MerkleTreeProjection, type EventStore } from '#ledger';
import { HubConfig } from '../config/hub-config.js';
import type { Leadership } from '../leadership/leadership.js';
import { LEADERSHIP } from '../leadership/tokens.js';
import { EVENT_STORE } from '../ledger/tokens.js';

/** How often the follower looks for newly committed events when it is caught up. */
const POLL_MS = 20;
/** Stored texts read and hashed per step when the tree follows the log through the port. */
const FED_STEP = 2048;

/**
 * The Merkle tree of the log, as the hub serves it (proofs, checkpoints) and signs it.
 *
 * On the embedded SQLite ledger: follows the tree that the ledger's writer thread keeps in the ledger
 * file, in the same transactions as the events (the store is opened with `tree: true`): when the durable
 * head moves, it reads the new tree state (one row; nothing is hashed on this thread).
 *
 * On KurrentDB: a projection of its own (`merkle-tree.sqlite` under the data dir) fed with the stored
 * envelope texts read through the event-store port from its persisted size on, so that a leader and a
 * standby each keep the tree of the one log. Either way it tells its listeners (the checkpoint signer)
 * when it advanced, and reads the envelopes the audit endpoints serve.
 */
@Injectable()
export class TreeFollower implements OnModuleInit, OnApplicationShutdown {
  private readonly logger = new Logger('MerkleTree');
  private tree: MerkleTreeProjection | undefined;
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;
  private stepping: Promise<number> | undefined;
  private readonly listeners: (() => void)[] = [];

  constructor(
    private readonly config: HubConfig,
    @Inject(EVENT_STORE) private readonly store: EventStore,
    @Inject(LEADERSHIP) private readonly leadership: Leadership | null,
  ) {}

  /** Opens the tree (and brings it level with the log) before the hub takes requests. */
  async onModuleInit(): Promise<void> {
    if (this.leadership === null) {
      // The store (a dependency) has opened the ledger file and brought its tree level with the log by now.
      this.tree = new MerkleTreeProjection({ source: this.config.ledgerPath, maintainedByLedger: true });
    } else {
      this.tree = new MerkleTreeProjection({ target: this.config.treePath });
      this.tree.checkAgainstHead(await this.store.head());
      await this.catchUp();
    }
    this.logger.log(`the Merkle tree covers ${this.tree.size} events`);
    this.schedule(0);
  }

  get projection(): MerkleTreeProjection {
    if (this.tree === undefined) throw new Error('the tree projection is not open yet');
    return this.tree;
  }

  /** Called after every step that hashed events. */
  onAdvance(listener: () => void): void {
    this.listeners.push(listener);
  }

  /** Brings the tree level with the log's durable head as it is now; for tests, the signer and takeovers. */
  async catchUp(): Promise<number> {
    const head = await this.store.head();
    while (this.projection.size < head && (await this.step()) > 0) await new Promise((r) => setImmediate(r));
    return this.projection.size;
  }

  /** Events in the log (its durable head), read now. */
  async logHead(): Promise<number> {
    return this.leadership === null ? this.projection.logHead() : this.store.head();
  }

  /** Stored envelope texts from `from` (the exact leaf inputs), at most `limit`. */
  async envelopes(from: number, limit: number): Promise<string[]> {
    if (this.leadership === null) return this.projection.envelopes(from, limit);
    return this.leadership.store.storedTexts(from, limit);
  }

  /** The stored envelope texts of one serial, in position order. */
  async serialEnvelopes(serial: string): Promise<{ position: number; envelope: string }[]> {
    if (this.leadership === null) return this.projection.serialEnvelopes(serial);
    return this.leadership.store.serialTexts(serial as Parameters<typeof this.leadership.store.serialTexts>[0]);
  }

  /** One step: the kept tree's new state, or the next texts read through the port and hashed. */
  private step(): Promise<number> {
    this.stepping ??= this.stepOnce().finally(() => {
      this.stepping = undefined;
    });
    return this.stepping;
  }

  private async stepOnce(): Promise<number> {
    const tree = this.projection;
    if (this.leadership === null) return tree.step();
    const from = tree.size;
    const texts = await this.leadership.store.storedTexts(from, FED_STEP);
    return texts.length === 0 ? 0 : tree.feed(from, texts);
  }

  private schedule(delay: number): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => void this.tick(), delay);
  }

  private async tick(): Promise<void> {
    let hashed = 0;
    try {
      if ((await this.store.head()) > this.projection.size) hashed = await this.step();
      if (hashed > 0) for (const l of this.listeners) l();
    } catch (error) {
      this.logger.error(`the tree projection could not follow the log: ${(error as Error).message}`);
    }
    this.schedule(hashed > 0 ? 0 : POLL_MS);
  }

  onApplicationShutdown(): void {
    this.stopped = true;
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.tree?.close();
  }
}
