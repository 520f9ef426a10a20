import { Inject, Injectable, Logger, type OnApplicationShutdown, type OnModuleInit } from '@nestjs/common';
import { MerkleTreeProjection, type EventStore } from '#ledger';
import { HubConfig } from '../config/hub-config.js';
import { EVENT_STORE } from '../ledger/tokens.js';

/** How often the follower looks for newly committed events when it is caught up. */
const POLL_MS = 20;

/**
 * Follows the Merkle tree that the ledger's writer thread keeps in the ledger file, in the same
 * transactions as the events (the store is opened with `tree: true`): when the durable head moves, it
 * reads the new tree state (one row; nothing is hashed on this thread) and tells its listeners, such as
 * the checkpoint signer. Proofs and checkpoints are served from here.
 */
@Injectable()
export class TreeFollower implements OnModuleInit, OnApplicationShutdown {
  private readonly logger = new Logger('MerkleTree');
  private tree: MerkleTreeProjection | undefined;
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;
  private readonly listeners: (() => void)[] = [];

  constructor(
    private readonly config: HubConfig,
    @Inject(EVENT_STORE) private readonly store: EventStore,
  ) {}

  /** Opens the tree (the store rebuilt or completed it when it opened) before the hub takes requests. */
  onModuleInit(): void {
    // The store (a dependency) has opened the ledger file and brought its tree level with the log by now.
    this.tree = new MerkleTreeProjection({ source: this.config.ledgerPath, maintainedByLedger: true });
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

  /** Reads the tree as committed now; for tests and the signer. */
  async catchUp(): Promise<number> {
    const head = await this.store.head();
    while (this.projection.size < head && this.projection.step() > 0) await new Promise((r) => setImmediate(r));
    return this.projection.size;
  }

  private schedule(delay: number): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => void this.tick(), delay);
  }

  private async tick(): Promise<void> {
    let hashed = 0;
    try {
      if ((await this.store.head()) > this.projection.size) hashed = this.projection.step();
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
