/** Base of the ledger's own errors: a stable `code` and a message a person can act on. */
export abstract class LedgerError extends Error {
  abstract readonly code: string;
  constructor(message: string) {
    super(message);
    this.name = new.target.name;
  }
}

export class WrongExpectedRevisionError extends LedgerError {
  readonly code = 'WRONG_EXPECTED_REVISION';
  constructor(
    readonly streamId: string,
    readonly expected: string,
    readonly actual: number | 'no_stream',
  ) {
    super(`stream ${streamId}: expected revision ${expected}, actual ${actual}`);
  }
}

export class SerialNotOpenError extends LedgerError {
  readonly code = 'SERIAL_NOT_OPEN';
  constructor(
    readonly serial: string,
    readonly state: 'unknown' | 'closed',
  ) {
    super(`processing serial number ${serial} is ${state === 'closed' ? 'already ended by a terminal event' : 'not known to this ledger'}`);
  }
}

export class ClaimConflictError extends LedgerError {
  readonly code = 'CLAIM_CONFLICT';
  constructor(readonly claim: string) {
    super(`uniqueness claim ${claim} is already held`);
  }
}

export class IdempotencyKeyReusedError extends LedgerError {
  readonly code = 'IDEMPOTENCY_KEY_REUSED';
  constructor(readonly idempotencyKey: string) {
    super(`idempotency key ${idempotencyKey} was already used for a different request; use a new key for a new request`);
  }
}

export class InvalidAppendError extends LedgerError {
  readonly code = 'INVALID_APPEND';
}

export class LedgerClosedError extends LedgerError {
  readonly code = 'LEDGER_CLOSED';
  constructor() {
    super('the ledger is closed');
  }
}
