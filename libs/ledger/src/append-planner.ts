import { canonicalize } from './canonical-json.js';
import { canonicalMetadataText, stampedMetadataText } from './canonical-envelope.js';
import type { EventId, EventMetadata, IdempotencyStamp, RecordedEvent, TerminalOutcome } from './envelope.js';
import { TERMINAL_OUTCOMES } from './envelope.js';
import {
  ClaimConflictError,
  IdempotencyKeyReusedError,
  InvalidAppendError,
  LedgerError,
  SerialNotOpenError,
  WrongExpectedRevisionError,
} from './errors.js';
import type { AppendRequest, AppendResult } from './event-store.port.js';
import { formatSerialNumber, japanDay, type SerialNumber } from './serial-number.js';

/** What the planner needs to know about committed state; read inside the write transaction. */
export interface LedgerIndex {
  /** Last revision of a stream, or undefined when it does not exist. */
  streamRevision(streamId: string): number | undefined;
  /** `open` if the serial has events and no terminal event, `closed` if ended, undefined if unknown. */
  serialState(serial: SerialNumber): 'open' | 'closed' | undefined;
  claimHeld(claim: string): boolean;
  idempotency(key: string): StoredIdempotency | undefined;
  /** Highest daily sequence allocated on (day, node), 0 if none. */
  lastSequence(day: string, nodeId: number): number;
}

export interface StoredIdempotency {
  readonly requestDigest: string;
  readonly result: AppendResult;
}

/** One event ready to be written: its envelope and the envelope's RFC 8785 text. */
export interface PlannedEvent {
  readonly event: RecordedEvent;
  readonly canonical: string;
}

export interface PlannedBatch {
  readonly events: PlannedEvent[];
  readonly openedSerials: { serial: SerialNumber; firstPosition: number }[];
  readonly closedSerials: SerialNumber[];
  readonly claims: { claim: string; position: number }[];
  readonly idempotency: { key: string; record: StoredIdempotency }[];
  /** One outcome per request, in request order: its result, or the error that refused it alone. */
  readonly outcomes: (AppendResult | LedgerError)[];
}

export interface PlannerOptions {
  readonly nodeId: number;
  readonly now: () => Date;
  /** A new event id; gets the batch's recorded time in Unix milliseconds. */
  readonly newEventId: (nowMs: number) => string;
}

const MAX_EVENTS_PER_APPEND = 10_000;
const NAME = /^[A-Za-z0-9$][A-Za-z0-9$._:-]{0,199}$/;

/**
 * Turns a batch of append requests into rows, checking every rule against committed state plus what
 * earlier requests of the same batch wrote. Shared by every adapter so that they cannot drift apart.
 * A request that breaks a rule fails alone; the rest of the batch goes on.
 */
export class AppendPlanner {
  private lastDay = '';
  private lastSequence = 0;
  private lastRecordedAt = 0;
  /** `YYYYMMDD` + node id of `lastDay`: the fixed part of the serials allocated that day. */
  private serialPrefix = '';

  constructor(private readonly options: PlannerOptions) {}

  /** Forget cached allocation state, e.g. after a batch was rolled back. */
  reset(): void {
    this.lastDay = '';
    this.lastSequence = 0;
  }

  plan(requests: readonly AppendRequest[], head: number, index: LedgerIndex): PlannedBatch {
    const batch: PlannedBatch = { events: [], openedSerials: [], closedSerials: [], claims: [], idempotency: [], outcomes: [] };
    const revisions = new Map<string, number>();
    const serials = new Map<string, 'open' | 'closed'>();
    const claims = new Set<string>();
    const keys = new Map<string, StoredIdempotency>();
    // Recorded times never go backwards, so positions and times order the log the same way.
    const nowMs = Math.max(this.options.now().getTime(), this.lastRecordedAt);
    this.lastRecordedAt = nowMs;
    const recordedAt = new Date(nowMs).toISOString();
    // Texts shared by every event of the batch, written once (ISO times need no JSON escaping).
    const recordedAtText = `,"recordedAt":"${recordedAt}","schemaVersion":`;
    let day: string | undefined;
    let firstAllocated: SerialNumber | undefined;
    let position = head;
    // The metadata text of the last request without an idempotency key: the requests of a fan-out share one
    // metadata object (nothing can change it while this synchronous call runs).
    let lastMetadata: EventMetadata | undefined;
    let lastMetadataText = '';

    for (const request of requests) {
      try {
        validateShape(request);
        const key = request.idempotency?.key;
        if (key !== undefined) {
          const prior = keys.get(key) ?? index.idempotency(key);
          if (prior) {
            if (prior.requestDigest !== request.idempotency!.requestDigest) throw new IdempotencyKeyReusedError(key);
            batch.outcomes.push({ ...prior.result, status: 'duplicate' });
            continue;
          }
        }
        const streamId = request.streamId;
        const planned = revisions.get(streamId);
        const current = planned !== undefined ? planned : index.streamRevision(streamId);
        checkExpected(request, current);
        let serialWasOpen = false;
        if ('continue' in request.serial) {
          const continued = request.serial.continue;
          // A serial this batch allocated and is not in `serials` was ended by the append that opened it.
          const state = serials.get(continued) ?? (this.allocatedInBatch(continued, firstAllocated) ? 'closed' : index.serialState(continued));
          if (state !== 'open') throw new SerialNotOpenError(request.serial.continue, state ?? 'unknown');
          serialWasOpen = true;
        }
        const n = request.events.length;
        const datas = new Array<string>(n);
        for (let i = 0; i < n; i++) {
          const e = request.events[i]!;
          if (e.claims !== undefined) {
            for (const claim of e.claims) if (claims.has(claim) || index.claimHeld(claim)) throw new ClaimConflictError(claim);
          }
          datas[i] = canonicalData(e.data, i, streamId);
        }
        const stamp = key === undefined ? undefined : { key, requestDigest: request.idempotency!.requestDigest, events: n };
        const stampedMetadata = stamp === undefined ? request.metadata : { ...request.metadata, idempotency: stamp };
        let plainMetadata: string;
        let stampedText: string;
        if (stamp === undefined && request.metadata === lastMetadata) plainMetadata = stampedText = lastMetadataText;
        else {
          [plainMetadata, stampedText] = metadataTexts(request.metadata, stamp);
          if (stamp === undefined) {
            lastMetadata = request.metadata;
            lastMetadataText = plainMetadata;
          }
        }

        // Every check that can refuse the request is above: a serial is allocated only for a request that will be written.
        let serial: SerialNumber;
        if (serialWasOpen) serial = (request.serial as { continue: SerialNumber }).continue;
        else {
          day ??= japanDay(new Date(nowMs));
          serial = this.allocate(day, index);
          firstAllocated ??= serial;
        }
        // Names (stream, type) match NAME and serials are digits: none needs JSON escaping.
        const serialAndStream = `,"serial":${JSON.stringify(serial)},"streamId":"${streamId}","streamRevision":`;
        const firstPosition = position;
        let revision = current ?? -1;
        const eventIds = new Array<EventId>(n);
        let terminal: TerminalOutcome | undefined;
        for (let i = 0; i < n; i++) {
          const e = request.events[i]!;
          revision += 1;
          const eventId = this.options.newEventId(nowMs) as EventId;
          eventIds[i] = eventId;
          const eventClaims = e.claims !== undefined && e.claims.length > 0 ? e.claims : undefined;
          const schemaVersion = e.schemaVersion ?? 1;
          // One object shape for every event (absent fields are undefined, which the canonical text omits).
          const event: RecordedEvent = {
            eventId,
            type: e.type,
            schemaVersion,
            streamId,
            streamRevision: revision,
            position,
            serial,
            terminal: e.terminal,
            claims: eventClaims,
            recordedAt,
            data: e.data,
            metadata: i === 0 ? stampedMetadata : request.metadata,
          };
          // The envelope's own fields in canonical (sorted) order; the property test holds this to the library.
          let canonical = eventClaims === undefined ? '{' : `{"claims":${claimsText(eventClaims)},`;
          canonical +=
            `"data":${datas[i]},"eventId":${JSON.stringify(eventId)},"metadata":${i === 0 ? stampedText : plainMetadata}` +
            `,"position":${position}${recordedAtText}${schemaVersion}${serialAndStream}${revision}` +
            (e.terminal === undefined ? `,"type":"${e.type}"}` : `,"terminal":"${e.terminal}","type":"${e.type}"}`);
          batch.events.push({ event, canonical });
          if (eventClaims !== undefined) {
            for (const claim of eventClaims) {
              claims.add(claim);
              batch.claims.push({ claim, position });
            }
          }
          if (e.terminal !== undefined) terminal = e.terminal;
          position += 1;
        }
        revisions.set(streamId, revision);
        if (terminal !== undefined) {
          // Allocated and ended at once: `allocatedInBatch` answers for it, no entry needed.
          if (serialWasOpen) {
            serials.set(serial, 'closed');
            batch.closedSerials.push(serial);
          }
        } else {
          serials.set(serial, 'open');
          if (!serialWasOpen) batch.openedSerials.push({ serial, firstPosition });
        }
        const result: AppendResult = {
          status: 'appended',
          serial,
          firstPosition,
          lastPosition: position - 1,
          nextExpectedRevision: revision,
          eventIds,
        };
        if (key !== undefined) {
          const record = { requestDigest: request.idempotency!.requestDigest, result };
          keys.set(key, record);
          batch.idempotency.push({ key, record });
        }
        batch.outcomes.push(result);
      } catch (error) {
        if (!(error instanceof LedgerError)) throw error;
        batch.outcomes.push(error);
      }
    }
    return batch;
  }

  /** Whether this batch allocated `serial`: serials it allocates run from `first` to the last allocated, in order. */
  private allocatedInBatch(serial: string, first: SerialNumber | undefined): boolean {
    if (first === undefined || serial < first || serial.length !== 20 || !serial.startsWith(this.serialPrefix)) return false;
    return Number(serial.slice(10)) <= this.lastSequence;
  }

  private allocate(day: string, index: LedgerIndex): SerialNumber {
    // A clock stepping back across midnight must not reopen an earlier day: serials stay ordered.
    if (day < this.lastDay) day = this.lastDay;
    if (day !== this.lastDay) {
      this.lastDay = day;
      this.lastSequence = index.lastSequence(day, this.options.nodeId);
      this.serialPrefix = formatSerialNumber({ day, nodeId: this.options.nodeId, sequence: 1 }).slice(0, 10);
    }
    const sequence = ++this.lastSequence;
    if (sequence > 9_999_999_999) throw new RangeError(`daily sequence must be 1..9999999999, got ${sequence}`);
    return (this.serialPrefix + String(sequence).padStart(10, '0')) as SerialNumber;
  }
}

/** RFC 8785 text of an event's data; a value that is not JSON refuses this request alone. */
function canonicalData(data: unknown, i: number, streamId: string): string {
  let text: string | undefined;
  try {
    text = canonicalize(data);
  } catch (error) {
    throw new InvalidAppendError(`event ${i} of stream ${streamId}: data is not JSON (${(error as Error).message})`);
  }
  if (text === undefined) throw new InvalidAppendError(`event ${i} of stream ${streamId}: data is not a JSON value`);
  return text;
}

/** Canonical texts of the metadata without and with the idempotency stamp; metadata that is not JSON refuses the request. */
function metadataTexts(metadata: EventMetadata, stamp: IdempotencyStamp | undefined): [string, string] {
  try {
    const plain = canonicalMetadataText(metadata);
    return [plain, stamp === undefined ? plain : stampedMetadataText(metadata, plain, stamp)];
  } catch (error) {
    throw new InvalidAppendError(`metadata is not JSON (${(error as Error).message})`);
  }
}

function claimsText(claims: readonly string[]): string {
  let text = '[';
  for (let i = 0; i < claims.length; i++) text += (i > 0 ? ',' : '') + JSON.stringify(claims[i]);
  return `${text}]`;
}

function checkExpected(request: AppendRequest, current: number | undefined): void {
  const expected = request.expectedRevision;
  if (expected === 'any') return;
  if (expected === 'no_stream') {
    if (current !== undefined) throw new WrongExpectedRevisionError(request.streamId, 'no_stream', current);
    return;
  }
  if (current !== expected) throw new WrongExpectedRevisionError(request.streamId, String(expected), current ?? 'no_stream');
}

function validateShape(request: AppendRequest): void {
  if (!NAME.test(request.streamId)) throw new InvalidAppendError(`stream id ${JSON.stringify(request.streamId)} is not a valid name`);
  const n = request.events.length;
  if (n === 0) throw new InvalidAppendError(`append to ${request.streamId} has no events`);
  if (n > MAX_EVENTS_PER_APPEND) throw new InvalidAppendError(`append to ${request.streamId} has ${n} events; at most ${MAX_EVENTS_PER_APPEND}`);
  const expected = request.expectedRevision;
  if (typeof expected === 'number' && (!Number.isInteger(expected) || expected < 0)) {
    throw new InvalidAppendError(`expected revision must be a non-negative integer, 'any' or 'no_stream'`);
  }
  if (!request.metadata.actor || !request.metadata.correlationId) {
    throw new InvalidAppendError('metadata needs an actor and a correlation id');
  }
  for (let i = 0; i < n; i++) {
    const e = request.events[i]!;
    if (!NAME.test(e.type)) throw new InvalidAppendError(`event ${i}: type ${JSON.stringify(e.type)} is not a valid name`);
    const version = e.schemaVersion;
    if (version !== undefined && !(Number.isSafeInteger(version) && version >= 1)) {
      throw new InvalidAppendError(`event ${i}: schema version must be a positive integer, got ${JSON.stringify(version)}`);
    }
    if (e.terminal !== undefined) {
      if (!TERMINAL_OUTCOMES.includes(e.terminal)) throw new InvalidAppendError(`event ${i}: unknown terminal outcome ${e.terminal}`);
      if (i !== n - 1) throw new InvalidAppendError(`event ${i}: only the last event of an append may end its serial`);
    }
  }
  if (request.metadata.idempotency !== undefined) {
    throw new InvalidAppendError('metadata.idempotency is stamped by the ledger; pass the key as request.idempotency');
  }
  if (request.idempotency && (!request.idempotency.key || !request.idempotency.requestDigest)) {
    throw new InvalidAppendError('an idempotency key and a request digest are both required');
  }
}
