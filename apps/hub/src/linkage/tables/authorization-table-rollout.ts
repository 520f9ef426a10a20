import { Inject, Injectable } from '@nestjs/common';
import { EventBus } from '@nestjs/cqrs';
import { createHash } from 'node:crypto';
import { canonicalize, type EventStore, type RecordedEvent, type SerialNumber } from '#ledger';
import {
  AUTHORIZATION_TABLE_STREAM,
  decideAuthorizationTables,
  diffAuthorizationTables,
  tableInForce,
  tableVersionStates,
  type AuthorizationTableDiff,
  type AuthorizationTablePublishedData,
  type AuthorizationTablesState,
  type AuthorizationTableWithdrawnData,
  type TableVersionState,
} from '#linkage';
import { HubProblem } from '../../http/hub-problem.js';
import { appendDecided, IdempotencyKeys, priorSerial, type Caller, type Outcome } from '../../ledger/idempotency.js';
import { loadStream } from '../../ledger/load-stream.js';
import { hasCode, withRetries } from '../../ledger/retry.js';
import { CLOCK, LEDGER, type Clock } from '../../ledger/tokens.js';
import { AUTHORIZATION_TABLE } from '../table-publications.js';
import { AuthorizationTableSchema } from './table-schema.js';

/** What publishing (or validating) a version answers. */
export interface PublishedVersion {
  readonly version: number;
  readonly effectiveFrom: string;
  /** SHA-256 of the table's RFC 8785 canonical JSON, as the event holds it. */
  readonly digest: string;
  /** `scheduled` until effectiveFrom; `in-force` for a version that takes effect at once. */
  readonly state: TableVersionState;
  /** The serial of the AuthorizationTablePublished event; absent for a validation (nothing appended). */
  readonly serial?: string;
  /** Against the version in force when the request was decided. */
  readonly diff: AuthorizationTableDiff;
}

export interface WithdrawnVersion {
  readonly version: number;
  readonly serial: string;
  readonly withdrawnAt: string;
}

export interface VersionView {
  readonly version: number;
  readonly effectiveFrom: string;
  readonly digest: string;
  readonly publishedAt: string;
  readonly state: TableVersionState;
  readonly title?: string;
  readonly withdrawnAt?: string;
  readonly withdrawalReason?: string;
}

/**
 * The operator's rollout of authorization table versions without a restart (docs/authorization-table-rollout.md):
 * publish a version with an effectiveFrom (validated, with the diff against the version in force), validate
 * one without publishing, withdraw a version before it takes effect, list every version with its state.
 * Publishing and withdrawing are commands on the `authorization-table` stream, each its own serial; their
 * refusals are recorded by the edges (RecordsRefusals / recorded). On KurrentDB only the leader appends: a
 * standby's store refuses the append (503 NOT_LEADER), and validation and listing, which append nothing,
 * work on both.
 */
@Injectable()
export class AuthorizationTableRollout {
  readonly #schema = new AuthorizationTableSchema();

  constructor(
    @Inject(LEDGER) private readonly store: EventStore,
    @Inject(CLOCK) private readonly clock: Clock,
    private readonly eventBus: EventBus,
    private readonly idempotencyKeys: IdempotencyKeys,
  ) {}

  /** Everything publish checks, and the diff it would answer; appends nothing. */
  async validate(table: unknown): Promise<PublishedVersion> {
    this.#schema.check(table);
    const { state } = await loadStream(this.store, AUTHORIZATION_TABLE_STREAM, AUTHORIZATION_TABLE.fold);
    return this.#decide(table, state, this.clock().toISOString()).answer;
  }

  async publish(table: unknown, caller: Caller): Promise<Outcome<PublishedVersion>> {
    this.#schema.check(table);
    const idempotency = this.idempotencyKeys.scope(caller, { command: 'PublishAuthorizationTable', table });
    // A retry of a publication that succeeded is answered before the decider, which would refuse it as not newer.
    const prior = idempotency === undefined ? undefined : await priorSerial(this.store, idempotency);
    if (prior !== undefined) return { value: await this.#replayPublished(prior), replayed: true };
    return withRetries(4, (e) => hasCode(e, 'WRONG_EXPECTED_REVISION'), async () => {
      const { state, expectedRevision } = await loadStream(this.store, AUTHORIZATION_TABLE_STREAM, AUTHORIZATION_TABLE.fold);
      const { answer, events } = this.#decide(table, state, this.clock().toISOString());
      return appendDecided(this.store, this.eventBus, { streamId: AUTHORIZATION_TABLE_STREAM, expectedRevision, events, caller, idempotency }, (result) => ({ ...answer, serial: result.serial }), (serial) => this.#replayPublished(serial));
    });
  }

  async withdraw(version: number, reason: string, caller: Caller): Promise<Outcome<WithdrawnVersion>> {
    const idempotency = this.idempotencyKeys.scope(caller, { command: 'WithdrawAuthorizationTable', version, reason });
    const prior = idempotency === undefined ? undefined : await priorSerial(this.store, idempotency);
    if (prior !== undefined) return { value: await this.#replayWithdrawn(prior), replayed: true };
    return withRetries(4, (e) => hasCode(e, 'WRONG_EXPECTED_REVISION'), async () => {
      const { state, expectedRevision } = await loadStream(this.store, AUTHORIZATION_TABLE_STREAM, AUTHORIZATION_TABLE.fold);
      const withdrawnAt = this.clock().toISOString();
      const events = decideAuthorizationTables({ type: 'WithdrawAuthorizationTable', data: { version, reason, withdrawnAt } }, state);
      return appendDecided(this.store, this.eventBus, { streamId: AUTHORIZATION_TABLE_STREAM, expectedRevision, events, caller, idempotency }, (result) => ({ version, serial: result.serial, withdrawnAt }), (serial) => this.#replayWithdrawn(serial));
    });
  }

  /** Every published version, oldest first, with its state now. */
  async list(): Promise<{ readonly versions: readonly VersionView[]; readonly inForce?: number }> {
    const { state } = await loadStream(this.store, AUTHORIZATION_TABLE_STREAM, AUTHORIZATION_TABLE.fold);
    const now = this.clock().toISOString();
    const inForce = tableInForce(state, now)?.version;
    const versions = tableVersionStates(state, now).map(({ table: v, state: s }) => ({
      version: v.version,
      effectiveFrom: v.effectiveFrom,
      digest: v.digest,
      publishedAt: v.publishedAt,
      state: s,
      ...(v.table.title === undefined ? {} : { title: v.table.title }),
      ...(v.withdrawnAt === undefined ? {} : { withdrawnAt: v.withdrawnAt }),
      ...(v.withdrawalReason === undefined ? {} : { withdrawalReason: v.withdrawalReason }),
    }));
    return { versions, ...(inForce === undefined ? {} : { inForce }) };
  }

  #decide(table: unknown, state: AuthorizationTablesState, now: string) {
    const digest = createHash('sha256').update(canonicalize(table) ?? '', 'utf8').digest('hex');
    const events = decideAuthorizationTables({ type: 'PublishAuthorizationTable', data: { table, digest, publishedAt: now } }, state);
    const published = events[0]!.data as AuthorizationTablePublishedData;
    const diff = diffAuthorizationTables(tableInForce(state, now)?.table, published.table);
    const answer: PublishedVersion = { version: published.version, effectiveFrom: published.effectiveFrom, digest, state: Date.parse(published.effectiveFrom) <= Date.parse(now) ? 'in-force' : 'scheduled', diff };
    return { answer, events };
  }

  /** A retry of a publication that succeeded: its answer rebuilt from its event (the diff against the version then in force). */
  async #replayPublished(serial: SerialNumber): Promise<PublishedVersion> {
    const events = await this.store.readStream(AUTHORIZATION_TABLE_STREAM);
    const index = events.findIndex((e) => e.serial === serial);
    if (index < 0) throw new HubProblem('INTERNAL', `no authorization table event carries serial ${serial}`);
    const d = events[index]!.data as unknown as AuthorizationTablePublishedData;
    let before: AuthorizationTablesState = AUTHORIZATION_TABLE.fold.initialState();
    for (const e of events.slice(0, index)) if (AUTHORIZATION_TABLE.fold.types.has(e.type)) before = AUTHORIZATION_TABLE.fold.evolve(before, e as unknown as Parameters<typeof AUTHORIZATION_TABLE.fold.evolve>[1]);
    return {
      version: d.version,
      effectiveFrom: d.effectiveFrom,
      digest: d.digest,
      serial,
      state: tableVersionStates(AUTHORIZATION_TABLE.fold.evolve(before, events[index] as unknown as Parameters<typeof AUTHORIZATION_TABLE.fold.evolve>[1]), this.clock().toISOString()).at(-1)!.state,
      diff: diffAuthorizationTables(tableInForce(before, d.publishedAt)?.table, d.table),
    };
  }

  async #replayWithdrawn(serial: SerialNumber): Promise<WithdrawnVersion> {
    const d = (await this.#eventOf(serial)).data as unknown as AuthorizationTableWithdrawnData;
    return { version: d.version, serial, withdrawnAt: d.withdrawnAt };
  }

  async #eventOf(serial: SerialNumber): Promise<RecordedEvent> {
    const event = (await this.store.readStream(AUTHORIZATION_TABLE_STREAM)).find((e) => e.serial === serial);
    if (event === undefined) throw new HubProblem('INTERNAL', `no authorization table event carries serial ${serial}`);
    return event;
  }
}
