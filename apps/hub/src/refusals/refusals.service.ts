import { Inject, Injectable, Logger, type BeforeApplicationShutdown, type OnModuleDestroy, type OnModuleInit } from '@nestjs/common';
import { EventBus } from '@nestjs/cqrs';
import { randomUUID } from 'node:crypto';
import type { EventStore } from '#ledger';
import { decideRateLimitedRecord, decideRefusal, decideUnauthenticatedRecord, isAgencyCode, rateLimitedStreamId, refusalStreamId, unauthenticatedStreamId, type RefusedCaller } from '#linkage';
import { HubConfig } from '../config/hub-config.js';
import { HubProblem, RequestValidationError } from '../http/hub-problem.js';
import { markRecorded, recordedSerial, toProblem } from '../http/problem.js';
import { EventsAppended } from '../ledger/events-appended.event.js';
import { CLOCK, LEDGER, type Clock } from '../ledger/tokens.js';
import type { Leadership } from '../leadership/leadership.js';
import { LEADERSHIP } from '../leadership/tokens.js';
import type { IdentifiedCaller } from '../linkage/authenticator.js';
import type { PrincipalKind } from '../rate-limits/rate-limit-settings.js';
import { RateLimits } from '../rate-limits/rate-limits.service.js';

/** One refused request as the edges report it. */
export interface RefusedRequest {
  readonly caller: IdentifiedCaller;
  /** The command refused, e.g. SubmitQuery. */
  readonly command: string;
  readonly error: unknown;
  /** Where it came from (a network address): kept, sealed, only for callers the hub could not identify. */
  readonly source: string;
  /** The request's body, when it has one: the agency it names and a code it presents are taken from it. */
  readonly body?: unknown;
  /** The hub's id of the request (its events and log lines carry it); absent: the refusal gets one of its own. */
  readonly correlationId?: string;
}

/** One kind's requests refused for their rate in the interval (bounded: see MAX_PRINCIPALS, maxSources). */
interface LimitedTally {
  count: number;
  /** Distinct principals refused (up to MAX_PRINCIPALS; kept in memory only, never recorded for citizens). */
  readonly principals: Set<string>;
  readonly commands: Map<string, number>;
  /** Counts per agency id or per source address (up to 10 × maxSources), the largest recorded. */
  readonly named: Map<string, number>;
}

/** Distinct principals a rate-limited tally tells apart per interval: beyond, `principals` is a lower bound. */
const MAX_PRINCIPALS = 100_000;

interface SourceTally {
  count: number;
  readonly reasons: Map<string, number>;
  readonly commands: Map<string, number>;
}

/** One event's worth of counts: a source's, or (source '') the sum of `sources` sources beyond maxSources. */
interface TallyRecord {
  readonly source: string;
  readonly tally: SourceTally;
  readonly sources: number;
}

/** Counts a standby holds until it leads: since `start`, at most maxSources sources and one sum of the rest. */
interface Held {
  readonly start: Date;
  readonly bySource: Map<string, SourceTally>;
  rest: { tally: SourceTally; sources: number } | undefined;
}

const UNIDENTIFIED = new Set(['anonymous', 'malformed', 'unknown']);

function emptyTally(): SourceTally {
  return { count: 0, reasons: new Map(), commands: new Map() };
}

function addInto(sum: SourceTally, t: SourceTally): void {
  sum.count += t.count;
  for (const [k, v] of t.reasons) sum.reasons.set(k, (sum.reasons.get(k) ?? 0) + v);
  for (const [k, v] of t.commands) sum.commands.set(k, (sum.commands.get(k) ?? 0) + v);
}

/**
 * Every refusal is an event (I6). A refused command from a caller the hub could identify ends a serial of
 * its own in a RequestRefused event (attributed only to the agency its credential proves; the agency a
 * request merely names is kept apart); refusals of callers it could not identify are counted per source
 * and flushed once per interval, one UnauthenticatedRequestsRecorded event per source (at most
 * `maxSources`, the rest summed in one more), so a flood of forged requests adds a bounded number of events.
 * Refusals the domain already recorded (QueryDenied) and failures (5xx) are not refusals here.
 *
 * On KurrentDB only the leader appends: a standby keeps counting (and throttling) per interval, and holds
 * each interval's counts, bounded the same way (at most `maxSources` sources and one sum of the rest),
 * until it leads; it then records them, as one interval from the first one held, at once. Nothing is
 * logged per interval while it holds them.
 */
@Injectable()
export class Refusals implements OnModuleInit, BeforeApplicationShutdown, OnModuleDestroy {
  readonly #logger = new Logger('Refusals');
  #tallies = new Map<string, SourceTally>();
  #intervalStart: Date;
  #timer: NodeJS.Timeout | undefined;
  #flushing: Promise<void> = Promise.resolve();
  #held: Held | undefined;
  /** Refusals of identified callers this hub answered while standing by, unrecorded (since it last led). */
  #unrecorded = 0;
  /** Requests refused for their rate, per kind of principal, since #limitedStart (a standby holds them until it leads). */
  #limited = new Map<PrincipalKind, LimitedTally>();
  #limitedStart: Date;

  constructor(
    @Inject(LEDGER) private readonly store: EventStore,
    @Inject(CLOCK) private readonly clock: Clock,
    private readonly eventBus: EventBus,
    private readonly config: HubConfig,
    @Inject(LEADERSHIP) private readonly leadership: Leadership | null,
    private readonly rateLimits: RateLimits,
  ) {
    this.#intervalStart = this.clock();
    this.#limitedStart = this.#intervalStart;
    // A standby that becomes the leader records what it held at once.
    leadership?.onRoleChange((role) => {
      if (role !== 'leader') return;
      if (this.#unrecorded > 0) this.#logger.warn(`${this.#unrecorded} refusal(s) of identified callers answered while this hub stood by were not recorded`);
      this.#unrecorded = 0;
      if (this.#held !== undefined || this.#limited.size > 0) void this.flush();
    });
  }

  onModuleInit(): void {
    this.#timer = setInterval(() => void this.flush(), this.config.unidentifiedRefusals.intervalMs);
    this.#timer.unref();
  }

  /** Counts what is left before the ledger closes. */
  async beforeApplicationShutdown(): Promise<void> {
    if (this.#timer !== undefined) clearInterval(this.#timer);
    await this.flush();
    if (this.#held !== undefined) {
      const count = this.#heldRecords().reduce((n, r) => n + r.tally.count, 0);
      this.#logger.warn(`${count} refusal(s) of unidentified callers counted while this hub stood by are not recorded: it stops without having led`);
    }
  }

  /** Refusals of identified callers answered while standing by and not recorded (since this hub last led). */
  get unrecordedIdentified(): number {
    return this.#unrecorded;
  }

  /** Refusals of unidentified callers a standby counted and holds until it leads (0 when it holds none). */
  get heldUnidentified(): number {
    return this.#held === undefined ? 0 : this.#heldRecords().reduce((n, r) => n + r.tally.count, 0);
  }

  onModuleDestroy(): void {
    if (this.#timer !== undefined) clearInterval(this.#timer);
  }

  /**
   * Records a refused request (see the class comment) and marks the error with the serial of its event,
   * so that the problem answered names it. Never throws: a refusal that cannot be recorded is logged.
   */
  async record(refused: RefusedRequest): Promise<void> {
    const { problem, unexpected } = toProblem(refused.error, { instance: '', correlationId: '' });
    if (unexpected || problem.status < 400 || problem.status >= 500) return;
    // Recorded already: the domain's own refusal event (QueryDenied), or this same error met twice.
    if (problem['serial'] !== undefined || recordedSerial(refused.error) !== undefined) return;
    // Counted already, in the interval's record of rate-limited requests (`limit`): never one event per request.
    if (problem.code === 'RATE_LIMITED') return;
    const caller = refused.caller;
    if (UNIDENTIFIED.has(caller.kind)) {
      this.#count(refused.source, problem.code, refused.command);
      return;
    }
    try {
      const serial = await this.#refuse(caller as Exclude<IdentifiedCaller, { kind: 'anonymous' | 'malformed' | 'unknown' }>, refused, problem.code);
      markRecorded(refused.error, serial);
    } catch (error) {
      if (isNotLeader(error)) {
        // A standby appends nothing: said once per time it stands by, counted, not logged per request.
        if (this.#unrecorded++ === 0) this.#logger.warn('this hub stands by: refusals of callers it identified are not recorded here (one event each, appended only by the leader); counting them until it leads');
        return;
      }
      this.#logger.error(`a ${refused.command} refusal (${problem.code}) could not be recorded: ${error instanceof Error ? error.message : String(error)}`);
    }
  }

  async #refuse(caller: Exclude<IdentifiedCaller, { kind: 'anonymous' | 'malformed' | 'unknown' }>, refused: RefusedRequest, reason: string): Promise<string> {
    const body = (typeof refused.body === 'object' && refused.body !== null ? refused.body : {}) as Record<string, unknown>;
    const refusedCaller: RefusedCaller =
      caller.kind === 'agency' ? { kind: 'agency', agencyId: caller.agencyId, credential: caller.credential } : caller.kind === 'citizen' ? { kind: 'citizen', subjectId: caller.subjectId } : { kind: caller.kind };
    const code = body['code'];
    const refusalId = randomUUID();
    const events = decideRefusal({
      refusalId,
      command: refused.command,
      reason,
      caller: refusedCaller,
      ...(typeof body['requesterAgencyId'] === 'string' ? { claimedAgencyId: body['requesterAgencyId'] } : {}),
      ...(refused.error instanceof RequestValidationError ? { fields: refused.error.errors.map((e) => e.field) } : {}),
      // A code the caller presented (a notice's address): sealed for the hub, kept to trace misuse.
      ...(isAgencyCode(code) ? { presented: { code } } : {}),
      ...(caller.kind === 'citizen' ? { subjectId: caller.subjectId } : {}),
      refusedAt: this.clock().toISOString(),
    });
    const streamId = refusalStreamId(refusalId);
    const actor = caller.kind === 'agency' ? `agency:${caller.agencyId}` : caller.kind === 'operator' ? 'operator:hub' : caller.kind === 'auditor' ? 'auditor:hub' : 'citizen';
    const result = await this.store.append({ streamId, expectedRevision: 'no_stream', events, serial: { allocate: true }, metadata: { actor, correlationId: refused.correlationId ?? randomUUID() } });
    this.eventBus.publish(EventsAppended.of(streamId, result, events.map((e) => e.type)));
    return result.serial;
  }

  #count(source: string, reason: string, command: string): void {
    let tally = this.#tallies.get(source);
    if (tally === undefined) {
      tally = { count: 0, reasons: new Map(), commands: new Map() };
      this.#tallies.set(source, tally);
    }
    tally.count += 1;
    tally.reasons.set(reason, (tally.reasons.get(reason) ?? 0) + 1);
    tally.commands.set(command, (tally.commands.get(command) ?? 0) + 1);
  }

  /**
   * The refusal of a request without a valid credential from `source` once the source has used up the
   * interval's allowance (`perSource`): 429 with the seconds until the interval ends, or undefined. Such
   * requests are still counted, under this reason, in the source's event for the interval.
   */
  throttle(source: string): HubProblem | undefined {
    const { perSource, intervalMs } = this.config.unidentifiedRefusals;
    const tally = this.#tallies.get(source);
    if (tally === undefined || tally.count < perSource) return undefined;
    const retryAfter = Math.max(1, Math.ceil((this.#intervalStart.getTime() + intervalMs - this.clock().getTime()) / 1000));
    return new HubProblem('TOO_MANY_UNAUTHENTICATED_REQUESTS', `${perSource} requests without a valid credential came from this source in this interval; retry after ${retryAfter} s with a credential`, { retryAfter });
  }

  /**
   * Spends one request of the caller's rate budget (RateLimits): undefined when it passes, else the 429
   * RATE_LIMITED refusal to answer (with Retry-After), counted in the interval's record of rate-limited
   * requests of the caller's kind (one event per kind and interval, never one per request).
   */
  async limit(caller: IdentifiedCaller, source: string, command: string): Promise<HubProblem | undefined> {
    const limited = await this.rateLimits.check(caller, source);
    if (limited === undefined) return undefined;
    this.#countLimited(limited.kind, limited.principal, command);
    const retryAfter = Math.max(1, Math.ceil(limited.retryAfterMs / 1000));
    const who = limited.kind === 'agency' ? `agency ${limited.principal}` : limited.kind === 'citizen' ? 'this citizen' : 'this source (no valid credential)';
    return new HubProblem(
      'RATE_LIMITED',
      `${who} sent more requests than its limit of ${limited.limit.perSecond} per second (${limited.limit.burst} at once); retry after ${retryAfter} s`,
      { retryAfter, retryAfterMs: limited.retryAfterMs, principalKind: limited.kind, perSecond: limited.limit.perSecond, burst: limited.limit.burst },
    );
  }

  /** Requests refused for their rate and not yet recorded, per kind of principal. */
  get pendingRateLimited(): Readonly<Record<string, number>> {
    return Object.fromEntries([...this.#limited].map(([kind, t]) => [kind, t.count]));
  }

  #countLimited(kind: PrincipalKind, principal: string, command: string): void {
    let tally = this.#limited.get(kind);
    if (tally === undefined) this.#limited.set(kind, (tally = { count: 0, principals: new Set(), commands: new Map(), named: new Map() }));
    tally.count += 1;
    if (tally.principals.size < MAX_PRINCIPALS) tally.principals.add(principal);
    tally.commands.set(command, (tally.commands.get(command) ?? 0) + 1);
    if (kind === 'citizen') return;
    const named = tally.named.get(principal);
    if (named !== undefined) tally.named.set(principal, named + 1);
    else if (tally.named.size < 10 * this.config.unidentifiedRefusals.maxSources) tally.named.set(principal, 1);
  }

  /** Appends the interval's tallies: one event per source (up to maxSources), the rest summed in one; one per kind of rate-limited principal. */
  flush(): Promise<void> {
    this.#flushing = this.#flushing
      .then(() => this.#flush())
      .catch((error: unknown) => this.#logger.error(`unidentified refusals could not be recorded: ${error instanceof Error ? error.message : String(error)}`))
      .then(() => this.#flushLimited())
      .catch((error: unknown) => this.#logger.error(`rate-limited requests could not be recorded: ${error instanceof Error ? error.message : String(error)}`));
    return this.#flushing;
  }

  /** One RateLimitedRequestsRecorded per kind of principal refused since #limitedStart; a standby keeps counting until it leads. */
  async #flushLimited(): Promise<void> {
    const now = this.clock();
    if (this.#limited.size === 0) {
      this.#limitedStart = now;
      return;
    }
    if (!this.#leads()) return;
    const limited = [...this.#limited];
    const start = this.#limitedStart;
    this.#limited = new Map();
    this.#limitedStart = now;
    for (const [i, [kind, tally]] of limited.entries()) {
      try {
        await this.#appendLimited(kind, tally, start.toISOString(), now.toISOString());
      } catch (error) {
        if (this.#leads() && !isNotLeader(error)) throw error;
        // Stepped down meanwhile: counted on until this hub leads again.
        for (const [k, t] of limited.slice(i)) this.#mergeLimited(k, t);
        this.#limitedStart = start;
        return;
      }
    }
  }

  #mergeLimited(kind: PrincipalKind, t: LimitedTally): void {
    const into = this.#limited.get(kind);
    if (into === undefined) {
      this.#limited.set(kind, t);
      return;
    }
    into.count += t.count;
    for (const p of t.principals) if (into.principals.size < MAX_PRINCIPALS) into.principals.add(p);
    for (const [k, v] of t.commands) into.commands.set(k, (into.commands.get(k) ?? 0) + v);
    for (const [k, v] of t.named) into.named.set(k, (into.named.get(k) ?? 0) + v);
  }

  async #appendLimited(kind: PrincipalKind, t: LimitedTally, intervalStart: string, intervalEnd: string): Promise<void> {
    const recordId = randomUUID();
    const named = Object.fromEntries([...t.named].sort((a, b) => b[1] - a[1]).slice(0, this.config.unidentifiedRefusals.maxSources));
    const events = decideRateLimitedRecord({
      recordId,
      intervalStart,
      intervalEnd,
      principalKind: kind,
      count: t.count,
      principals: Math.max(1, t.principals.size),
      commands: Object.fromEntries(t.commands),
      ...(kind === 'agency' ? { agencies: named } : kind === 'source' ? { sources: named } : {}),
    });
    const streamId = rateLimitedStreamId(recordId);
    const result = await this.store.append({ streamId, expectedRevision: 'no_stream', events, serial: { allocate: true }, metadata: { actor: 'system:refusals', correlationId: randomUUID() } });
    this.eventBus.publish(EventsAppended.of(streamId, result, events.map((e) => e.type)));
  }

  async #flush(): Promise<void> {
    const tallies = this.#tallies;
    const intervalStart = this.#intervalStart;
    const now = this.clock();
    this.#tallies = new Map();
    this.#intervalStart = now;
    if (tallies.size === 0 && this.#held === undefined) return;
    if (!this.#leads()) {
      this.#hold(this.#records(tallies), intervalStart);
      return;
    }
    let records = this.#records(tallies);
    let start = intervalStart;
    if (this.#held !== undefined) {
      // What was held since the first interval of standing by, with this interval's counts: one interval.
      this.#hold(records, intervalStart);
      start = this.#held!.start;
      records = this.#heldRecords();
      this.#held = undefined;
    }
    for (const [i, r] of records.entries()) {
      try {
        await this.#append(r, start.toISOString(), now.toISOString());
      } catch (error) {
        if (this.#leads() && !isNotLeader(error)) throw error;
        // Stepped down meanwhile: held again until this hub leads.
        this.#hold(records.slice(i), start);
        return;
      }
    }
  }

  #leads(): boolean {
    return this.leadership === null || this.leadership.acceptsCommands;
  }

  /** One event per source (up to maxSources, the largest first), the rest summed in one more. */
  #records(tallies: Map<string, SourceTally>, rest?: { tally: SourceTally; sources: number }): TallyRecord[] {
    const entries = [...tallies.entries()].sort((a, b) => b[1].count - a[1].count);
    const kept = entries.slice(0, this.config.unidentifiedRefusals.maxSources);
    const over = entries.slice(this.config.unidentifiedRefusals.maxSources);
    const records: TallyRecord[] = kept.map(([source, tally]) => ({ source, tally, sources: 1 }));
    if (over.length > 0 || rest !== undefined) {
      const sum = emptyTally();
      if (rest !== undefined) addInto(sum, rest.tally);
      for (const [, t] of over) addInto(sum, t);
      records.push({ source: '', tally: sum, sources: over.length + (rest?.sources ?? 0) });
    }
    return records;
  }

  /** Adds `records` to what a standby holds, kept within maxSources sources and one sum. */
  #hold(records: readonly TallyRecord[], start: Date): void {
    if (records.length === 0) return;
    const held = (this.#held ??= { start, bySource: new Map(), rest: undefined });
    for (const r of records) {
      if (r.source === '') {
        held.rest ??= { tally: emptyTally(), sources: 0 };
        addInto(held.rest.tally, r.tally);
        held.rest.sources += r.sources;
        continue;
      }
      let t = held.bySource.get(r.source);
      if (t === undefined) held.bySource.set(r.source, (t = emptyTally()));
      addInto(t, r.tally);
    }
    const bounded = this.#records(held.bySource, held.rest);
    held.bySource.clear();
    held.rest = undefined;
    for (const r of bounded) {
      if (r.source === '') held.rest = { tally: r.tally, sources: r.sources };
      else held.bySource.set(r.source, r.tally);
    }
  }

  #heldRecords(): TallyRecord[] {
    return this.#held === undefined ? [] : this.#records(this.#held.bySource, this.#held.rest);
  }

  async #append(r: TallyRecord, intervalStart: string, intervalEnd: string): Promise<void> {
    const recordId = randomUUID();
    const events = decideUnauthenticatedRecord({
      recordId,
      intervalStart,
      intervalEnd,
      count: r.tally.count,
      reasons: Object.fromEntries(r.tally.reasons),
      commands: Object.fromEntries(r.tally.commands),
      sources: r.sources,
      ...(r.source === '' ? {} : { source: r.source }),
    });
    const streamId = unauthenticatedStreamId(recordId);
    const result = await this.store.append({ streamId, expectedRevision: 'no_stream', events, serial: { allocate: true }, metadata: { actor: 'system:refusals', correlationId: randomUUID() } });
    this.eventBus.publish(EventsAppended.of(streamId, result, events.map((e) => e.type)));
  }
}

/** The store refused because this hub is not (or no longer) the leader. */
function isNotLeader(error: unknown): boolean {
  return error instanceof HubProblem && error.code === 'NOT_LEADER';
}
