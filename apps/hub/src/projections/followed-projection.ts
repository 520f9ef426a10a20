import { Logger, type OnApplicationShutdown, type OnModuleInit } from '@nestjs/common';
import type { EventStore, LogProjection } from '#ledger';
import { catchUp, follow } from '#projections';

/** A projection store the hub follows: applies the log from its checkpoint, and closes. */
export interface FollowedStore extends LogProjection {
  close(): Promise<void>;
}

/**
 * A projection kept in its own file beside the ledger (I8), followed live from its stored checkpoint and
 * restarted after a failure. `current()` catches up to the head first, so a reader sees every event that
 * was acknowledged before it asked.
 */
export abstract class FollowedProjection<S extends FollowedStore> implements OnModuleInit, OnApplicationShutdown {
  readonly #abort = new AbortController();
  readonly #logger: Logger;
  #store: S | undefined;
  #following: Promise<void> | undefined;

  protected constructor(
    private readonly events: EventStore,
    private readonly name: string,
  ) {
    this.#logger = new Logger(name);
  }

  /** Opens (or creates) the store's file. */
  protected abstract open(): S;

  onModuleInit(): void {
    this.#store = this.open();
    this.#following = this.#follow(this.#store);
  }

  async #follow(store: S): Promise<void> {
    const signal = this.#abort.signal;
    while (!signal.aborted) {
      try {
        await follow(this.events, store, { signal, onError: (e) => this.#logger.error(`${this.name} stopped: ${e instanceof Error ? e.message : String(e)}`) });
      } catch (error) {
        if (!signal.aborted) this.#logger.error(`${this.name} follower failed: ${error instanceof Error ? error.message : String(error)}`);
      }
      if (!signal.aborted) await new Promise((resolve) => setTimeout(resolve, 500).unref());
    }
  }

  /** The store, caught up with every event acknowledged so far. */
  async current(): Promise<S> {
    const store = this.#store;
    if (store === undefined) throw new Error(`${this.name} is not open yet`);
    await catchUp(this.events, store);
    return store;
  }

  async onApplicationShutdown(): Promise<void> {
    this.#abort.abort();
    await this.#following?.catch(() => {});
    await this.#store?.close();
  }
}
