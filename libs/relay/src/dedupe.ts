import { RelayError } from './errors.js';

/** What a deduplicator remembers: per partition, the last position handed on and its event id. */
export type DedupeSnapshot = Readonly<Record<string, { readonly position: number; readonly eventId: string }>>;

/**
 * Drops redeliveries of relayed events. Rule: an event whose position is at or below the last position
 * handed on from its partition is a redelivery; at that very position the event id MUST be the same.
 *
 * Why this is exact: positions identify events one to one and are never reused (I1), and within one
 * partition the relay writes events in increasing position order: it sends one batch at a time, each in
 * log order, with one request in flight, and a resend after a failure starts again at its checkpoint + 1,
 * i.e. at or below everything not yet acknowledged. So a message that arrives after a higher position of
 * its partition is always a copy of one that arrived before it, and memory is one entry per partition.
 *
 * The state lives in memory: exact for one consumer's lifetime. A handler that keeps durable effects
 * stores `snapshot()` with them and starts the next consumer from it (`new RelayDeduplicator(snapshot)`).
 */
export class RelayDeduplicator {
  private readonly last = new Map<number, { position: number; eventId: string }>();

  constructor(snapshot: DedupeSnapshot = {}) {
    for (const [partition, entry] of Object.entries(snapshot)) this.last.set(Number(partition), { ...entry });
  }

  /** True when the event was not handed on before; refuses a different event at a position already seen. */
  isNew(partition: number, position: number, eventId: string): boolean {
    const last = this.last.get(partition);
    if (last === undefined || position > last.position) return true;
    if (position === last.position && eventId !== last.eventId) {
      throw new RelayError('INVALID_MESSAGE', `partition ${partition}: position ${position} was event ${last.eventId}, now ${eventId}`);
    }
    return false;
  }

  /** Records that the event was handed on (call after the handler succeeded). */
  handed(partition: number, position: number, eventId: string): void {
    const last = this.last.get(partition);
    if (last === undefined || position > last.position) this.last.set(partition, { position, eventId });
  }

  snapshot(): DedupeSnapshot {
    const out: Record<string, { position: number; eventId: string }> = {};
    for (const [partition, entry] of this.last) out[String(partition)] = { ...entry };
    return out;
  }
}
