/** Every problem code the hub answers with, its HTTP status and a stable title. */
export const PROBLEM_CATALOG = {
  VALIDATION_FAILED: { status: 400, title: 'The request is not valid' },
  MALFORMED_JSON: { status: 400, title: 'The request body is not well-formed JSON' },
  MALFORMED: { status: 400, title: 'An identifier is malformed' },
  INVALID_NAME: { status: 400, title: 'The name is not valid' },
  INVALID_LOCATION: { status: 400, title: 'The location is not valid' },
  INVALID_KIND: { status: 400, title: 'The corporate kind is not valid' },
  BAD_REQUEST: { status: 400, title: 'Bad request' },
  SIZE_OUT_OF_RANGE: { status: 400, title: 'The tree size or position is out of range' },
  SERIAL_UNKNOWN: { status: 404, title: 'No event carries this processing serial number' },
  TREE_SIZE_NOT_REACHED: { status: 404, title: 'The tree has not reached this size yet' },
  CHECKPOINT_NOT_FOUND: { status: 404, title: 'No checkpoint was signed for this size' },
  NOT_FOUND: { status: 404, title: 'No such resource' },
  CORPORATE_NUMBER_NOT_FOUND: { status: 404, title: 'No corporate number is designated under this number' },
  METHOD_NOT_ALLOWED: { status: 405, title: 'Method not allowed' },
  RESIDENT_ALREADY_NUMBERED: { status: 409, title: 'The resident already holds an individual number' },
  RESIDENT_NOT_NUMBERED: { status: 409, title: 'The resident holds no individual number' },
  NUMBER_UNCHANGED: { status: 409, title: 'The new number was held before' },
  CORPORATE_NUMBER_ALREADY_DESIGNATED: { status: 409, title: 'The corporate number is already designated' },
  IDEMPOTENCY_KEY_REUSED: { status: 409, title: 'The idempotency key was used for another request' },
  CONCURRENT_MODIFICATION: { status: 409, title: 'The record changed concurrently; retry the request' },
  PAYLOAD_TOO_LARGE: { status: 413, title: 'The request body is too large' },
  UNSUPPORTED_MEDIA_TYPE: { status: 415, title: 'The request content type is not supported' },
  UNKNOWN_MUNICIPALITY: { status: 422, title: 'Unknown municipality' },
  CHECK_DIGIT_MISMATCH: { status: 422, title: 'The check digit does not match' },
  INTERNAL: { status: 500, title: 'Internal error' },
  NOT_READY: { status: 503, title: 'The hub is not ready' },
  SERVICE_UNAVAILABLE: { status: 503, title: 'The service is unavailable' },
} as const satisfies Record<string, { status: number; title: string }>;

export type ProblemCode = keyof typeof PROBLEM_CATALOG;

export const PROBLEM_TYPE_BASE = 'https://linkage-ledger.example/problems/';

/** `CHECK_DIGIT_MISMATCH` → `https://linkage-ledger.example/problems/check-digit-mismatch`. */
export function problemType(code: string): string {
  return `${PROBLEM_TYPE_BASE}${code.toLowerCase().replaceAll('_', '-')}`;
}

export function isProblemCode(code: string): code is ProblemCode {
  return Object.hasOwn(PROBLEM_CATALOG, code);
}
