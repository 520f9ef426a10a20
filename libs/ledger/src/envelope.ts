import type { Brand } from './brand.js';
import type { SerialNumber } from './serial-number.js';

export type EventId = Brand<string, 'EventId'>;
export type StreamId = string;

/** How a processing serial number ends. Exactly one event per serial carries one of these (I2). */
export type TerminalOutcome = 'completed' | 'denied' | 'failed' | 'voided';
export const TERMINAL_OUTCOMES: readonly TerminalOutcome[] = ['completed', 'denied', 'failed', 'voided'];

/** Who acted and in which business conversation. Never personal data. */
export interface IdempotencyStamp {
  /** Scope-qualified key (`<actor>/<key>`). */
  readonly key: string;
  readonly requestDigest: string;
  /** How many events the keyed append wrote, starting with this one. */
  readonly events: number;
}

export interface EventMetadata {
  /** The acting principal: `agency:<id>`, `citizen:<subject>`, `operator:<id>` or `system:<component>`. */
  readonly actor: string;
  readonly correlationId: string;
  readonly causationId?: string;
  /**
   * Stamped by the ledger on the first event of an append made with an idempotency key, so that the key
   * index can always be rebuilt from the log. Callers MUST NOT set it themselves.
   */
  readonly idempotency?: IdempotencyStamp;
}

/**
 * The stored envelope. Its RFC 8785 canonical JSON is what the ledger stores and what the Merkle
 * leaf hashes (I3), so every field here is covered by tamper evidence.
 */
export interface RecordedEvent<D = unknown> {
  readonly eventId: EventId;
  readonly type: string;
  readonly schemaVersion: number;
  readonly streamId: StreamId;
  /** 0-based revision of this event within its stream. */
  readonly streamRevision: number;
  /** 0-based global position; equals the event's Merkle leaf index. */
  readonly position: number;
  readonly serial: SerialNumber;
  /** Present on the one event that ends its serial. */
  readonly terminal?: TerminalOutcome;
  /** Uniqueness claims this event takes, e.g. `individual-number:<digest>`; held forever. */
  readonly claims?: readonly string[];
  /** ISO-8601 UTC with milliseconds. */
  readonly recordedAt: string;
  readonly data: D;
  readonly metadata: EventMetadata;
}

export interface NewEvent<D = unknown> {
  readonly type: string;
  readonly schemaVersion?: number;
  readonly data: D;
  readonly terminal?: TerminalOutcome;
  readonly claims?: readonly string[];
}
