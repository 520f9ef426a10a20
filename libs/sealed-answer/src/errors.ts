export type SealedAnswerErrorCode = 'ANSWER_DECRYPTION_FAILED' | 'INVALID_PUBLIC_KEY' | 'INVALID_PRIVATE_KEY' | 'INVALID_SERIAL';

/** An error of answer sealing: a stable `code` and a message a person can act on. */
export class SealedAnswerError extends Error {
  constructor(
    readonly code: SealedAnswerErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'SealedAnswerError';
  }
}
