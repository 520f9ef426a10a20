import { Inject, Injectable, Logger, type BeforeApplicationShutdown, type OnModuleDestroy, type OnModuleInit } from '@nestjs/common';
import { EventBus } from '@nestjs/cqrs';
import { randomUUID } from 'node:crypto';
import type { EventStore } from '#ledger';
import { decideRefusal, decideUnauthenticatedRecord, isAgencyCode, refusalStreamId, unauthenticatedStreamId, type RefusedCaller } from '#linkage';
import { HubConfig } from '../config/hub-config.js';
import { HubProblem, RequestValidationError } from '../http/hub-problem.js';
import { markRecorded, recordedSerial, toProblem } from '../http/problem.js';
import { EventsAppended } from '../ledger/events-appended.event.js';
import { CLOCK, LEDGER, type Clock } from '../ledger/tokens.js';
import type { IdentifiedCaller } from '../linkage/authenticator.js';

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
}

interface SourceTally {
  count: number;
  readonly reasons: Map<string, number>;
  readonly commands: Map<string, number>;
}

const UNIDENTIFIED = new Set(['anonymous', 'malformed', 'unknown']);

/**
 * Every refusal is an event (I6). A refused command from a caller the hub could identify ends a serial of
 * its own in a RequestRefused event (attributed only to the agency its credential proves; the agency a
 * request merely names is kept apart); refusals of callers it could not identify are counted per source
 * and flushed once per interval, one UnauthenticatedRequestsRecorded event per source (at most
 * `maxSources`, the rest summed in one more), so a flood of forged requests adds a bounded number of events.
 * Refusals the domain already recorded (QueryDenied) and failures (5xx) are not refusals here.
 */
@Injectable()
export class Refusals implements OnModuleInit, BeforeApplicationShutdown, OnModuleDestroy {
  readonly #logger = new Logger('Refusals');
  #tallies = new Map<string, SourceTally>();
  #intervalStart: Date;
  #timer: NodeJS.Timeout | undefined;
  #flushing: Promise<void> = Promise.resolve();

  constructor(
    @Inject(LEDGER) private readonly store: EventStore,
    @Inject(CLOCK) private readonly clock: Clock,
    private readonly eventBus: EventBus,
    private readonly config: HubConfig,
  ) {
    this.#intervalStart = this.clock();
  }

  onModuleInit(): void {
    this.#timer = setInterval(() => void this.flush(), this.config.unidentifiedRefusals.intervalMs);
    this.#timer.unref();
  }

  /** Counts what is left before the ledger closes. */
  async beforeApplicationShutdown(): Promise<void> {
    if (this.#timer !== undefined) clearInterval(this.#timer);
    await this.flush();
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
    const caller = refused.caller;
    if (UNIDENTIFIED.has(caller.kind)) {
      this.#count(refused.source, problem.code, refused.command);
      return;
    }
    try {
      const serial = await this.#refuse(caller as Exclude<IdentifiedCaller, { kind: 'anonymous' | 'malformed' | 'unknown' }>, refused, problem.code);
      markRecorded(refused.error, serial);
    } catch (error) {
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
    const result = await this.store.append({ streamId, expectedRevision: 'no_stream', events, serial: { allocate: true }, metadata: { actor, correlationId: randomUUID() } });
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

  /** Appends the interval's tallies: one event per source (up to maxSources), the rest summed in one. */
  flush(): Promise<void> {
    this.#flushing = this.#flushing.then(() => this.#flush()).catch((error: unknown) => this.#logger.error(`unidentified refusals could not be recorded: ${error instanceof Error ? error.message : String(error)}`));
    return this.#flushing;
  }

  async #flush(): Promise<void> {
    const tallies = this.#tallies;
    const intervalStart = this.#intervalStart.toISOString();
    const now = this.clock();
    this.#tallies = new Map();
    this.#intervalStart = now;
    if (tallies.size === 0) return;
    const entries = [...tallies.entries()].sort((a, b) => b[1].count - a[1].count);
    const kept = entries.slice(0, this.config.unidentifiedRefusals.maxSources);
    const rest = entries.slice(this.config.unidentifiedRefusals.maxSources);
    const records = kept.map(([source, t]) => ({ source, tally: t, sources: 1 }));
    if (rest.length > 0) {
      const sum: SourceTally = { count: 0, reasons: new Map(), commands: new Map() };
      for (const [, t] of rest) {
        sum.count += t.count;
        for (const [k, v] of t.reasons) sum.reasons.set(k, (sum.reasons.get(k) ?? 0) + v);
        for (const [k, v] of t.commands) sum.commands.set(k, (sum.commands.get(k) ?? 0) + v);
      }
      records.push({ source: '', tally: sum, sources: rest.length });
    }
    for (const r of records) {
      const recordId = randomUUID();
      const events = decideUnauthenticatedRecord({
        recordId,
        intervalStart,
        intervalEnd: now.toISOString(),
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
}
