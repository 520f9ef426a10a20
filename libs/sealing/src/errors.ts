/** Stable codes of the sealing library's errors. */
export type SealingErrorCode =
  /** An event type the catalog does not describe: the sealer will not guess what in it is personal. */
  | 'UNSEALED_EVENT_TYPE'
  /** A sealed field is missing or of the wrong kind in an event about to be sealed. */
  | 'INVALID_FIELD'
  /** The person's (or the period's) key was shredded: their fields can no longer be sealed or opened. */
  | 'KEY_SHREDDED'
  /**
   * A key ring shared by several hubs (KurrentDB) was asked synchronously for a key it has not made ready:
   * the keys an append seals under are made durable in the shared store first (`prepareSeal`).
   */
  | 'KEY_NOT_READY'
  /** The shared store of the key ring (KurrentDB) did not answer: nothing was sealed under a key it may not hold. */
  | 'KEYSTORE_UNAVAILABLE'
  /** A sealed section that does not open: altered, or sealed under keys this hub does not hold. */
  | 'UNSEAL_FAILED'
  /** A key file or key ring that is not what it claims to be. */
  | 'INVALID_KEYS'
  /** An opening that does not match the commitment in its event. */
  | 'OPENING_MISMATCH';

export class SealingError extends Error {
  constructor(
    readonly code: SealingErrorCode,
    message: string,
    readonly details: Readonly<Record<string, unknown>> = {},
  ) {
    super(message);
    this.name = 'SealingError';
  }
}
