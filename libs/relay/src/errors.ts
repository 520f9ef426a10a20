/** Every stable error code of the relay. */
export type RelayErrorCode =
  /** Events were handed over with a hole after the relay's checkpoint: relaying them would skip one. */
  | 'RELAY_GAP'
  /** The relay or consumer was stopped while an operation was still waiting. */
  | 'RELAY_CLOSED'
  /** A message on the topic is not a relayed envelope, or its key or headers disagree with its envelope. */
  | 'INVALID_MESSAGE'
  /** A caller handed over a malformed argument (empty broker list, batch size below 1…). */
  | 'INVALID_ARGUMENT';

export class RelayError extends Error {
  readonly code: RelayErrorCode;

  constructor(code: RelayErrorCode, message: string, options?: { readonly cause?: unknown }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'RelayError';
    this.code = code;
  }
}
