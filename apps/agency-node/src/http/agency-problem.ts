/** Every problem code the intermediate server raises itself, its HTTP status and a stable title. */
export const AGENCY_PROBLEMS = {
  VALIDATION_FAILED: { status: 400, title: 'The request is not valid' },
  MALFORMED_JSON: { status: 400, title: 'The request body is not well-formed JSON' },
  BAD_REQUEST: { status: 400, title: 'Bad request' },
  STALE_REQUEST: { status: 400, title: 'The provision request is too old or from the future' },
  WRONG_PROVIDER: { status: 400, title: 'The provision request names another provider' },
  WRONG_SUBSCRIBER: { status: 400, title: 'The push names another subscriber' },
  HUB_SIGNATURE_INVALID: { status: 401, title: 'The hub signature does not verify' },
  HUB_SIGNATURE_KEY_UNKNOWN: { status: 401, title: 'The hub signature names a key the hub does not serve' },
  HUB_SIGNATURE_KEY_RETIRED: { status: 401, title: 'The hub signature is by a key the hub retired' },
  STAFF_TOKEN_INVALID: { status: 401, title: 'A valid staff bearer token is required' },
  NOT_FOUND: { status: 404, title: 'No such resource' },
  PERSON_NOT_FOUND: { status: 404, title: 'No person with this local id' },
  METHOD_NOT_ALLOWED: { status: 405, title: 'Method not allowed' },
  CODE_NOT_ACQUIRED: { status: 409, title: 'No agency code was acquired for this person' },
  CODE_ALREADY_ASSIGNED: { status: 409, title: 'The agency code belongs to another local id' },
  SERIAL_REUSED: { status: 409, title: 'The serial was already used for another provision request' },
  PUSH_ID_REUSED: { status: 409, title: 'The pushId was already received with other content' },
  UPDATE_ID_REUSED: { status: 409, title: 'The update id was already used for other changes' },
  PAYLOAD_TOO_LARGE: { status: 413, title: 'The request body is too large' },
  UNSUPPORTED_MEDIA_TYPE: { status: 415, title: 'The request content type is not supported' },
  CHECK_DIGIT_MISMATCH: { status: 422, title: 'The check digit does not match' },
  INTERNAL: { status: 500, title: 'Internal error' },
  HUB_UNREACHABLE: { status: 502, title: 'The hub cannot be reached' },
  HUB_PROTOCOL_ERROR: { status: 502, title: 'The hub answered outside the protocol' },
  HUB_AUTHENTICATION_FAILED: { status: 502, title: 'The hub refused this agency\'s credentials' },
  ANSWER_DIGEST_MISMATCH: { status: 502, title: 'The relayed answer does not match its digest or size' },
  ANSWER_DECRYPTION_FAILED: { status: 502, title: 'The relayed answer cannot be opened' },
  ANSWER_NOT_ENCRYPTED: { status: 502, title: 'The answer came unencrypted although encryption was asked' },
  ANSWER_LOST: { status: 502, title: 'The answer was relayed to an earlier attempt that was lost' },
  ANSWER_MALFORMED: { status: 502, title: 'The opened answer is not the agreed JSON' },
  NOT_READY: { status: 503, title: 'The intermediate server is not ready' },
} as const satisfies Record<string, { status: number; title: string }>;

export type AgencyProblemCode = keyof typeof AGENCY_PROBLEMS;

export const PROBLEM_TYPE_BASE = 'https://linkage-ledger.example/problems/';

export function problemType(code: string): string {
  return `${PROBLEM_TYPE_BASE}${code.toLowerCase().replaceAll('_', '-')}`;
}

/**
 * An error with a stable code and a message a person can act on. `hubCode` lets a refusal or failure
 * the hub answered with pass through unchanged (its code, status and title).
 */
export class AgencyProblem extends Error {
  readonly status: number;
  readonly title: string;

  constructor(
    readonly code: string,
    detail: string,
    readonly extensions: Readonly<Record<string, unknown>> = {},
    passThrough?: { status: number; title: string },
  ) {
    super(detail);
    this.name = 'AgencyProblem';
    const known = (AGENCY_PROBLEMS as Record<string, { status: number; title: string } | undefined>)[code];
    this.status = passThrough?.status ?? known?.status ?? 500;
    this.title = passThrough?.title ?? known?.title ?? 'Internal error';
  }
}
