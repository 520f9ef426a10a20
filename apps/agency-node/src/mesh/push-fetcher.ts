import { Logger } from '@nestjs/common';
import { AgencyProblem } from '../http/agency-problem.js';
import type { RequesterService } from '../requester/requester.service.js';
import type { AgencyStore } from '../store/agency-store.js';
import type { FetchOutcome, PushFetch, ReceivedPush } from '../store/mesh-store.js';
import type { Clock } from '../tokens.js';

export interface FetcherOptions {
  /** Attempts per push for a failure that may pass (the hub or the provider unreachable, 5xx); default 5. */
  readonly attempts?: number;
  /** The first pause between attempts, doubled after each; default 1000 ms. */
  readonly backoffMs?: number;
}

/**
 * After a push: obtains the new value by an ordinary lawful query to the hub, with the push's own code
 * (the node's person under it), procedure, provider and item, sealed to this node's answer key, exactly
 * as a staff query (RequesterService: the provision record gets its line). The outcome, with the items
 * when answered, is stored once beside the push (push_fetches). Pushes are fetched one at a time in the
 * order received; a failure that may pass is tried again with exponential backoff, up to `attempts`.
 * Pending fetches are the pushes without an outcome in agency.sqlite, so a restart resumes them
 * (`resume()`), and a node stopped mid-backoff loses none.
 */
export class PushFetcher {
  private readonly logger = new Logger('PushFetcher');
  private readonly queue: string[] = [];
  private readonly queued = new Set<string>();
  private running: Promise<void> | undefined;
  private stopped = false;
  private wake: (() => void) | undefined;
  private readonly attempts: number;
  private readonly backoffMs: number;
  /** Told of each outcome stored (the metrics count them). */
  observe: (outcome: FetchOutcome) => void = () => {};

  constructor(
    private readonly store: AgencyStore,
    private readonly requester: RequesterService,
    private readonly clock: Clock,
    options: FetcherOptions = {},
  ) {
    this.attempts = options.attempts ?? 5;
    this.backoffMs = options.backoffMs ?? 1000;
  }

  /** Queues every push still without a fetch outcome (at start). */
  resume(): number {
    const pending = this.store.mesh.pendingFetches();
    for (const p of pending) this.enqueue(p.pushId);
    return pending.length;
  }

  enqueue(pushId: string): void {
    if (this.stopped || this.queued.has(pushId)) return;
    this.queued.add(pushId);
    this.queue.push(pushId);
    this.running ??= this.drain().finally(() => (this.running = undefined));
  }

  /** Resolves once nothing is queued or in flight (tests; a clean stop). */
  async idle(): Promise<void> {
    while (this.running !== undefined) await this.running;
  }

  /** Stops taking work and ends a pause at once; what is not fetched stays pending in the store. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.wake?.();
    await this.running;
  }

  private async drain(): Promise<void> {
    while (!this.stopped && this.queue.length > 0) {
      const pushId = this.queue.shift()!;
      try {
        const push = this.store.mesh.push(pushId);
        if (push !== undefined && push.fetch === null) await this.fetch(push);
      } catch (error) {
        // Left pending in the store: the next start tries again.
        this.logger.error(`fetching after push ${pushId} failed: ${error instanceof Error ? error.message : String(error)}`);
      } finally {
        this.queued.delete(pushId);
      }
    }
  }

  private async fetch(push: ReceivedPush): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      const outcome = await this.once(push);
      if (this.stopped && outcome.transient) return;
      if (!outcome.transient || attempt >= this.attempts) {
        this.store.mesh.recordFetch(push.pushId, { ...outcome.fetch, attempts: attempt, fetchedAt: this.clock().toISOString() });
        this.observe(outcome.fetch.outcome);
        return;
      }
      await this.pause(this.backoffMs * 2 ** (attempt - 1));
      if (this.stopped) return;
    }
  }

  private async once(push: ReceivedPush): Promise<{ transient: boolean; fetch: Omit<PushFetch, 'attempts' | 'fetchedAt'> }> {
    try {
      const result = await this.requester.query({
        localId: push.localId!,
        providerAgencyId: push.providerAgencyId,
        procedureCode: push.procedureCode,
        itemCodes: [push.itemCode],
        encrypt: true,
      });
      return result.outcome === 'answered'
        ? { transient: false, fetch: { serial: result.serial, outcome: 'answered', reason: null, items: result.items } }
        : { transient: false, fetch: { serial: result.serial, outcome: 'refused-by-provider', reason: result.reason, items: null } };
    } catch (error) {
      if (!(error instanceof AgencyProblem)) throw error;
      const serial = typeof error.extensions['serial'] === 'string' ? error.extensions['serial'] : null;
      if (error.code === 'PERSON_NOT_FOUND' || error.code === 'CODE_NOT_ACQUIRED') {
        return { transient: false, fetch: { serial: null, outcome: 'not-sent', reason: error.code, items: null } };
      }
      if (error.status === 403) return { transient: false, fetch: { serial, outcome: 'denied', reason: error.code, items: null } };
      return { transient: error.status >= 500, fetch: { serial, outcome: 'failed', reason: error.code, items: null } };
    }
  }

  private pause(ms: number): Promise<void> {
    return new Promise<void>((resolve) => {
      const timer = setTimeout(done, ms);
      function done(): void {
        clearTimeout(timer);
        resolve();
      }
      this.wake = done;
    }).finally(() => (this.wake = undefined));
  }
}
