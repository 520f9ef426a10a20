/** Every stable error code this library can raise. Adapters map these to HTTP / gRPC status. */
export type AuditLogErrorCode =
  // Merkle hashing and proofs
  | 'HASH_LENGTH_INVALID'
  | 'TREE_SIZE_INVALID'
  | 'INDEX_OUT_OF_RANGE'
  | 'SUBTREE_RANGE_INVALID'
  | 'PROOF_SIZE_INVALID'
  | 'ROOT_MISMATCH'
  | 'COMPACT_RANGE_INVALID'
  // Checkpoint bodies (c2sp.org/tlog-checkpoint)
  | 'CHECKPOINT_MISSING_NEWLINE'
  | 'CHECKPOINT_TOO_FEW_LINES'
  | 'CHECKPOINT_ORIGIN_INVALID'
  | 'CHECKPOINT_SIZE_INVALID'
  | 'CHECKPOINT_ROOT_INVALID'
  | 'CHECKPOINT_TIME_INVALID'
  | 'CHECKPOINT_EXTENSION_INVALID'
  | 'CHECKPOINT_ORIGIN_MISMATCH'
  // Signed notes and keys (c2sp.org/signed-note)
  | 'NOTE_MALFORMED'
  | 'NOTE_TEXT_INVALID'
  | 'NOTE_NOT_SIGNED'
  | 'NOTE_SIGNATURE_INVALID'
  | 'KEY_NAME_INVALID'
  | 'KEY_INVALID'
  | 'VERIFIER_KEY_MALFORMED'
  | 'SIGNER_KEY_MALFORMED'
  | 'KEY_ID_MISMATCH'
  // Checkpoint key rotation: the chain of signing keys announced in the log
  | 'CHECKPOINT_KEY_UNANNOUNCED'
  | 'CHECKPOINT_HANDOVER_UNSIGNED'
  | 'KEY_CHAIN_INVALID';

export interface AuditLogErrorDetails {
  /** ROOT_MISMATCH, KEY_ID_MISMATCH: the trusted value, lowercase hex. */
  readonly expected?: string;
  /** ROOT_MISMATCH, KEY_ID_MISMATCH: the value computed from the input, lowercase hex. */
  readonly calculated?: string;
  /** PROOF_SIZE_INVALID: the number of hashes the proof must have. */
  readonly expectedLength?: number;
  /** PROOF_SIZE_INVALID: the number of hashes the proof has. */
  readonly actualLength?: number;
  readonly cause?: unknown;
}

/** A failure of the audit log library: a stable `code` and a message a person can act on. */
export class AuditLogError extends Error {
  readonly code: AuditLogErrorCode;
  readonly expected?: string;
  readonly calculated?: string;
  readonly expectedLength?: number;
  readonly actualLength?: number;

  constructor(code: AuditLogErrorCode, message: string, details: AuditLogErrorDetails = {}) {
    super(message, details.cause === undefined ? undefined : { cause: details.cause });
    this.name = 'AuditLogError';
    this.code = code;
    if (details.expected !== undefined) this.expected = details.expected;
    if (details.calculated !== undefined) this.calculated = details.calculated;
    if (details.expectedLength !== undefined) this.expectedLength = details.expectedLength;
    if (details.actualLength !== undefined) this.actualLength = details.actualLength;
  }
}
