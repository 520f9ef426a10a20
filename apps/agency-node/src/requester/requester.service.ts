import { createHash } from 'node:crypto';
import { isAgencyCode } from '#linkage';
import { validateMyNumber } from '#numbering';
import { SealedAnswerError, fromBase64url, openAnswer, type AnswerKeyPair } from '#sealed-answer';
import { AgencyProblem } from '../http/agency-problem.js';
import type { HubAnswer, HubClient } from '../hub/hub-client.js';
import type { AgencyStore, Person, RecordOutcome } from '../store/agency-store.js';

export interface QueryInput {
  readonly localId: string;
  readonly providerAgencyId: string;
  readonly procedureCode: string;
  readonly itemCodes: readonly string[];
  readonly encrypt: boolean;
}

export interface BulkQueryInput extends Omit<QueryInput, 'localId'> {
  readonly localIds: readonly string[];
}

export type QueryResult =
  | { readonly serial: string; readonly queryId: string; readonly outcome: 'answered'; readonly tableVersion?: number; readonly items: Record<string, unknown> }
  | { readonly serial: string; readonly queryId: string; readonly outcome: 'refused-by-provider'; readonly reason: string };

export type BulkItemResult =
  | ({ readonly index: number; readonly localId: string } & QueryResult)
  | { readonly index: number; readonly localId: string; readonly serial?: string; readonly queryId?: string; readonly outcome: 'denied' | 'failed' | 'not-sent'; readonly reason: string };

export interface AcquireInput {
  readonly localId: string;
  readonly individualNumber: string;
  readonly acquisitionNumber: string;
}

interface HubAnswerBody {
  readonly data: string;
  readonly encrypted: boolean;
  readonly digest: string;
  readonly size: number;
}

/**
 * The requester side (照会), for the agency's staff: turns its own local id into its own agency code,
 * asks the hub, checks the relayed bytes against their digest, opens them, and records the exchange.
 */
export class RequesterService {
  constructor(
    private readonly store: AgencyStore,
    private readonly hub: HubClient,
    private readonly keys: AnswerKeyPair,
    private readonly now: () => Date = () => new Date(),
  ) {}

  async query(input: QueryInput): Promise<QueryResult> {
    const person = this.personWithCode(input.localId);
    const res = await this.hub.post('/v1/queries', {
      code: person.agencyCode,
      providerAgencyId: input.providerAgencyId,
      procedureCode: input.procedureCode,
      itemCodes: input.itemCodes,
      ...(input.encrypt ? { answerPublicKey: this.keys.publicKey } : {}),
    });
    if (res.status !== 200) throw this.hubProblem(res, input, person.localId);
    const outcome = await this.settle(res.body, input, person.localId);
    if ('problem' in outcome) throw outcome.problem;
    return outcome;
  }

  async bulk(input: BulkQueryInput): Promise<{ batchId: string | null; results: BulkItemResult[] }> {
    const results: (BulkItemResult | undefined)[] = input.localIds.map(() => undefined);
    const sent: { index: number; person: Person }[] = [];
    input.localIds.forEach((localId, index) => {
      const person = this.store.person(localId);
      if (person === undefined) results[index] = { index, localId, outcome: 'not-sent', reason: 'PERSON_NOT_FOUND' };
      else if (person.agencyCode === null) results[index] = { index, localId, outcome: 'not-sent', reason: 'CODE_NOT_ACQUIRED' };
      else sent.push({ index, person });
    });
    if (sent.length === 0) return { batchId: null, results: results as BulkItemResult[] };
    const res = await this.hub.post('/v1/queries/bulk', {
      codes: sent.map((s) => s.person.agencyCode),
      providerAgencyId: input.providerAgencyId,
      procedureCode: input.procedureCode,
      itemCodes: input.itemCodes,
      ...(input.encrypt ? { answerPublicKey: this.keys.publicKey } : {}),
    });
    if (res.status !== 200) throw this.hubProblem(res, input);
    const body = res.body as { batchId?: unknown; results?: unknown } | undefined;
    if (!Array.isArray(body?.results) || body.results.length !== sent.length) {
      throw new AgencyProblem('HUB_PROTOCOL_ERROR', `the hub answered the bulk query without one result per code (${sent.length} sent)`);
    }
    for (const raw of body.results as { index?: unknown; serial?: unknown; queryId?: unknown; outcome?: unknown; reason?: unknown }[]) {
      const at = typeof raw?.index === 'number' ? sent[raw.index] : undefined;
      if (at === undefined || results[at.index] !== undefined) throw new AgencyProblem('HUB_PROTOCOL_ERROR', 'the hub answered the bulk query with a missing or repeated result index');
      const localId = at.person.localId;
      const serial = typeof raw.serial === 'string' ? raw.serial : undefined;
      const queryId = typeof raw.queryId === 'string' ? raw.queryId : undefined;
      if (raw.outcome === 'denied' || raw.outcome === 'failed') {
        const reason = typeof raw.reason === 'string' ? raw.reason : 'UNKNOWN';
        if (serial !== undefined) this.recordRequested(serial, queryId ?? null, input, localId, raw.outcome, reason);
        results[at.index] = { index: at.index, localId, serial, queryId, outcome: raw.outcome, reason };
        continue;
      }
      const outcome = await this.settle(raw, input, localId);
      results[at.index] =
        'problem' in outcome
          ? { index: at.index, localId, serial, queryId, outcome: 'failed', reason: outcome.problem.code }
          : { index: at.index, localId, ...outcome };
    }
    return { batchId: typeof body.batchId === 'string' ? body.batchId : null, results: results as BulkItemResult[] };
  }

  /** Presents the individual number to the hub once, and keeps only the agency code it returns. */
  async acquire(input: AcquireInput): Promise<{ localId: string; code: string; serial: string; acquiredAt: string; reacquired: boolean }> {
    const check = validateMyNumber(input.individualNumber);
    // The number itself is never echoed: not in the error, not in a log.
    if (!check.ok) {
      throw new AgencyProblem(
        check.code === 'CHECK_DIGIT_MISMATCH' ? 'CHECK_DIGIT_MISMATCH' : 'VALIDATION_FAILED',
        check.code === 'CHECK_DIGIT_MISMATCH' ? 'individualNumber: the check digit does not match; check the number on the card' : 'individualNumber must be the 12 digits of an individual number',
      );
    }
    const person = this.store.person(input.localId);
    if (person === undefined) throw new AgencyProblem('PERSON_NOT_FOUND', `no person with local id ${input.localId}; load them first (load-copies)`);
    const res = await this.hub.post('/v1/agency-codes', { individualNumber: input.individualNumber, acquisitionNumber: input.acquisitionNumber });
    if (res.status !== 200 && res.status !== 201) throw this.hubProblem(res);
    const body = res.body as { code?: unknown; serial?: unknown; acquiredAt?: unknown; reacquired?: unknown } | undefined;
    if (!isAgencyCode(body?.code) || typeof body.serial !== 'string' || typeof body.acquiredAt !== 'string') {
      throw new AgencyProblem('HUB_PROTOCOL_ERROR', 'the hub answered the acquisition without a valid code, serial and acquiredAt');
    }
    this.store.setAgencyCode(person.localId, body.code, body.acquiredAt);
    return { localId: person.localId, code: body.code, serial: body.serial, acquiredAt: body.acquiredAt, reacquired: body.reacquired === true };
  }

  /** Sends one of the agency's people a notice through the hub, addressed by the agency's own code. */
  async notice(input: { readonly localId: string; readonly title: string; readonly body: string }): Promise<{ localId: string; noticeId: string; serial: string; sentAt: string }> {
    const person = this.personWithCode(input.localId);
    const res = await this.hub.post('/v1/notices', { code: person.agencyCode, title: input.title, body: input.body });
    if (res.status !== 201) throw this.hubProblem(res);
    const body = res.body as { noticeId?: unknown; serial?: unknown; sentAt?: unknown } | undefined;
    if (typeof body?.noticeId !== 'string' || typeof body.serial !== 'string' || typeof body.sentAt !== 'string') {
      throw new AgencyProblem('HUB_PROTOCOL_ERROR', 'the hub answered the notice without a noticeId, serial and sentAt');
    }
    return { localId: person.localId, noticeId: body.noticeId, serial: body.serial, sentAt: body.sentAt };
  }

  private personWithCode(localId: string): Person & { agencyCode: string } {
    const person = this.store.person(localId);
    if (person === undefined) throw new AgencyProblem('PERSON_NOT_FOUND', `no person with local id ${localId}; load them first (load-copies)`);
    if (person.agencyCode === null) {
      throw new AgencyProblem('CODE_NOT_ACQUIRED', `no agency code was acquired for local id ${localId}; acquire it first (POST /v1/agency-codes with the individual number)`);
    }
    return person as Person & { agencyCode: string };
  }

  /** A 200 from the hub, answered or refused by the provider: checked, opened and recorded. */
  private async settle(raw: unknown, input: Omit<QueryInput, 'localId'>, localId: string): Promise<QueryResult | { problem: AgencyProblem }> {
    const body = raw as { serial?: unknown; queryId?: unknown; outcome?: unknown; reason?: unknown; tableVersion?: unknown; answer?: Partial<HubAnswerBody> } | undefined;
    if (typeof body?.serial !== 'string' || typeof body.queryId !== 'string') {
      throw new AgencyProblem('HUB_PROTOCOL_ERROR', 'the hub answered the query without a serial and a queryId');
    }
    const { serial, queryId } = body;
    if (body.outcome === 'refused-by-provider') {
      const reason = typeof body.reason === 'string' ? body.reason : 'UNKNOWN';
      this.recordRequested(serial, queryId, input, localId, 'refused-by-provider', reason);
      return { serial, queryId, outcome: 'refused-by-provider', reason };
    }
    if (body.outcome !== 'answered') throw new AgencyProblem('HUB_PROTOCOL_ERROR', `the hub answered with outcome ${JSON.stringify(body.outcome)}`, { serial });
    const failed = (code: string, detail: string): { problem: AgencyProblem } => {
      this.recordRequested(serial, queryId, input, localId, 'failed', code);
      return { problem: new AgencyProblem(code, detail, { serial }) };
    };
    const answer = body.answer;
    if (answer !== undefined && answer.data === undefined && typeof answer.digest === 'string') {
      // An idempotent replay: an earlier attempt got the bytes but was lost in transit, and the hub keeps no answers (I5).
      return failed('ANSWER_LOST', `the hub relayed the answer for serial ${serial} to an earlier attempt that did not arrive, and keeps no copy; send the query again`);
    }
    const bytes = typeof answer?.data === 'string' ? fromBase64url(answer.data) : undefined;
    const digest = bytes && createHash('sha256').update(bytes).digest('hex');
    if (bytes === undefined || answer?.size !== bytes.length || answer.digest !== digest) {
      return failed('ANSWER_DIGEST_MISMATCH', `the answer bytes relayed for serial ${serial} do not match the digest and size the hub recorded; the answer was discarded`);
    }
    if (input.encrypt && answer.encrypted !== true) {
      return failed('ANSWER_NOT_ENCRYPTED', `the answer for serial ${serial} came unencrypted although this agency sent its answer key; it was discarded`);
    }
    let plain: Uint8Array = bytes;
    if (answer.encrypted === true) {
      try {
        plain = await openAnswer(bytes, this.keys.privateKey, serial);
      } catch (error) {
        if (!(error instanceof SealedAnswerError)) throw error;
        return failed('ANSWER_DECRYPTION_FAILED', `the answer for serial ${serial} cannot be opened with this agency's answer key (${error.message})`);
      }
    }
    let items: Record<string, unknown>;
    try {
      const parsed = JSON.parse(Buffer.from(plain).toString('utf8')) as { items?: unknown };
      if (typeof parsed.items !== 'object' || parsed.items === null || Array.isArray(parsed.items)) throw new Error('no items');
      items = parsed.items as Record<string, unknown>;
    } catch {
      return failed('ANSWER_MALFORMED', `the answer for serial ${serial} is not UTF-8 JSON {"items": {...}}`);
    }
    this.recordRequested(serial, queryId, input, localId, 'answered', null, { digest: digest!, size: bytes.length, encrypted: answer.encrypted === true });
    return { serial, queryId, outcome: 'answered', ...(typeof body.tableVersion === 'number' ? { tableVersion: body.tableVersion } : {}), items };
  }

  /** A hub refusal or failure, passed on with the hub's code and serial (and recorded when it has a serial). */
  private hubProblem(res: HubAnswer, input?: Omit<QueryInput, 'localId'>, localId?: string): AgencyProblem {
    const p = res.body as { code?: unknown; title?: unknown; detail?: unknown; serial?: unknown } | undefined;
    const code = typeof p?.code === 'string' ? p.code : undefined;
    const serial = typeof p?.serial === 'string' ? p.serial : undefined;
    if (res.status === 401) {
      return new AgencyProblem('HUB_AUTHENTICATION_FAILED', `the hub refused this agency's token (${code ?? 401}); check AGENCY_TOKEN_FILE / AGENCY_TOKEN`);
    }
    if (code === undefined) return new AgencyProblem('HUB_PROTOCOL_ERROR', `the hub answered ${res.status} without a problem code`);
    if (serial !== undefined && input !== undefined) {
      this.recordRequested(serial, null, input, localId ?? null, res.status === 403 ? 'denied' : 'failed', code);
    }
    const detail = typeof p?.detail === 'string' ? p.detail : `the hub answered ${code}`;
    const title = typeof p?.title === 'string' ? p.title : 'Refused by the hub';
    return new AgencyProblem(code, detail, serial === undefined ? {} : { serial }, { status: res.status, title });
  }

  private recordRequested(
    serial: string,
    queryId: string | null,
    input: Omit<QueryInput, 'localId'>,
    localId: string | null,
    outcome: RecordOutcome,
    reason: string | null,
    answer?: { digest: string; size: number; encrypted: boolean },
  ): void {
    this.store.record({
      role: 'requested',
      serial,
      queryId,
      counterpartAgencyId: input.providerAgencyId,
      procedureCode: input.procedureCode,
      itemCodes: input.itemCodes,
      localId,
      outcome,
      reason,
      answerDigest: answer?.digest ?? null,
      answerSize: answer?.size ?? null,
      encrypted: answer?.encrypted ?? null,
      recordedAt: this.now().toISOString(),
    });
  }
}

