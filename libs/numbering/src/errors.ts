/** Every stable error code this library can raise. Adapters map these to HTTP / gRPC status. */
export type NumberingErrorCode =
  | 'MALFORMED'
  | 'CHECK_DIGIT_MISMATCH'
  | 'UNKNOWN_MUNICIPALITY'
  | 'RESIDENT_ALREADY_NUMBERED'
  | 'RESIDENT_NOT_NUMBERED'
  | 'NUMBER_UNCHANGED'
  | 'PLAINTEXT_NUMBER_IN_EVENT'
  | 'CORPORATE_NUMBER_ALREADY_DESIGNATED'
  | 'CORPORATE_NUMBER_NOT_FOUND'
  | 'CORPORATE_NUMBER_CLOSED'
  | 'NOTHING_TO_UPDATE'
  | 'INVALID_REASON'
  | 'INVALID_EFFECTIVE_DATE'
  | 'INVALID_NAME'
  | 'INVALID_LOCATION'
  | 'INVALID_KIND'
  | 'INVALID_MUNICIPALITY_LIST';

export interface NumberingErrorDetails {
  /** For CHECK_DIGIT_MISMATCH: the check digit the rule computes. */
  readonly expected?: number;
  /** For CHECK_DIGIT_MISMATCH: the check digit the input carried. */
  readonly actual?: number;
  readonly cause?: unknown;
}

/** A domain error of the numbering rules: a stable `code` and a message a person can act on. */
export class NumberingError extends Error {
  readonly code: NumberingErrorCode;
  readonly expected?: number;
  readonly actual?: number;

  constructor(code: NumberingErrorCode, message: string, details: NumberingErrorDetails = {}) {
    super(message, details.cause === undefined ? undefined : { cause: details.cause });
    this.name = 'NumberingError';
    this.code = code;
    if (details.expected !== undefined) this.expected = details.expected;
    if (details.actual !== undefined) this.actual = details.actual;
  }
}

/**
 * Exhaustiveness guard for `switch` statements: pass the narrowed union, or its discriminant when the
 * union has one member (TypeScript narrows only the discriminant then). Reports only the discriminant,
 * never the payload: it may hold a My Number.
 */
export function unreachable(value: never, discriminant: string): never {
  const v: unknown = value;
  const tag = typeof v === 'object' && v !== null ? (v as Record<string, unknown>)[discriminant] : v;
  throw new Error(`unreachable: unhandled ${discriminant} ${JSON.stringify(tag)}`);
}
