import { Injectable } from '@nestjs/common';
import { HubProblem } from '../../http/hub-problem.js';
import type { ProblemCode } from '../../http/problem-catalog.js';
import type { RequestMeta } from '../../http/request-meta.js';
import { IdempotencyKeys } from '../../ledger/idempotency.js';
import { Authenticator, type Credentialed } from '../authenticator.js';
import type { QueryResult } from './query-outcome.js';
import { QueryRunner, type QueryRequest } from './query-runner.js';
import type { SubmitBulkQueryRequest, SubmitQueryRequest } from './query.dto.js';

export const DENIALS: readonly ProblemCode[] = [
  'UNKNOWN_REQUESTER',
  'REQUESTER_REVOKED',
  'CREDENTIAL_MISMATCH',
  'UNKNOWN_PROVIDER',
  'PROVIDER_REVOKED',
  'PROVIDER_IS_REQUESTER',
  'TABLE_VERSION_NOT_IN_FORCE',
  'UNKNOWN_PROCEDURE',
  'REQUESTER_KIND_NOT_ALLOWED',
  'PROVIDER_KIND_NOT_ALLOWED',
  'ITEM_NOT_ALLOWED',
  'CODE_NOT_ISSUED_TO_REQUESTER',
  'NO_CODE_AT_PROVIDER',
];
export const FAILURES: readonly ProblemCode[] = ['PROVIDER_UNREACHABLE', 'PROVIDER_TIMEOUT', 'PROVIDER_PROTOCOL_ERROR', 'ANSWER_TOO_LARGE', 'INTERRUPTED'];

/** What a person can do about each refusal. */
const ADVICE: Readonly<Record<string, string>> = {
  UNKNOWN_REQUESTER: 'no agency is registered under requesterAgencyId',
  REQUESTER_REVOKED: 'the requesting agency is revoked; it can no longer query',
  CREDENTIAL_MISMATCH: 'the bearer token is not the current credential of requesterAgencyId; send the agency\'s own token',
  UNKNOWN_PROVIDER: 'no agency is registered under providerAgencyId; see GET /v1/agencies',
  PROVIDER_REVOKED: 'the providing agency is revoked and cannot be queried',
  PROVIDER_IS_REQUESTER: 'an agency cannot query itself through the hub',
  TABLE_VERSION_NOT_IN_FORCE: 'the authorization table version asked for is not the one in force (or none is in force)',
  UNKNOWN_PROCEDURE: 'the procedure is not in the authorization table in force',
  REQUESTER_KIND_NOT_ALLOWED: 'this kind of agency may not query for this procedure; see allowedRequesterKinds',
  PROVIDER_KIND_NOT_ALLOWED: 'this kind of agency does not provide information for this procedure; see allowedProviderKinds',
  ITEM_NOT_ALLOWED: 'an item is not allowed for this procedure and provider; see notAllowedItems and allowedItems',
  CODE_NOT_ISSUED_TO_REQUESTER: 'the code is not one the hub issued to the requesting agency; acquire the person\'s code first (POST /v1/agency-codes)',
  NO_CODE_AT_PROVIDER: 'the providing agency holds no code for this person, so it cannot hold their records',
  PROVIDER_UNREACHABLE: 'the providing agency\'s intermediate server could not be reached; the query\'s serial is closed as failed: query again later',
  PROVIDER_TIMEOUT: 'the providing agency\'s intermediate server did not answer in time; the query\'s serial is closed as failed: query again later',
  PROVIDER_PROTOCOL_ERROR: 'the providing agency\'s intermediate server answered outside the provision protocol; the query\'s serial is closed as failed',
  ANSWER_TOO_LARGE: 'the provider\'s answer is larger than the hub relays; the query\'s serial is closed as failed',
  INTERRUPTED: 'the query was interrupted before it ended (the hub restarted, or could not record its end); its serial was voided: query again',
};

/**
 * What both edges (HTTP, gRPC) do with a query: name the requester, scope the idempotency key, run it,
 * and turn a refusal or failure of a single query into its problem (bulk results carry theirs inline).
 */
@Injectable()
export class QueryEdge {
  constructor(
    private readonly auth: Authenticator,
    private readonly runner: QueryRunner,
    private readonly idempotencyKeys: IdempotencyKeys,
  ) {}

  /** One query; throws the denial or failure as a problem with the serial. */
  async one(request: Credentialed, body: SubmitQueryRequest, meta: RequestMeta): Promise<QueryResult> {
    const { query, caller, idempotency } = await this.#prepare(request, body, meta);
    const [result] = await this.runner.run(query, [body.code], caller, idempotency, false);
    if (result!.outcome === 'denied' || result!.outcome === 'failed') throw problemOf(result!);
    return result!;
  }

  async bulk(request: Credentialed, body: SubmitBulkQueryRequest, meta: RequestMeta): Promise<QueryResult[]> {
    const { query, caller, idempotency } = await this.#prepare(request, body, meta);
    return this.runner.run(query, body.codes, caller, idempotency, true);
  }

  async #prepare(request: Credentialed, body: SubmitQueryRequest | SubmitBulkQueryRequest, meta: RequestMeta) {
    // Only the agency the credential proves can query (I6). A query naming another agency is refused as a
    // whole, bulk included, in one refusal event of the proven agency that keeps the named one apart: a
    // forged attempt is never counted as the named agency's.
    const credential = await this.auth.agency(request);
    if (body.requesterAgencyId !== undefined && body.requesterAgencyId !== credential.agencyId) {
      throw new HubProblem('CREDENTIAL_MISMATCH', `the bearer token is agency ${credential.agencyId}'s, not ${body.requesterAgencyId}'s; send the requesting agency's own token`, { agencyId: credential.agencyId });
    }
    const requesterAgencyId = credential.agencyId;
    const caller = { actor: `agency:${requesterAgencyId}`, ...meta };
    const query: QueryRequest = {
      requesterAgencyId,
      credentialDigest: credential.digest,
      providerAgencyId: body.providerAgencyId,
      procedureCode: body.procedureCode,
      itemCodes: body.itemCodes,
      ...(body.answerPublicKey === undefined ? {} : { answerPublicKey: body.answerPublicKey }),
      ...(body.tableVersion === undefined ? {} : { tableVersion: body.tableVersion }),
    };
    const idempotency = this.idempotencyKeys.scope(caller, { ...body, requesterAgencyId });
    return { query, caller, idempotency };
  }}

function problemOf(r: QueryResult): HubProblem {
  const code = r.reason as ProblemCode;
  const advice = ADVICE[code] ?? code;
  return new HubProblem(code, r.cause === undefined ? advice : `${r.cause}; ${advice}`, { serial: r.serial, queryId: r.queryId, ...(r.tableVersion === undefined ? {} : { tableVersion: r.tableVersion }), ...(r.details ?? {}) });
}
