import type { EventStore } from './event-store.port.js';
import type { SerialNumber } from './serial-number.js';

export const SERIAL_VOIDED = 'SerialVoided';

export interface VoidedSerial {
  readonly serial: SerialNumber;
  readonly streamId: string;
}

/**
 * Ends every serial that was allocated but never reached a terminal event, with an explicit
 * `SerialVoided` event in the serial's own stream (I2: a serial lost to a crash is voided, never skipped).
 * The single writer MUST run this at start-up, before it accepts commands.
 */
export async function voidOpenSerials(store: EventStore, reason: string, correlationId: string): Promise<VoidedSerial[]> {
  return voidSerials(store, await store.openSerials(), reason, correlationId, 'system:recovery');
}

/**
 * Ends the given serials with `SerialVoided`, in order, each in its own stream: the running writer's way
 * to end serials it opened and then could not carry to their terminal event (the step after the first
 * append failed). A serial that is not open (already ended, or unknown) is refused by the store with
 * SERIAL_NOT_OPEN and that error is thrown: the caller decides whether it matters.
 */
export async function voidSerials(store: EventStore, serials: readonly SerialNumber[], reason: string, correlationId: string, actor: string): Promise<VoidedSerial[]> {
  const voided: VoidedSerial[] = [];
  for (const serial of serials) {
    const [first] = await store.readSerial(serial);
    if (!first) continue;
    await store.append({
      streamId: first.streamId,
      expectedRevision: 'any',
      serial: { continue: serial },
      events: [{ type: SERIAL_VOIDED, data: { serial, reason, firstPosition: first.position }, terminal: 'voided' }],
      metadata: { actor, correlationId },
    });
    voided.push({ serial, streamId: first.streamId });
  }
  return voided;
}
