import { Logger, type OnApplicationShutdown, type OnModuleDestroy, type OnModuleInit } from '@nestjs/common';
import type { EventStore, LogProjection } from '#ledger';
import { catchUp, follow } from '#projections';
import { HubProblem } from '../http/hub-problem.js';

/** Events read at start past which the catch-up is logged. */
const LONG_CATCH_UP = 100_000;

/** A `current()` refused because the hub is stopping: its catch-up was cut short (503 SERVICE_UNAVAILABLE to a caller). */
export class ProjectionStopping extends HubProblem {
  override readonly name = 'ProjectionStopping';
  constructor(detail: string) {
    super('SERVICE_UNAVAILABLE', detail);
  }
}

/** A projection store the hub follows: applies the log from its checkpoint, and closes. */
export interface FollowedStore extends LogProjection {
  close(): Promise<void>;
}

/**
 * A projection kept in its own file beside the ledger (I8), followed live from its stored checkpoint and
 * restarted after a failure. `current()` catches up to the head first, so a reader sees every event that
 * was acknowledged before it asked.
 */
export abstract class FollowedProjection<S extends FollowedStore> implements OnModuleInit, OnModuleDestroy, OnApplicationShutdown {
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
    // A long first catch-up (a log written in bulk, a file made anew) is said, with what it cost.
    try {
      const from = (await store.checkpoint()) + 1;
      const started = Date.now();
      const reached = await catchUp(this.events, store, { signal });
      if (reached + 1 - from >= LONG_CATCH_UP) this.#logger.log(`${this.name} ${signal.aborted ? 'stopped catching up' : 'caught up'} at position ${reached}: ${reached + 1 - from} events read from position ${from} in ${((Date.now() - started) / 1000).toFixed(1)} s`);
    } catch {
      // follow() below catches up again, and reports what fails
    }
    while (!signal.aborted) {
      try {
        await follow(this.events, store, { signal, onError: (e) => this.#logger.error(`${this.name} stopped: ${e instanceof Error ? e.message : String(e)}`) });
      } catch (error) {
        if (!signal.aborted) this.#logger.error(`${this.name} follower failed: ${error instanceof Error ? error.message : String(error)}`);
      }
      if (!signal.aborted) await new Promise((resolve) => setTimeout(resolve, 500).unref());
    }
  }

  /**
   * The store, caught up with every event acknowledged so far. Once the hub is stopping, a catch-up longer
   * than a page is cut short and refused rather than finished.
   */
  async current(): Promise<S> {
    const store = this.#store;
    if (store === undefined) throw new Error(`${this.name} is not open yet`);
    const signal = this.#abort.signal;
    const reached = await catchUp(this.events, store, { signal });
    if (signal.aborted && reached < (await this.events.head()) - 1) throw new ProjectionStopping(`the hub is shutting down (${this.name} had caught up to position ${reached}, not to the log's head); send the request again later`);
    return store;
  }

  /**
   * First of the shutdown hooks: following stops, and so does a long catch-up of `current()` (a first start
   * over a long log), so that services which wait for their work in the later hooks are not held until
   * the projection reaches the log's head.
   */
  onModuleDestroy(): void {
    this.#abort.abort();
  }

  async onApplicationShutdown(): Promise<void> {
    this.#abort.abort();
    await this.#following?.catch(() => {});
    await this.#store?.close();
  }
}
