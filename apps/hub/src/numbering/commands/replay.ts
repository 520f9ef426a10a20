import type { EventStore, RecordedEvent, SerialNumber } from '#ledger';
import type { NumberingIdentifiers, SealedIdentifiers } from '#numbering';
import { HubProblem } from '../../http/hub-problem.js';
import type { IdentifierVault } from '../../vault/identifier-vault.js';

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

/**
 * The identifiers of an opened numbering event: sealed by the ledger's sealer (read back opened), or, in
 * logs written before sealing, in the vault's own `sealed` value.
 */
export function identifiersOf(vault: IdentifierVault, event: RecordedEvent<{ readonly identifiers?: NumberingIdentifiers; readonly sealed?: SealedIdentifiers }>): NumberingIdentifiers {
  if (event.data.identifiers !== undefined) return event.data.identifiers;
  if (event.data.sealed !== undefined) return vault.unseal(event.data.sealed, event.streamId);
  throw new HubProblem('INTERNAL', `the ${event.type} event of serial ${event.serial} holds no identifiers (its person's key was shredded)`);
}
