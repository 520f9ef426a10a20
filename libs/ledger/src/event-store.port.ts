import type { EventId, EventMetadata, NewEvent, RecordedEvent, StreamId, TerminalOutcome } from './envelope.js';
import type { SerialNumber } from './serial-number.js';

/** `any`: no check; `no_stream`: the stream MUST NOT exist; a number: the stream's last revision MUST equal it. */
export type ExpectedRevision = 'any' | 'no_stream' | number;

/** Either open a new processing serial number with this append, or continue one that is still open. */
export type SerialAssignment = { readonly allocate: true } | { readonly continue: SerialNumber };

export interface IdempotencyOptions {
  /** Scope-qualified key (`<actor>/<key>`), unique forever within the ledger. */
  readonly key: string;
  /** Digest of the request; a retry with the same key and another digest is refused. */
  readonly requestDigest: string;
}

export interface AppendRequest {
  readonly streamId: StreamId;
  readonly expectedRevision: ExpectedRevision;
  readonly events: readonly NewEvent[];
  readonly serial: SerialAssignment;
  readonly metadata: EventMetadata;
  readonly idempotency?: IdempotencyOptions;
}

export interface AppendResult {
  /** `appended`: this call wrote the events; `duplicate`: an earlier call with the same idempotency key did. */
  readonly status: 'appended' | 'duplicate';
  readonly serial: SerialNumber;
  readonly firstPosition: number;
  readonly lastPosition: number;
  /** The stream's last revision after the original append. */
  readonly nextExpectedRevision: number;
  readonly eventIds: readonly EventId[];
}

export interface ReadStreamOptions {
  readonly fromRevision?: number;
  readonly maxCount?: number;
}

export interface ReadAllOptions {
  /** Inclusive, 0-based. */
  readonly fromPosition?: number;
  readonly maxCount?: number;
}

export interface SerialStatus {
  readonly serial: SerialNumber;
  readonly state: 'open' | 'closed';
  readonly outcome?: TerminalOutcome;
  readonly firstPosition: number;
}

export interface SubscribeOptions {
  /** First position delivered (inclusive); a stored checkpoint + 1 to resume. */
  readonly fromPosition: number;
  readonly signal?: AbortSignal;
  /** Events read per catch-up page. */
  readonly pageSize?: number;
}

/**
 * The ledger's event-store port. Every adapter MUST pass the contract suite.
 *
 * - An append MUST NOT resolve before its events are durable, and MUST NOT report a position
 *   before that position is durable.
 * - Positions are 0-based, contiguous and never reused; stream revisions are 0-based and contiguous.
 * - Stored events are never updated or deleted (I1).
 * - Each serial gets exactly one terminal event; appending to a closed serial fails (I2).
 */
export interface EventStore {
  append(request: AppendRequest): Promise<AppendResult>;
  readStream(streamId: StreamId, options?: ReadStreamOptions): Promise<readonly RecordedEvent[]>;
  readAll(options?: ReadAllOptions): Promise<readonly RecordedEvent[]>;
  /** The events of one processing serial number, in position order. */
  readSerial(serial: SerialNumber): Promise<readonly RecordedEvent[]>;
  serialStatus(serial: SerialNumber): Promise<SerialStatus | undefined>;
  /** Serials allocated but not yet ended, oldest first. */
  openSerials(): Promise<readonly SerialNumber[]>;
  /**
   * The outcome of the earlier append made with this idempotency key, if any (with `status: 'duplicate'`),
   * and the request digest it was made with. Lets a caller recognise a retry without appending.
   */
  idempotentOutcome(key: string): Promise<{ readonly requestDigest: string; readonly result: AppendResult } | undefined>;
  /** Number of stored events, i.e. the next position. */
  head(): Promise<number>;
  /**
   * Catch up from `fromPosition`, then follow live appends, until the signal aborts. The events may be
   * shared with other subscribers and are frozen: a subscriber copies what it wants to change.
   */
  subscribe(options: SubscribeOptions): AsyncIterable<RecordedEvent>;
  close(): Promise<void>;
}
