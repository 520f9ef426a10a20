/** The auditor's error (bad input, unreachable source): a stable code and a message a person can act on. */
export class AuditorError extends Error {
  constructor(
    readonly code: 'SOURCE_UNREADABLE' | 'VERIFIER_KEY_INVALID' | 'HUB_UNREACHABLE' | 'HUB_REFUSED' | 'PROOF_INVALID' | 'PROOF_FILE_MALFORMED' | 'SERIAL_UNKNOWN' | 'NO_CHECKPOINT',
    message: string,
  ) {
    super(message);
    this.name = 'AuditorError';
  }
}
