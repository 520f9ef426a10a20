import { Injectable } from '@nestjs/common';
import type { EventBus } from '@nestjs/cqrs';
import { canonicalize, IdempotencyKeyReusedError, type AppendResult, type EventStore, type ExpectedRevision, type NewEvent, type IdempotencyOptions, type SerialNumber } from '#ledger';
import { NumberingError } from '#numbering';
import { IdentifierVault } from '../vault/identifier-vault.js';
import { EventsAppended } from './events-appended.event.js';

export interface Caller {
  /** `municipality:<code>`, `operator:<id>`, … */
  readonly actor: string;
  readonly correlationId: string;
  readonly idempotencyKey?: string;
}

/** A handler's answer and whether it was rebuilt from an earlier append with the same idempotency key. */
export interface Outcome<T> {
  readonly value: T;
  readonly replayed: boolean;
}

@Injectable()
export class IdempotencyKeys {
  constructor(private readonly vault: IdentifierVault) {}

  /**
   * The ledger's idempotency options for a request: the key scoped by actor, and a digest of the RFC 8785
   * canonical body. Both are keyed digests (HMAC with the blind-index key), never what the caller sent:
   * the ledger stamps the key into the first event's metadata, and a caller could put a number in a key
   * (I10); a body holds an 11-digit resident record code, which a plain hash would let anyone brute-force (I4).
   */
  scope(caller: Caller, body: Readonly<Record<string, unknown>>): IdempotencyOptions | undefined {
    if (caller.idempotencyKey === undefined) return undefined;
    const canonical = canonicalize(body);
    if (canonical === undefined) throw new TypeError('request body is not JSON');
    const key = this.vault.digest('idempotency-key', `${caller.actor}\0${caller.idempotencyKey}`).slice(0, 32);
    // The key is part of the request digest: two requests about one person with the same body (two queries
    // for the same code) then leave no equal value in the log (I10); a retry (same key, same body) still matches.
    return { key: `${caller.actor}/${key}`, requestDigest: this.vault.digest('idempotency-request', `${key}\0${canonical}`) };
  }
}

/**
 * The serial of an earlier append made with these idempotency options, if any; throws
 * IDEMPOTENCY_KEY_REUSED when the key was used with another request digest.
 */
export async function priorSerial(store: EventStore, idempotency: IdempotencyOptions): Promise<SerialNumber | undefined> {
  const prior = await store.idempotentOutcome(idempotency.key);
  if (prior === undefined) return undefined;
  if (prior.requestDigest !== idempotency.requestDigest) throw new IdempotencyKeyReusedError(idempotency.key);
  return prior.result.serial;
}

/**
 * For a request the domain refused: when it carries an idempotency key that an earlier, successful
 * request already used, answer that request's outcome instead (a retry after success); else rethrow.
 */
export async function replayOrRethrow<T>(
  error: unknown,
  store: EventStore,
  idempotency: IdempotencyOptions | undefined,
  replay: (serial: SerialNumber) => Promise<T>,
): Promise<Outcome<T>> {
  if (idempotency === undefined || !(error instanceof NumberingError)) throw error;
  const serial = await priorSerial(store, idempotency);
  if (serial === undefined) throw error;
  return { value: await replay(serial), replayed: true };
}

/** A command's decided events, ready to append under a new serial. */
export interface DecidedAppend {
  readonly streamId: string;
  readonly expectedRevision: ExpectedRevision;
  readonly events: readonly NewEvent[];
  readonly caller: Caller;
  readonly idempotency: IdempotencyOptions | undefined;
}

/**
 * Appends decided events under a newly allocated serial and publishes them; when the ledger reports the
 * idempotency key as already used by this same request, answers the original outcome through `replay`.
 */
export async function appendDecided<T>(
  store: EventStore,
  eventBus: EventBus,
  append: DecidedAppend,
  fresh: (result: AppendResult) => T,
  replay: (serial: SerialNumber) => Promise<T>,
): Promise<Outcome<T>> {
  const { streamId, expectedRevision, events, caller, idempotency } = append;
  const result = await store.append({
    streamId,
    expectedRevision,
    events,
    serial: { allocate: true },
    metadata: { actor: caller.actor, correlationId: caller.correlationId },
    ...(idempotency ? { idempotency } : {}),
  });
  if (result.status === 'duplicate') return { value: await replay(result.serial), replayed: true };
  eventBus.publish(EventsAppended.of(streamId, result, events.map((e) => e.type)));
  return { value: fresh(result), replayed: false };
}
