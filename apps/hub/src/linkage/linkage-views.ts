import { Inject, Injectable, Logger, type OnApplicationBootstrap, type OnApplicationShutdown, type OnModuleDestroy } from '@nestjs/common';
import { EventBus } from '@nestjs/cqrs';
import { join } from 'node:path';
import type { Subscription } from 'rxjs';
import type { EventStore, RecordedEvent } from '#ledger';
import {
  agencyFacts,
  compileAuthorizationPolicy,
  compileSelfDisclosurePolicy,
  selfDisclosureTableInForce,
  tableInForce,
  type AgencyFacts,
  type AgencyRegistryState,
  type AuthorizationPolicy,
  type AuthorizationTablesState,
  type PublishedSelfDisclosureTable,
  type PublishedTable,
  type SelfDisclosurePolicy,
  type SubjectId,
} from '#linkage';
import type { SqliteCodeIndex } from '#mapper';
import { EventSealer } from '#sealing';
import { CitizenCredentialIndex } from '../citizens/citizen-credential-index.js';
import { HubConfig } from '../config/hub-config.js';
import { EventsAppended } from '../ledger/events-appended.event.js';
import { EVENT_STORE } from '../ledger/tokens.js';
import { LookupSeal } from '../state/lookup-seal.js';
import { LOOKUPS_FILE, LOOKUP_TYPES, SqliteLookupStore, type NumberHolder } from '../state/lookup-store.js';

export type { NumberHolder } from '../state/lookup-store.js';

/** Events read per page while catching up (one transaction each, the event loop served between pages). */
const PAGE = 2000;
/** A catch-up longer than this many events reports its progress in the log. */
const PROGRESS_EVERY = 250_000;

/**
 * The hub's views of the log that commands consult before deciding: the agency registry (by id and by
 * credential digest), who holds which individual number digest, citizens' credentials, the
 * authorization tables, and the issued agency codes. All are folds of the log kept in the lookup file
 * `<dataDir>/lookups.db` (SqliteLookupStore) with its own checkpoint (I8, I11): a start reads only the
 * events after it, and nothing per person is held in memory. `catchUp()`, which handlers call before a
 * decision, folds every event up to the head, so that a command always sees every event acknowledged
 * before it (an agency registered a moment ago, a revocation). Deleting the file rebuilds it from the log.
 */
@Injectable()
export class LinkageViews implements OnApplicationBootstrap, OnModuleDestroy, OnApplicationShutdown {
  readonly #logger = new Logger('LinkageViews');
  readonly #lookups: SqliteLookupStore;
  /** Citizens' passkeys and which enrolment secrets still admit them (apps/hub/src/citizens). */
  readonly citizenCredentials: CitizenCredentialIndex;
  /** Compiled policies, one per table version (a handful). */
  readonly #policies = new Map<number, AuthorizationPolicy>();
  readonly #selfDisclosurePolicies = new Map<number, SelfDisclosurePolicy>();
  #reading: Promise<void> | undefined;
  #stopping = false;
  /**
   * Position ranges this process appended with no event the lookups fold (queries, provisions…), by first
   * position: catching up steps over them instead of reading and parsing them again. What is not here
   * (appends of other processes, recovery, checkpoints) is read as usual. Bounded: ranges behind the
   * position are dropped.
   */
  readonly #skippable = new Map<number, number>();
  readonly #subscription: Subscription;

  constructor(
    @Inject(EVENT_STORE) private readonly store: EventStore,
    eventBus: EventBus,
    sealer: EventSealer,
    config: HubConfig,
  ) {
    this.#lookups = new SqliteLookupStore({ path: join(config.dataDir, LOOKUPS_FILE), open: (e) => sealer.open(e), seal: new LookupSeal((d, v, n) => sealer.handle(d, v, n)) });
    this.citizenCredentials = new CitizenCredentialIndex(this.#lookups);
    this.#subscription = eventBus.subscribe((event) => {
      if (!(event instanceof EventsAppended) || this.#stopping || event.firstPosition <= this.#lookups.position) return;
      if (!event.types.some((t) => LOOKUP_TYPES.has(t))) this.#skippable.set(event.firstPosition, event.lastPosition);
    });
  }

  /** Starts folding what the log holds past the lookups' checkpoint (a fresh file: the whole log), in the background. */
  onApplicationBootstrap(): void {
    const from = this.position;
    const started = Date.now();
    // Always two lines at start: where the file stands, and when it has reached the log's head.
    this.#logger.log(`lookups (${LOOKUPS_FILE}) resume at position ${from}`);
    void this.catchUp()
      .then(() => {
        if (!this.#stopping) this.#logger.log(`lookups caught up with the log at start: position ${this.position}, ${this.position - from} events read in ${((Date.now() - started) / 1000).toFixed(1)} s`);
      })
      .catch((error: unknown) => {
        // Commands catch up again before deciding (and fail as loudly as this would); the self-check reports a damaged log.
        if (!this.#stopping) this.#logger.warn(`lookups not caught up at start (each command tries again): ${error instanceof Error ? error.message : String(error)}`);
      });
  }

  onModuleDestroy(): void {
    this.#stopping = true;
    this.#subscription.unsubscribe();
  }

  async onApplicationShutdown(): Promise<void> {
    this.#stopping = true;
    await this.#reading?.catch(() => {});
    await this.#lookups.close();
  }

  /** Position of the next event to apply. */
  get position(): number {
    return this.#lookups.position + 1;
  }

  /** The lookup file (for tests and the operator's rebuild). */
  get lookups(): SqliteLookupStore {
    return this.#lookups;
  }

  /** The issued agency codes (the code mapper's store fallback answers from them). */
  get codes(): SqliteCodeIndex {
    return this.#lookups.codes;
  }

  /** Folds every event up to the store's head. Concurrent callers share one read. */
  async catchUp(): Promise<void> {
    this.#stepOverSkippable();
    if ((await this.store.head()) <= this.position) return;
    this.#reading ??= this.#read().finally(() => {
      this.#reading = undefined;
    });
    return this.#reading;
  }

  /** One page of the log from `fromPosition` (the lookups' only read of the log). */
  readPage(fromPosition: number): Promise<readonly RecordedEvent[]> {
    return this.store.readAll({ fromPosition, maxCount: PAGE });
  }

  async #read(): Promise<void> {
    const started = Date.now();
    const from = this.position;
    let head: number | undefined;
    let reported = from;
    for (;;) {
      if (this.#stopping) return;
      this.#stepOverSkippable();
      const page = await this.readPage(this.position);
      if (page.length === 0) break;
      if (this.#stopping) return;
      await this.#lookups.apply(page);
      // The store's read and the fold are synchronous underneath: between full pages, let the event loop
      // serve requests and timers (health, metrics), or a long catch-up would starve them until its end.
      if (page.length === PAGE) await new Promise((resolve) => setImmediate(resolve));
      if (this.position - reported >= PROGRESS_EVERY) {
        head ??= await this.store.head();
        if (reported === from) this.#logger.log(`catching up the lookups from position ${from} to the log's head ${head}`);
        reported = this.position;
        const seconds = (Date.now() - started) / 1000;
        this.#logger.log(`lookups at position ${this.position} of ${head} (${Math.round((this.position - from) / Math.max(seconds, 0.001))} events/s)`);
      }
    }
    if (reported !== from) this.#logger.log(`lookups caught up at position ${this.position} (${this.position - from} events in ${((Date.now() - started) / 1000).toFixed(1)} s)`);
  }

  #stepOverSkippable(): void {
    for (let first = this.position, last = this.#skippable.get(first); last !== undefined; first = this.position, last = this.#skippable.get(first)) {
      this.#skippable.delete(first);
      if (!this.#lookups.stepOver(first, last)) break;
    }
    if (this.#skippable.size > 10_000) for (const first of this.#skippable.keys()) if (first < this.position) this.#skippable.delete(first);
  }

  /** The registry's state of an agency (unregistered when unknown). */
  agency(agencyId: string): AgencyRegistryState {
    return this.#lookups.agency(agencyId);
  }

  facts(agencyId: string): AgencyFacts | undefined {
    return agencyFacts(this.agency(agencyId));
  }

  /** The active agency whose current credential has this digest. */
  agencyByCredential(digest: string): string | undefined {
    return this.#lookups.agencyByCredential(digest);
  }

  /** The revoked agency whose last credential has this digest. */
  revokedAgencyByCredential(digest: string): string | undefined {
    return this.#lookups.revokedAgencyByCredential(digest);
  }

  agencies(): AgencyRegistryState[] {
    return this.#lookups.agencies();
  }

  holderOf(numberDigest: string): NumberHolder | undefined {
    return this.#lookups.holderOf(numberDigest);
  }

  /** The citizen whose enrolment secret (one that still admits them) has this digest. */
  citizenByCredential(digest: string): SubjectId | undefined {
    const subject = this.#lookups.secretHolder(digest);
    return subject !== undefined && this.#lookups.secretAdmits(subject, digest) ? subject : undefined;
  }

  /** The citizen whose enrolment secret, retired by a passkey or replaced by a new one, has this digest. */
  citizenByRetiredSecret(digest: string): SubjectId | undefined {
    const subject = this.#lookups.secretHolder(digest);
    return subject !== undefined && !this.#lookups.secretAdmits(subject, digest) ? subject : undefined;
  }

  tables(): AuthorizationTablesState {
    return this.#lookups.authorizationTables();
  }

  /** The table version in force at `at` and its compiled policy (compiled once per version). */
  inForce(at: string): { readonly table: PublishedTable; readonly policy: AuthorizationPolicy } | undefined {
    const table = tableInForce(this.#lookups.authorizationTables(), at);
    if (table === undefined) return undefined;
    let policy = this.#policies.get(table.version);
    if (policy === undefined) {
      policy = compileAuthorizationPolicy(table.table);
      this.#policies.set(table.version, policy);
    }
    return { table, policy };
  }

  /** The self-disclosure table version in force at `at` and its compiled policy (自己情報表示). */
  selfDisclosureInForce(at: string): { readonly table: PublishedSelfDisclosureTable; readonly policy: SelfDisclosurePolicy } | undefined {
    const table = selfDisclosureTableInForce(this.#lookups.selfDisclosureTables(), at);
    if (table === undefined) return undefined;
    let policy = this.#selfDisclosurePolicies.get(table.version);
    if (policy === undefined) {
      policy = compileSelfDisclosurePolicy(table.table);
      this.#selfDisclosurePolicies.set(table.version, policy);
    }
    return { table, policy };
  }
}
