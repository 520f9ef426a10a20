/** Every problem code the hub answers with, its HTTP status and a stable title. */
export const PROBLEM_CATALOG = {
  VALIDATION_FAILED: { status: 400, title: 'The request is not valid' },
  MALFORMED_JSON: { status: 400, title: 'The request body is not well-formed JSON' },
  // Well-formed JSON with a key __proto__, constructor or prototype anywhere: refused by name (`errors` lists where).
  FORBIDDEN_KEY: { status: 400, title: 'The request body holds a key the hub refuses (__proto__, constructor or prototype)' },
  MALFORMED: { status: 400, title: 'An identifier is malformed' },
  INVALID_NAME: { status: 400, title: 'The name is not valid' },
  INVALID_LOCATION: { status: 400, title: 'The location is not valid' },
  INVALID_KIND: { status: 400, title: 'The corporate kind is not valid' },
  BAD_REQUEST: { status: 400, title: 'Bad request' },
  MALFORMED_URL: { status: 400, title: 'The URL is not valid (e.g. a broken percent-encoding)' },
  SIZE_OUT_OF_RANGE: { status: 400, title: 'The tree size or position is out of range' },
  SERIAL_UNKNOWN: { status: 404, title: 'No event carries this processing serial number' },
  TREE_SIZE_NOT_REACHED: { status: 404, title: 'The tree has not reached this size yet' },
  CHECKPOINT_NOT_FOUND: { status: 404, title: 'No checkpoint was signed for this size' },
  NOT_FOUND: { status: 404, title: 'No such resource' },
  CORPORATE_NUMBER_NOT_FOUND: { status: 404, title: 'No corporate number is designated under this number' },
  METHOD_NOT_ALLOWED: { status: 405, title: 'Method not allowed' },
  REQUEST_TIMEOUT: { status: 408, title: 'The request did not arrive in time' },
  RESIDENT_ALREADY_NUMBERED: { status: 409, title: 'The resident already holds an individual number' },
  RESIDENT_NOT_NUMBERED: { status: 409, title: 'The resident holds no individual number' },
  NUMBER_UNCHANGED: { status: 409, title: 'The new number was held before' },
  CORPORATE_NUMBER_ALREADY_DESIGNATED: { status: 409, title: 'The corporate number is already designated' },
  IDEMPOTENCY_KEY_REUSED: { status: 409, title: 'The idempotency key was used for another request' },
  CONCURRENT_MODIFICATION: { status: 409, title: 'The record changed concurrently; retry the request' },
  PAYLOAD_TOO_LARGE: { status: 413, title: 'The request body is too large' },
  URI_TOO_LONG: { status: 414, title: 'The URL is too long' },
  UNSUPPORTED_MEDIA_TYPE: { status: 415, title: 'The request content type is not supported' },
  HEADERS_TOO_LARGE: { status: 431, title: 'The request line and headers are too large' },
  TOO_MANY_UNAUTHENTICATED_REQUESTS: { status: 429, title: 'Too many requests without a valid credential from this source' },
  UNKNOWN_MUNICIPALITY: { status: 422, title: 'Unknown municipality' },
  CHECK_DIGIT_MISMATCH: { status: 422, title: 'The check digit does not match' },
  UNAUTHENTICATED: { status: 401, title: 'The request carries no valid credential' },
  CREDENTIAL_REVOKED: { status: 401, title: 'The credential belongs to an agency that was revoked' },
  FORBIDDEN: { status: 403, title: 'The credential does not allow this request' },
  INVALID_AGENCY_ID: { status: 400, title: 'The agency id is not valid' },
  UNKNOWN_AGENCY_KIND: { status: 400, title: 'Unknown agency kind' },
  INVALID_ENDPOINT: { status: 400, title: 'The intermediate server endpoint is not valid' },
  INVALID_PUBLIC_KEY: { status: 400, title: 'The public key is not an X25519 key' },
  INVALID_AGENCY_CODE: { status: 400, title: 'The agency code is malformed' },
  INVALID_ACQUISITION_NUMBER: { status: 400, title: 'The acquisition number is not valid' },
  PERSONAL_IDENTIFIER_IN_EVENT: { status: 400, title: 'A personal identifier would be kept in the log' },
  NOTHING_TO_UPDATE: { status: 400, title: 'The update changes nothing' },
  AGENCY_NOT_REGISTERED: { status: 404, title: 'No agency is registered under this id' },
  UNKNOWN_INDIVIDUAL_NUMBER: { status: 404, title: 'No person holds this individual number' },
  AGENCY_ALREADY_REGISTERED: { status: 409, title: 'An agency is already registered under this id' },
  MUNICIPALITY_ALREADY_REGISTERED: { status: 409, title: 'Another agency is already registered for this municipality' },
  MUNICIPALITY_CODE_NOT_ALLOWED: { status: 422, title: 'Only a municipality agency has a municipality code' },
  INVALID_MUNICIPALITY_CODE: { status: 400, title: 'The municipality code is not valid' },
  AGENCY_REVOKED: { status: 409, title: 'The agency is revoked' },
  INDIVIDUAL_NUMBER_REVOKED: { status: 409, title: 'The individual number was replaced by a change of number' },
  QUERY_IN_PROGRESS: { status: 409, title: 'The query with this idempotency key is still being answered' },
  UNKNOWN_REQUESTER: { status: 403, title: 'Query refused: the requesting agency is not registered' },
  REQUESTER_REVOKED: { status: 403, title: 'Query refused: the requesting agency is revoked' },
  CREDENTIAL_MISMATCH: { status: 403, title: 'Query refused: the credential is not the requesting agency\'s' },
  UNKNOWN_PROVIDER: { status: 403, title: 'Query refused: the providing agency is not registered' },
  PROVIDER_REVOKED: { status: 403, title: 'Query refused: the providing agency is revoked' },
  PROVIDER_IS_REQUESTER: { status: 403, title: 'Query refused: an agency cannot query itself' },
  TABLE_VERSION_NOT_IN_FORCE: { status: 403, title: 'Query refused: the authorization table version is not in force' },
  UNKNOWN_PROCEDURE: { status: 403, title: 'Query refused: the procedure is not in the authorization table' },
  REQUESTER_KIND_NOT_ALLOWED: { status: 403, title: 'Query refused: this kind of agency may not query for the procedure' },
  PROVIDER_KIND_NOT_ALLOWED: { status: 403, title: 'Query refused: this kind of agency does not provide for the procedure' },
  ITEM_NOT_ALLOWED: { status: 403, title: 'Query refused: an item is not allowed for the procedure' },
  UNKNOWN_CODE: { status: 404, title: 'No person holds this code at the calling agency' },
  CODE_NOT_ISSUED_TO_REQUESTER: { status: 403, title: 'Query refused: the code was not issued to the requesting agency' },
  NO_CODE_AT_PROVIDER: { status: 403, title: 'Query refused: the providing agency holds no code for the person' },
  PROVIDER_UNREACHABLE: { status: 502, title: 'The providing agency\'s intermediate server could not be reached' },
  PROVIDER_PROTOCOL_ERROR: { status: 502, title: 'The providing agency\'s intermediate server answered outside the protocol' },
  ANSWER_TOO_LARGE: { status: 502, title: 'The provider\'s answer exceeds the size the hub relays' },
  PROVIDER_TIMEOUT: { status: 504, title: 'The providing agency\'s intermediate server did not answer in time' },
  INTERRUPTED: { status: 503, title: 'The query was interrupted' },
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
