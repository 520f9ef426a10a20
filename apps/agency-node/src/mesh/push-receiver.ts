import { isAgencyCode, isAgencyId, isInstant, isTableCode } from '#linkage';
import { AgencyProblem } from '../http/agency-problem.js';
import type { HubKeys } from '../hub/hub-keys.js';
import { SIGNATURE_HEADER, verifyHubSignature } from '../provider/provision-protocol.js';
import type { AgencyStore } from '../store/agency-store.js';
import type { Push } from '../store/mesh-store.js';
import type { Clock } from '../tokens.js';

/** Ids the hub gives pushes and subscriptions: UUIDs in practice; any short id of these characters is taken. */
const ID = /^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$/;
const SERIAL = /^\d{20}$/;

export interface PushReceipt {
  readonly pushId: string;
  readonly duplicate: boolean;
}

/** Told of each new push whose fetch is wanted (after it is durable); the fetcher queues it. */
export type OnNewPush = (pushId: string) => void;

/**
 * `POST /v1/pushes` (called by the hub): a subscribed item changed at its provider. In this order: the
 * `hub-signature` header MUST verify over the exact body bytes with the hub's provision-signing key named by
 * `hub-signature-key` (401 HUB_SIGNATURE_INVALID, HUB_SIGNATURE_KEY_UNKNOWN or HUB_SIGNATURE_KEY_RETIRED, nothing stored); the body is checked field by field (400 VALIDATION_FAILED,
 * nothing stored); the push is recorded once per pushId in agency.sqlite, durably, before the answer
 * `{pushId, duplicate}` (a redelivery of a known pushId is `duplicate: true` and changes nothing; the
 * same pushId with other content is 409 PUSH_ID_REUSED). A push carries no data: when fetching is on, the
 * new value is then obtained by an ordinary lawful query (PushFetcher), after the answer.
 */
export class PushReceiver {
  constructor(
    private readonly agencyId: string,
    private readonly store: AgencyStore,
    private readonly hubKeys: HubKeys,
    private readonly clock: Clock,
    private readonly fetchWanted: boolean,
    private onNew: OnNewPush = () => {},
  ) {}

  /** Sets who is told of new pushes to fetch (the fetcher, once it exists). */
  notify(onNew: OnNewPush): void {
    this.onNew = onNew;
  }

  async receive(raw: Buffer | undefined, signature: string | string[] | undefined, keyId?: string | string[]): Promise<PushReceipt> {
    if (signature === undefined) {
      throw new AgencyProblem('HUB_SIGNATURE_INVALID', `the ${SIGNATURE_HEADER} header is missing: a push must carry "ed25519=<base64url signature>" over the exact body bytes, made with the hub's provision-signing key`);
    }
    await verifyHubSignature(signature, raw, this.hubKeys, keyId);
    let body: unknown;
    try {
      body = JSON.parse(raw!.toString('utf8'));
    } catch {
      throw new AgencyProblem('MALFORMED_JSON', 'the body is not well-formed JSON');
    }
    const push = validatePush(body);
    // The hub names the subscriber (subscriberAgencyId); a push that does must name this agency (one without it is an older hub's).
    const addressee = (body as Record<string, unknown>)['subscriberAgencyId'];
    if (addressee !== undefined && addressee !== this.agencyId) {
      throw new AgencyProblem('WRONG_SUBSCRIBER', `the push names subscriber ${JSON.stringify(addressee)}, but this intermediate server is ${this.agencyId}`, { pushId: push.pushId });
    }
    const person = this.store.personByCode(push.code);
    // A push for a code this node holds no one under is kept (it was delivered) but not fetched: there is no one to ask for.
    const wanted = this.fetchWanted && person !== undefined;
    const { duplicate, conflict } = this.store.mesh.receivePush(push, person?.localId ?? null, wanted, this.clock());
    if (conflict) {
      throw new AgencyProblem('PUSH_ID_REUSED', `pushId ${push.pushId} was already received with other content; a pushId names one push`, { pushId: push.pushId });
    }
    if (!duplicate && wanted) this.onNew(push.pushId);
    return { pushId: push.pushId, duplicate };
  }
}

/** The push's fields, each checked; unknown fields are ignored (a later hub may add some). */
export function validatePush(body: unknown): Push {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new AgencyProblem('VALIDATION_FAILED', 'a push must be a JSON object');
  const b = body as Record<string, unknown>;
  const errors: { field: string; message: string }[] = [];
  const check = (field: keyof Push, ok: (v: unknown) => boolean, message: string): void => {
    if (!ok(b[field])) errors.push({ field: `/${field}`, message: b[field] === undefined ? 'is required' : message });
  };
  const matches = (re: RegExp) => (v: unknown) => typeof v === 'string' && re.test(v);
  check('pushId', matches(ID), 'must be an id of 1-128 letters, digits, ".", "_", ":" or "-"');
  check('serial', matches(SERIAL), 'must be a processing serial of 20 digits');
  check('subscriptionId', matches(ID), 'must be an id of 1-128 letters, digits, ".", "_", ":" or "-"');
  check('code', isAgencyCode, "must be this agency's code for the person (22 characters of base64url)");
  check('providerAgencyId', isAgencyId, 'must be an agency id (e.g. muroran-city)');
  check('procedureCode', isTableCode, 'must be a procedure code in kebab-case (e.g. pension-award-claim)');
  check('itemCode', isTableCode, 'must be an item code in kebab-case (e.g. local-tax)');
  check('updatedAt', isInstant, 'must be an RFC 3339 date-time with a zone');
  check('issuedAt', isInstant, 'must be an RFC 3339 date-time with a zone');
  if (errors.length > 0) {
    throw new AgencyProblem('VALIDATION_FAILED', errors.length === 1 ? `${errors[0]!.field}: ${errors[0]!.message}` : `${errors.length} fields of the push are not valid; see errors`, { errors });
  }
  return {
    pushId: b['pushId'] as string,
    serial: b['serial'] as string,
    subscriptionId: b['subscriptionId'] as string,
    code: b['code'] as string,
    providerAgencyId: b['providerAgencyId'] as string,
    procedureCode: b['procedureCode'] as string,
    itemCode: b['itemCode'] as string,
    updatedAt: b['updatedAt'] as string,
    issuedAt: b['issuedAt'] as string,
  };
}
