import { Inject, Injectable } from '@nestjs/common';
import { EventBus } from '@nestjs/cqrs';
import { createHash, randomUUID } from 'node:crypto';
import type { EventStore, SerialNumber } from '#ledger';
import {
  PROVISION_PROTOCOL,
  decideSelfInformation,
  disclosedItems,
  evolveQuery,
  initialQueryState,
  queryStreamId,
  type QueryEvent,
  type QueryState,
  type SelfInformationEvent,
  type SubjectId,
} from '#linkage';
import { HubProblem } from '../../http/hub-problem.js';
import type { ProblemCode } from '../../http/problem-catalog.js';
import type { RequestMeta } from '../../http/request-meta.js';
import { EventsAppended } from '../../ledger/events-appended.event.js';
import { CLOCK, LEDGER, type Clock } from '../../ledger/tokens.js';
import { HubCodeMapper } from '../hub-code-mapper.js';
import { LinkageViews } from '../linkage-views.js';
import { ProviderClient, type ProviderReply, type ProvisionRequestBody } from '../queries/provider-client.js';
import type { SelfInformationOptionsResponse, SelfInformationRequestBody, SelfInformationResponse } from './self-information.dto.js';

/** What a person can do about each refusal or failure of their request. */
const ADVICE: Readonly<Record<string, string>> = {
  UNKNOWN_PROVIDER: 'no agency is registered under providerAgencyId; see GET /v1/citizens/me/self-information/options',
  PROVIDER_REVOKED: 'the agency is revoked: it holds nothing the hub can ask for any more',
  SELF_DISCLOSURE_TABLE_NOT_IN_FORCE: 'no self-disclosure table is in force: no agency can be asked for self-information now',
  SELF_DISCLOSURE_NOT_ALLOWED: 'this kind of agency does not disclose this item to the person through the hub; see allowedItems, or GET /v1/citizens/me/self-information/options',
  NO_AGENCY_CODE: 'this agency holds no code for you, so it holds none of your records that the hub can ask for',
  PROVISION_REFUSED: 'the agency\'s intermediate server declined to answer (see reason: NO_RECORD, it holds no record of you for this item; NOT_HELD, it holds this item for no one; AUTOMATIC_ANSWER_RESTRICTED, your record is answered only by its staff: ask the agency)',
  PROVIDER_UNREACHABLE: 'the agency\'s intermediate server could not be reached; the request\'s serial is closed as failed: ask again later',
  PROVIDER_TIMEOUT: 'the agency\'s intermediate server did not answer in time; the request\'s serial is closed as failed: ask again later',
  PROVIDER_PROTOCOL_ERROR: 'the agency\'s intermediate server answered outside the provision protocol; the request\'s serial is closed as failed',
  ANSWER_TOO_LARGE: 'the agency\'s answer is larger than the hub relays; the request\'s serial is closed as failed',
};

/**
 * Self-information display (自己情報表示): a citizen asks, through the hub, what one agency holds about
 * them for one item. The request gets a serial of its own and runs the query lifecycle (README, Linkage):
 * decided against the self-disclosure table in force (libs/linkage decideSelfInformation), the person
 * translated to the provider's own code by the code mapper (I7: the citizen never sees it), the provider's
 * intermediate server asked with the browser's key, the sealed answer relayed as bytes (the hub keeps only
 * its digest and size, I5). Every refusal and failure ends the serial in its event (I6) and is answered as
 * a problem naming the serial.
 */
@Injectable()
export class SelfInformationService {
  constructor(
    @Inject(LEDGER) private readonly store: EventStore,
    @Inject(CLOCK) private readonly clock: Clock,
    private readonly views: LinkageViews,
    private readonly mapper: HubCodeMapper,
    private readonly provider: ProviderClient,
    private readonly eventBus: EventBus,
  ) {}

  /** The active agencies holding a code for the person whose kind discloses items to them, by agency id. */
  async options(subjectId: SubjectId): Promise<SelfInformationOptionsResponse> {
    await this.views.catchUp();
    const policy = this.views.selfDisclosureInForce(this.clock().toISOString())?.policy;
    const candidates = this.views
      .agencies()
      .flatMap((s) => (s.status === 'active' ? [s.agency] : []))
      .map((agency) => ({ agency, items: disclosedItems(policy, agency.kind) }))
      .filter((c) => c.items.length > 0)
      .sort((a, b) => (a.agency.agencyId < b.agency.agencyId ? -1 : 1));
    const codes = await Promise.all(candidates.map((c) => this.mapper.mapper.codeFor(subjectId, c.agency.agencyId)));
    return {
      providers: candidates
        .filter((_, i) => codes[i] !== undefined)
        .map((c) => ({ agencyId: c.agency.agencyId, name: c.agency.name, items: c.items.map((i) => ({ code: i.code, name: i.name })) })),
    };
  }

  /** Runs one request; throws the refusal or failure as a problem with the serial. */
  async request(subjectId: SubjectId, body: SelfInformationRequestBody, meta: RequestMeta): Promise<SelfInformationResponse> {
    await this.views.catchUp();
    const queryId = randomUUID();
    const at = this.clock().toISOString();
    const provider = this.views.facts(body.providerAgencyId);
    const inForce = this.views.selfDisclosureInForce(at);
    // The code is looked up only for an agency that may be asked: nothing is learnt about the others.
    const allowed = provider !== undefined && provider.status === 'active' && disclosedItems(inForce?.policy, provider.kind).some((i) => i.code === body.itemCode);
    const providerCode = allowed ? ((await this.mapper.mapper.codeFor(subjectId, body.providerAgencyId)) ?? null) : undefined;
    const events = decideSelfInformation(
      {
        type: 'SubmitSelfInformationRequest',
        data: { queryId, subjectId, providerAgencyId: body.providerAgencyId, provider, itemCode: body.itemCode, policy: inForce?.policy, providerCode, answerPublicKey: body.answerPublicKey, submittedAt: at },
      },
      initialQueryState(),
    );
    const streamId = queryStreamId(queryId);
    const metadata = { actor: 'citizen', correlationId: meta.correlationId };
    const submitted = await this.store.append({ streamId, expectedRevision: 'no_stream', events, serial: { allocate: true }, metadata });
    this.#publish(streamId, submitted, events);
    const serial = submitted.serial;
    const first = events[0]!;
    if (first.type === 'QueryDenied') {
      const { reason, tableVersion, allowedItems } = first.data;
      throw new HubProblem(reason as ProblemCode, ADVICE[reason] ?? reason, { serial, ...(tableVersion === undefined ? {} : { tableVersion }), ...(allowedItems === undefined ? {} : { allowedItems }) });
    }
    const requested = events[1];
    if (first.type !== 'QueryAccepted' || requested?.type !== 'ProvisionRequested') throw new Error(`unexpected decision ${events.map((e) => e.type).join(', ')}`);
    const state = events.reduce<QueryState>((s, e) => evolveQuery(s, e), initialQueryState());
    const provision: ProvisionRequestBody = {
      protocol: PROVISION_PROTOCOL,
      serial,
      queryId,
      requesterKind: 'citizen',
      providerAgencyId: requested.data.providerAgencyId,
      code: requested.data.providerCode,
      procedureCode: requested.data.procedureCode,
      itemCodes: requested.data.itemCodes,
      answerPublicKey: requested.data.answerPublicKey,
      requestedAt: requested.data.requestedAt,
    };
    const agency = this.views.agency(body.providerAgencyId);
    const reply: ProviderReply =
      agency.status === 'active' ? await this.provider.provide(agency.agency.endpoint, provision) : { kind: 'failed', reason: 'PROVIDER_UNREACHABLE', detail: 'the provider was revoked meanwhile' };
    return this.#end(serial, queryId, state, reply, metadata, {
      provider: { agencyId: body.providerAgencyId, name: agency.status === 'unregistered' ? body.providerAgencyId : agency.agency.name },
      item: { code: body.itemCode, name: disclosedItems(inForce?.policy, first.data.providerKind).find((i) => i.code === body.itemCode)?.name ?? body.itemCode },
    });
  }

  async #end(
    serial: SerialNumber,
    queryId: string,
    state: QueryState,
    reply: ProviderReply,
    metadata: { actor: string; correlationId: string },
    names: Pick<SelfInformationResponse, 'provider' | 'item'>,
  ): Promise<SelfInformationResponse> {
    const at = this.clock().toISOString();
    const providerAgencyId = names.provider.agencyId;
    let events: readonly QueryEvent[];
    let digest = '';
    switch (reply.kind) {
      case 'answered':
        digest = createHash('sha256').update(reply.bytes).digest('hex');
        events = decideSelfInformation({ type: 'RecordProvisionAnswer', data: { queryId, providerAgencyId, answerDigest: digest, answerSize: reply.bytes.length, encrypted: reply.encrypted, answeredAt: at } }, state);
        break;
      case 'refused':
        events = decideSelfInformation({ type: 'RecordProvisionRefusal', data: { queryId, providerAgencyId, reason: reply.reason, refusedAt: at } }, state);
        break;
      case 'failed':
        events = decideSelfInformation({ type: 'FailQuery', data: { queryId, reason: reply.reason, failedAt: at } }, state);
        break;
      default: {
        const never: never = reply;
        throw new Error(`unknown provider reply ${JSON.stringify(never)}`);
      }
    }
    const streamId = queryStreamId(queryId);
    const result = await this.store.append({ streamId, expectedRevision: 1, events, serial: { continue: serial }, metadata });
    this.#publish(streamId, result, events);
    switch (reply.kind) {
      case 'answered':
        return { serial, outcome: 'answered', ...names, answer: { data: reply.bytes.toString('base64url'), encrypted: true, digest, size: reply.bytes.length } };
      case 'refused':
        throw new HubProblem('PROVISION_REFUSED', ADVICE['PROVISION_REFUSED']!, { serial, reason: reply.reason });
      case 'failed':
        throw new HubProblem(reply.reason as ProblemCode, `${ADVICE[reply.reason] ?? reply.reason} (${reply.detail})`, { serial });
      default: {
        const never: never = reply;
        throw new Error(`unknown provider reply ${JSON.stringify(never)}`);
      }
    }
  }

  #publish(streamId: string, result: Parameters<typeof EventsAppended.of>[1], events: readonly (QueryEvent | SelfInformationEvent)[]): void {
    this.eventBus.publish(EventsAppended.of(streamId, result, events.map((e) => e.type)));
  }
}
