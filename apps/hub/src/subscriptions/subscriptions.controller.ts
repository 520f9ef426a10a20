import { Body, Controller, Delete, Get, HttpCode, HttpStatus, Param, Post, Query, Req, Res } from '@nestjs/common';
import { ApiBearerAuth, ApiCreatedResponse, ApiOkResponse, ApiOperation, ApiTags } from '@nestjs/swagger';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { ApiCommandHeaders, markReplayed } from '../http/api-headers.js';
import { ApiProblems, BODY_PROBLEMS, COMMON_PROBLEMS } from '../http/problem.dto.js';
import { Meta, type RequestMeta } from '../http/request-meta.js';
import { Authenticator } from '../linkage/authenticator.js';
import { RecordsRefusals } from '../refusals/refusal.guard.js';
import { CancelledResponse, SubscribeRequestBody, SubscribedResponse, SubscriptionIdParam, SubscriptionResponse, SubscriptionsQuery, SubscriptionsResponse } from './subscriptions.dto.js';
import { SubscriptionsService } from './subscriptions.service.js';

/** What the table can refuse a subscription for (403, recorded as a RequestRefused event). */
export const SUBSCRIBE_DENIALS = [
  'CREDENTIAL_MISMATCH',
  'UNKNOWN_PROVIDER',
  'PROVIDER_REVOKED',
  'PROVIDER_IS_REQUESTER',
  'CODE_NOT_ISSUED_TO_REQUESTER',
  'NO_CODE_AT_PROVIDER',
  'TABLE_VERSION_NOT_IN_FORCE',
  'UNKNOWN_PROCEDURE',
  'REQUESTER_KIND_NOT_ALLOWED',
  'PROVIDER_KIND_NOT_ALLOWED',
  'ITEM_NOT_ALLOWED',
  'PUSH_NOT_AUTHORIZED',
] as const;

/** What else a subscription is refused for (recorded as a RequestRefused event too). */
export const SUBSCRIBE_CONFLICTS = ['SUBSCRIPTION_EXISTS'] as const;

@ApiTags('subscriptions')
@Controller('v1/subscriptions')
export class SubscriptionsController {
  constructor(
    private readonly auth: Authenticator,
    private readonly subscriptions: SubscriptionsService,
  ) {}

  @Post()
  @RecordsRefusals('Subscribe')
  @HttpCode(HttpStatus.CREATED)
  @ApiBearerAuth()
  @ApiCommandHeaders()
  @ApiOperation({
    summary: 'Subscribe to items a provider holds for a person (プッシュ型の情報提供).',
    description:
      'Allowed only where the authorization table in force lists the items in the row\'s `push` for (the caller\'s kind, the procedure, the provider\'s kind); a refusal is recorded (RequestRefused) and answered 403 with the reason as its code. ' +
      'The hub records SubscriptionCreated under a serial of its own (the person and the code sealed). When the provider reports an update of a subscribed item for the person, the hub pushes a notice of it (no data) to the caller\'s intermediate server, ' +
      'which fetches the value by an ordinary query. Default expiry a year, at most five years. ' +
      'A subscription sharing an item with an active one the caller holds to the same provider for the same person is refused 409 SUBSCRIPTION_EXISTS (details.subscriptionId names that one; recorded as RequestRefused); ' +
      'a retry with the same Idempotency-Key answers the first subscription.',
  })
  @ApiCreatedResponse({ type: SubscribedResponse })
  @ApiProblems(...BODY_PROBLEMS, 'UNAUTHENTICATED', 'INVALID_EXPIRY', ...SUBSCRIBE_DENIALS, ...SUBSCRIBE_CONFLICTS, 'IDEMPOTENCY_KEY_REUSED', ...COMMON_PROBLEMS)
  async subscribe(@Req() request: FastifyRequest, @Body() body: SubscribeRequestBody, @Meta() meta: RequestMeta, @Res({ passthrough: true }) reply: FastifyReply): Promise<SubscribedResponse> {
    const { agencyId } = await this.auth.agency(request);
    const outcome = await this.subscriptions.subscribe(agencyId, body, { actor: `agency:${agencyId}`, ...meta });
    markReplayed(reply, outcome.replayed);
    return outcome.value;
  }

  @Get()
  @ApiBearerAuth()
  @ApiOperation({ summary: 'The calling agency\'s subscriptions (every status), in the order they were made, paged with `after`.' })
  @ApiOkResponse({ type: SubscriptionsResponse })
  @ApiProblems('UNAUTHENTICATED', 'VALIDATION_FAILED', ...COMMON_PROBLEMS)
  async list(@Req() request: FastifyRequest, @Query() query: SubscriptionsQuery): Promise<SubscriptionsResponse> {
    const { agencyId } = await this.auth.agency(request);
    const page = await this.subscriptions.list(agencyId, { ...(query.limit === undefined ? {} : { limit: query.limit }), ...(query.after === undefined ? {} : { after: query.after }) });
    return { subscriptions: page.subscriptions.map((s) => ({ ...s, itemCodes: [...s.itemCodes] })), ...(page.next === undefined ? {} : { next: page.next }) };
  }

  @Get(':subscriptionId')
  @ApiBearerAuth()
  @ApiOperation({ summary: 'One of the calling agency\'s subscriptions; another agency\'s is 404 SUBSCRIPTION_NOT_FOUND.' })
  @ApiOkResponse({ type: SubscriptionResponse })
  @ApiProblems('UNAUTHENTICATED', 'VALIDATION_FAILED', 'SUBSCRIPTION_NOT_FOUND', ...COMMON_PROBLEMS)
  async get(@Req() request: FastifyRequest, @Param() params: SubscriptionIdParam): Promise<SubscriptionResponse> {
    const { agencyId } = await this.auth.agency(request);
    const s = await this.subscriptions.get(agencyId, params.subscriptionId);
    return { ...s, itemCodes: [...s.itemCodes] };
  }

  @Delete(':subscriptionId')
  @RecordsRefusals('CancelSubscription')
  @HttpCode(HttpStatus.OK)
  @ApiBearerAuth()
  @ApiCommandHeaders()
  @ApiOperation({
    summary: 'Cancel one of the calling agency\'s subscriptions.',
    description:
      'Records SubscriptionCancelled under a serial of its own. Another agency\'s subscription is 404 SUBSCRIPTION_NOT_FOUND; one no longer active is 409 SUBSCRIPTION_NOT_ACTIVE; both recorded as refusals. ' +
      'A retry with the same Idempotency-Key answers the first cancellation (Idempotent-Replayed: true).',
  })
  @ApiOkResponse({ type: CancelledResponse })
  @ApiProblems('UNAUTHENTICATED', 'VALIDATION_FAILED', 'SUBSCRIPTION_NOT_FOUND', 'SUBSCRIPTION_NOT_ACTIVE', 'CONCURRENT_MODIFICATION', ...COMMON_PROBLEMS)
  async cancel(@Req() request: FastifyRequest, @Param() params: SubscriptionIdParam, @Meta() meta: RequestMeta, @Res({ passthrough: true }) reply: FastifyReply): Promise<CancelledResponse> {
    const { agencyId } = await this.auth.agency(request);
    const outcome = await this.subscriptions.cancel(agencyId, params.subscriptionId, { actor: `agency:${agencyId}`, ...meta });
    markReplayed(reply, outcome.replayed);
    return outcome.value;
  }
}
