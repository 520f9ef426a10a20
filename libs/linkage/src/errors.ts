/** Every stable error code this library can raise. Adapters map these to HTTP / gRPC status. */
export type LinkageErrorCode =
  | 'MALFORMED'
  | 'INVALID_AUTHORIZATION_TABLE'
  | 'INVALID_SELF_DISCLOSURE_TABLE'
  | 'TABLE_VERSION_NOT_NEWER'
  | 'TABLE_NOT_EFFECTIVE'
  | 'TABLE_VERSION_NOT_FOUND'
  | 'TABLE_VERSION_WITHDRAWN'
  | 'TABLE_VERSION_IN_FORCE'
  | 'AUTHORIZATION_TABLE_UNKNOWN_CODE'
  | 'INVALID_AGENCY_ID'
  | 'UNKNOWN_AGENCY_KIND'
  | 'MUNICIPALITY_CODE_NOT_ALLOWED'
  | 'INVALID_MUNICIPALITY_CODE'
  | 'INVALID_NAME'
  | 'INVALID_ENDPOINT'
  | 'INVALID_PUBLIC_KEY'
  | 'INVALID_CREDENTIAL_DIGEST'
  | 'AGENCY_ALREADY_REGISTERED'
  | 'AGENCY_NOT_REGISTERED'
  | 'AGENCY_REVOKED'
  | 'NOTHING_TO_UPDATE'
  | 'CREDENTIAL_UNCHANGED'
  | 'INVALID_SUBJECT_ID'
  | 'INVALID_AGENCY_CODE'
  | 'INVALID_ACQUISITION_NUMBER'
  | 'PERSONAL_IDENTIFIER_IN_EVENT'
  | 'STREAM_MISMATCH'
  | 'QUERY_ALREADY_SUBMITTED'
  | 'QUERY_NOT_FOUND'
  | 'QUERY_ALREADY_ENDED'
  | 'QUERY_NOT_AWAITING_PROVIDER'
  | 'PROVIDER_MISMATCH'
  | 'INVALID_DIGEST';

export interface LinkageErrorDetails {
  /** Offending values worth showing to the caller (item codes, allowed kinds…); never personal data. */
  readonly [key: string]: unknown;
}

/** A domain error of the linkage rules: a stable `code` and a message a person can act on. */
export class LinkageError extends Error {
  readonly code: LinkageErrorCode;
  readonly details: LinkageErrorDetails;

  constructor(code: LinkageErrorCode, message: string, details: LinkageErrorDetails = {}) {
    super(message);
    this.name = 'LinkageError';
    this.code = code;
    this.details = details;
  }
}

/**
 * Exhaustiveness guard for `switch` statements: a new member of a union becomes a compile error.
 * Reports only the discriminant, never the payload.
 */
export function unreachable(value: never, discriminant: string): never {
  const v: unknown = value;
  const tag = typeof v === 'object' && v !== null ? (v as Record<string, unknown>)[discriminant] : v;
  throw new Error(`unreachable: unhandled ${discriminant} ${JSON.stringify(tag)}`);
}
