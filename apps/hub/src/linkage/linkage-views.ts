import { Inject, Injectable, type OnModuleDestroy } from '@nestjs/common';
import { EventBus } from '@nestjs/cqrs';
import type { Subscription } from 'rxjs';
import type { EventStore, RecordedEvent } from '#ledger';
import {
  agencyFacts,
  compileAuthorizationPolicy,
  compileSelfDisclosurePolicy,
  evolveSelfDisclosureTables,
  initialSelfDisclosureTablesState,
  selfDisclosureTableInForce,
  evolveAgencyRegistry,
  evolveAuthorizationTables,
  initialAgencyRegistryState,
  initialAuthorizationTablesState,
  tableInForce,
  type AgencyFacts,
  type AgencyRegistryEvent,
  type AgencyRegistryState,
  type AuthorizationPolicy,
  type AuthorizationTableEvent,
  type AuthorizationTablesState,
  type Evolvable,
  type PublishedSelfDisclosureTable,
  type PublishedTable,
  type SelfDisclosurePolicy,
  type SelfDisclosureTablePublished,
  type SelfDisclosureTablesState,
  type SubjectId,
} from '#linkage';
import { EventSealer } from '#sealing';
import { CitizenCredentialIndex } from '../citizens/citizen-credential-index.js';
import { CITIZEN_CREDENTIAL_TYPES, type CitizenEnrolmentSecretIssuedData, type CitizenPasskeyEnrolledData, type CitizenPasskeyRemovedData } from '../citizens/citizen-credentials.decider.js';
import { EventsAppended } from '../ledger/events-appended.event.js';
import { EVENT_STORE } from '../ledger/tokens.js';

const REGISTRY_TYPES = new Set(['AgencyRegistered', 'AgencyUpdated', 'AgencyCredentialRotated', 'AgencyRevoked']);
/** Every event type a view folds; appends of other types only move the position. */
const VIEW_TYPES = new Set([...REGISTRY_TYPES, 'AuthorizationTablePublished', 'SelfDisclosureTablePublished', 'IndividualNumberIssued', 'IndividualNumberChanged', 'KeysShredded', ...CITIZEN_CREDENTIAL_TYPES]);

/** What the hub knows of one individual number digest. */
export interface NumberHolder {
  readonly subjectId: SubjectId;
  /** False once the number was replaced by a change of number (番号変更): it no longer identifies anyone. */
  readonly current: boolean;
  /** The municipality that numbered the person (全国地方公共団体コード). */
  readonly municipalityCode?: string;
}

/**
 * The hub's in-memory views of the log that commands consult before deciding: the agency registry (by
 * id and by credential digest), who holds which individual number digest, citizens' credential
 * digests, and the authorization tables. All are folds of the log (I8): rebuilt at start by reading it,
 * then kept current by `catchUp()`, which handlers call before a decision so that a command always sees
 * every event acknowledged before it (an agency registered a moment ago, a revocation).
 */
@Injectable()
export class LinkageViews implements OnModuleDestroy {
  readonly #agencies = new Map<string, AgencyRegistryState>();
  readonly #credentials = new Map<string, string>();
  /** The last credential digest of each revoked agency: a request presenting it is identified (and refused), not anonymous. */
  readonly #revokedCredentials = new Map<string, string>();
  readonly #numbers = new Map<string, NumberHolder>();
  readonly #citizens = new Map<string, SubjectId>();
  /** Citizens' passkeys and which enrolment secrets still admit them (apps/hub/src/citizens). */
  readonly citizenCredentials = new CitizenCredentialIndex();
  #tables: AuthorizationTablesState = initialAuthorizationTablesState();
  readonly #policies = new Map<number, AuthorizationPolicy>();
  #selfDisclosure: SelfDisclosureTablesState = initialSelfDisclosureTablesState();
  readonly #selfDisclosurePolicies = new Map<number, SelfDisclosurePolicy>();
  #next = 0;
  #reading: Promise<void> | undefined;
  /**
   * Position ranges this process appended with no event a view folds (queries, provisions…), by first
   * position: catching up steps over them instead of reading and parsing them again. What is not here
   * (appends of other processes, recovery, checkpoints) is read as usual.
   */
  readonly #skippable = new Map<number, number>();
  readonly #subscription: Subscription;

  constructor(
    @Inject(EVENT_STORE) private readonly store: EventStore,
    eventBus: EventBus,
    private readonly sealer: EventSealer,
  ) {
    this.#subscription = eventBus.subscribe((event) => {
      if (!(event instanceof EventsAppended) || event.firstPosition < this.#next) return;
      if (!event.types.some((t) => VIEW_TYPES.has(t))) this.#skippable.set(event.firstPosition, event.lastPosition);
    });
  }

  onModuleDestroy(): void {
    this.#subscription.unsubscribe();
  }

  /** Position of the next event to apply. */
  get position(): number {
    return this.#next;
  }

  /** Applies every event up to the store's head. Concurrent callers share one read. */
  async catchUp(): Promise<void> {
    this.#stepOverSkippable();
    if ((await this.store.head()) <= this.#next) return;
    this.#reading ??= this.#read().finally(() => {
      this.#reading = undefined;
    });
    return this.#reading;
  }

  async #read(): Promise<void> {
    for (;;) {
      this.#stepOverSkippable();
      const page = await this.store.readAll({ fromPosition: this.#next, maxCount: 5000 });
      if (page.length === 0) return;
      for (const event of page) this.#apply(event);
    }
  }

  #stepOverSkippable(): void {
    for (let last = this.#skippable.get(this.#next); last !== undefined; last = this.#skippable.get(this.#next)) {
      this.#skippable.delete(this.#next);
      this.#next = last + 1;
    }
    if (this.#skippable.size > 10_000) for (const first of this.#skippable.keys()) if (first < this.#next) this.#skippable.delete(first);
  }

  #apply(stored: RecordedEvent): void {
    if (stored.position !== this.#next) return; // already applied (a page raced another read)
    this.#next = stored.position + 1;
    if (!VIEW_TYPES.has(stored.type)) return;
    // Only the types a view folds are opened (I10: their credential digests and subject ids are sealed).
    const { state, event } = this.sealer.open(stored);
    if (state === 'shredded') return; // an erased person: nothing of them is looked up any more
    if (REGISTRY_TYPES.has(event.type)) return this.#applyRegistry(event as unknown as Evolvable<AgencyRegistryEvent>);
    switch (event.type) {
      case 'AuthorizationTablePublished':
        this.#tables = evolveAuthorizationTables(this.#tables, event as unknown as Evolvable<AuthorizationTableEvent>);
        return;
      case 'SelfDisclosureTablePublished':
        this.#selfDisclosure = evolveSelfDisclosureTables(this.#selfDisclosure, event as unknown as Evolvable<SelfDisclosureTablePublished>);
        return;
      case 'IndividualNumberIssued': {
        const d = event.data as { subjectId: SubjectId; numberDigest: string; citizenCredentialDigest?: string; municipalityCode?: string };
        this.#numbers.set(d.numberDigest, { subjectId: d.subjectId, current: true, ...(d.municipalityCode === undefined ? {} : { municipalityCode: d.municipalityCode }) });
        if (d.citizenCredentialDigest !== undefined) this.#citizens.set(d.citizenCredentialDigest, d.subjectId);
        return;
      }
      case 'IndividualNumberChanged': {
        const d = event.data as { subjectId: SubjectId; previousNumberDigest: string; numberDigest: string };
        const municipality = this.#numbers.get(d.previousNumberDigest)?.municipalityCode;
        const where = municipality === undefined ? {} : { municipalityCode: municipality };
        this.#numbers.set(d.previousNumberDigest, { subjectId: d.subjectId, current: false, ...where });
        this.#numbers.set(d.numberDigest, { subjectId: d.subjectId, current: true, ...where });
        return;
      }
      case 'KeysShredded': {
        // An erasure: the person's numbers identify nobody any more, and their secret admits nobody.
        const d = event.data as { scope?: string; subject?: string };
        if (d.scope !== 'erasure' || d.subject === undefined) return;
        for (const [digest, holder] of this.#numbers) if (holder.subjectId === d.subject) this.#numbers.delete(digest);
        for (const [digest, subject] of this.#citizens) if (subject === d.subject) this.#citizens.delete(digest);
        this.citizenCredentials.forget(d.subject);
        return;
      }
      case 'CitizenPasskeyEnrolled':
        this.citizenCredentials.enrolled(event.data as unknown as CitizenPasskeyEnrolledData);
        return;
      case 'CitizenPasskeyRemoved':
        this.citizenCredentials.removed(event.data as unknown as CitizenPasskeyRemovedData);
        return;
      case 'CitizenEnrolmentSecretIssued': {
        const d = event.data as unknown as CitizenEnrolmentSecretIssuedData;
        this.#citizens.set(d.credentialDigest, d.subjectId as SubjectId);
        this.citizenCredentials.secretIssued(d);
        return;
      }
      default:
        return;
    }
  }

  #applyRegistry(event: Evolvable<AgencyRegistryEvent>): void {
    const agencyId = event.data.agencyId;
    const before = this.#agencies.get(agencyId) ?? initialAgencyRegistryState();
    const after = evolveAgencyRegistry(before, event);
    this.#agencies.set(agencyId, after);
    if (before.status !== 'unregistered') this.#credentials.delete(before.agency.credentialDigest);
    if (after.status === 'active') this.#credentials.set(after.agency.credentialDigest, agencyId);
    if (after.status === 'revoked') this.#revokedCredentials.set(after.agency.credentialDigest, agencyId);
  }

  /** The registry's state of an agency (unregistered when unknown). */
  agency(agencyId: string): AgencyRegistryState {
    return this.#agencies.get(agencyId) ?? initialAgencyRegistryState();
  }

  facts(agencyId: string): AgencyFacts | undefined {
    return agencyFacts(this.agency(agencyId));
  }

  /** The active agency whose current credential has this digest. */
  agencyByCredential(digest: string): string | undefined {
    return this.#credentials.get(digest);
  }

  /** The revoked agency whose last credential has this digest. */
  revokedAgencyByCredential(digest: string): string | undefined {
    return this.#revokedCredentials.get(digest);
  }

  agencies(): AgencyRegistryState[] {
    return [...this.#agencies.values()];
  }

  holderOf(numberDigest: string): NumberHolder | undefined {
    return this.#numbers.get(numberDigest);
  }

  /** The citizen whose enrolment secret (one that still admits them) has this digest. */
  citizenByCredential(digest: string): SubjectId | undefined {
    const subject = this.#citizens.get(digest);
    return subject !== undefined && this.citizenCredentials.secretAdmits(subject, digest) ? subject : undefined;
  }

  /** The citizen whose enrolment secret, retired by a passkey or replaced by a new one, has this digest. */
  citizenByRetiredSecret(digest: string): SubjectId | undefined {
    const subject = this.#citizens.get(digest);
    return subject !== undefined && !this.citizenCredentials.secretAdmits(subject, digest) ? subject : undefined;
  }

  tables(): AuthorizationTablesState {
    return this.#tables;
  }

  /** The table version in force at `at` and its compiled policy (compiled once per version). */
  inForce(at: string): { readonly table: PublishedTable; readonly policy: AuthorizationPolicy } | undefined {
    const table = tableInForce(this.#tables, at);
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
    const table = selfDisclosureTableInForce(this.#selfDisclosure, at);
    if (table === undefined) return undefined;
    let policy = this.#selfDisclosurePolicies.get(table.version);
    if (policy === undefined) {
      policy = compileSelfDisclosurePolicy(table.table);
      this.#selfDisclosurePolicies.set(table.version, policy);
    }
    return { table, policy };
  }
}
