import type { EventStore, RecordedEvent, SerialNumber } from '#ledger';
import { HubProblem } from '../../http/hub-problem.js';

/**
 * The event of `type` that ended an earlier serial found by idempotency key. When the serial holds none
 * (the key was used for another kind of command) the request is a reuse of the key.
 */
export async function eventOfSerial<D>(store: EventStore, serial: SerialNumber, type: string): Promise<RecordedEvent<D>> {
  const event = (await store.readSerial(serial)).find((e) => e.type === type);
  if (event === undefined) {
    throw new HubProblem('IDEMPOTENCY_KEY_REUSED', 'this Idempotency-Key was already used for another kind of request; use a new key for a new request');
  }
  return event as RecordedEvent<D>;
}
