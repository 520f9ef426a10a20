import { createHash } from 'node:crypto';
import { toBase64url } from '#sealed-answer';
import { AgencyProblem } from '../http/agency-problem.js';
import { sealProvisionAnswer } from './answer-sealer.js';
import type { AgencyStore, StoredProvisionRecord } from '../store/agency-store.js';
import type { ProviderRefusalReason, ProvisionRequest, ProvisionResponse } from '#linkage';

const utf8 = new TextEncoder();
const CITIZEN = 'citizen';
/**
 * The counterpart recorded for a person's own self-information request (no requesting agency): not an
 * agency id (those hold no ':'), so it is never mistaken for one.
 */
export const CITIZEN_COUNTERPART = 'citizen:self';

/**
 * The provider side (提供): answers a verified provision request from the agency's own copies (副本),
 * looked up by the agency's OWN code for the person, and records it once per serial.
 */
export class ProviderService {
  constructor(
    private readonly agencyId: string,
    private readonly store: AgencyStore,
    private readonly now: () => Date = () => new Date(),
  ) {}

  /** Refuses a request (or batch) naming another agency as provider before anything is recorded. */
  checkAddressee(requests: readonly ProvisionRequest[]): void {
    const other = requests.find((r) => r.providerAgencyId !== this.agencyId);
    if (other !== undefined) {
      throw new AgencyProblem('WRONG_PROVIDER', `the request names provider ${other.providerAgencyId}, but this intermediate server is ${this.agencyId}`, { serial: other.serial });
    }
  }

  async provide(request: ProvisionRequest): Promise<ProvisionResponse> {
    // A person's own request (自己情報表示) is answered only sealed to the key their browser made: never in plaintext.
    if (request.requesterKind === CITIZEN && request.answerPublicKey === undefined) {
      throw new AgencyProblem('VALIDATION_FAILED', 'a self-information request (requesterKind "citizen") must carry answerPublicKey: its answer is sealed to the person\'s key', {
        serial: request.serial,
        errors: [{ field: '/answerPublicKey', message: 'is required when requesterKind is "citizen"' }],
      });
    }
    const requestDigest = digestOfRequest(request);
    // No look-up of the serial first: a new serial (every call but a retry) is answered and recorded without a
    // read, and the INSERT itself tells a serial recorded before, whose stored line then wins (below).
    const decision = this.decide(request);
    let response: ProvisionResponse;
    let answerBytes: Uint8Array | undefined;
    if (decision.status === 'refused') {
      response = { status: 'refused', reason: decision.reason };
    } else {
      const plain = utf8.encode(JSON.stringify({ items: decision.items }));
      try {
        answerBytes = request.answerPublicKey === undefined ? plain : await sealProvisionAnswer(plain, request.answerPublicKey, request.serial);
      } catch (error) {
        // A key that cannot be sealed to: a serial recorded before is still answered (or refused as reused) as it was.
        const earlier = this.store.recordFor('provided', request.serial);
        if (earlier !== undefined) return this.replay(request, requestDigest, earlier);
        throw error;
      }
      response = { status: 'answered', answer: toBase64url(answerBytes), encrypted: request.answerPublicKey !== undefined };
    }
    // A retry of the same serial (concurrent or later) finds a line stored: that line wins, so both get the same answer.
    const written = await this.store.recordDurably({
      role: 'provided',
      serial: request.serial,
      queryId: request.queryId,
      counterpartAgencyId: request.requesterAgencyId ?? CITIZEN_COUNTERPART,
      procedureCode: request.procedureCode,
      itemCodes: request.itemCodes,
      localId: decision.localId,
      outcome: response.status,
      reason: response.status === 'refused' ? response.reason : null,
      answerDigest: answerBytes === undefined ? null : createHash('sha256').update(answerBytes).digest('hex'),
      answerSize: answerBytes?.length ?? null,
      encrypted: response.status === 'answered' ? response.encrypted : null,
      requestDigest,
      responseJson: JSON.stringify(response),
      recordedAt: this.now().toISOString(),
    } as const);
    return written.inserted ? response : this.replay(request, requestDigest, written.stored);
  }

  /** The answer already given to this serial. The same serial with another request is refused. */
  private replay(request: ProvisionRequest, requestDigest: string, earlier: StoredProvisionRecord): ProvisionResponse {
    if (earlier.requestDigest !== requestDigest) {
      throw new AgencyProblem('SERIAL_REUSED', `serial ${request.serial} was already answered for another request; a serial names one query`, { serial: request.serial });
    }
    return JSON.parse(earlier.responseJson!) as ProvisionResponse;
  }

  private decide(request: ProvisionRequest): { status: 'refused'; reason: ProviderRefusalReason; localId: string | null } | { status: 'answered'; items: Record<string, unknown>; localId: string } {
    // Whether the agency holds an item at all does not depend on the person: checked first, so it says nothing about them.
    if (!this.store.holdsAll(request.itemCodes)) return { status: 'refused', reason: 'NOT_HELD', localId: null };
    const person = this.store.personByCode(request.code);
    if (person === undefined) return { status: 'refused', reason: 'NO_RECORD', localId: null };
    // Restricted (自動応答不可) before the copies are read: staff decide, and the answer must not reveal what is held.
    if (person.restricted) return { status: 'refused', reason: 'AUTOMATIC_ANSWER_RESTRICTED', localId: person.localId };
    const copies = this.store.copies(person.localId, request.itemCodes);
    if (copies === undefined) return { status: 'refused', reason: 'NO_RECORD', localId: person.localId };
    const items: Record<string, unknown> = {};
    for (const item of request.itemCodes) items[item] = copies.get(item);
    return { status: 'answered', items, localId: person.localId };
  }
}

/** Every field that makes a request what it is; requestedAt is left out, since a retry may be stamped anew. */
export function digestOfRequest(r: ProvisionRequest): string {
  const fields = [r.serial, r.queryId, r.requesterAgencyId, r.requesterKind, r.providerAgencyId, r.code, r.procedureCode, r.itemCodes, r.answerPublicKey ?? null];
  return createHash('sha256').update(JSON.stringify(fields)).digest('hex');
}
