import { Body, Controller, Delete, Get, HttpCode, Param, Post, Query, Req, UseGuards } from '@nestjs/common';
import type { FastifyRequest } from 'fastify';
import { AgencyProblem } from '../http/agency-problem.js';
import { StaffGuard } from '../http/staff.guard.js';
import { SIGNATURE_HEADER, SIGNATURE_KEY_HEADER } from '../provider/provision-protocol.js';
import { AgencyStore } from '../store/agency-store.js';
import type { ReceivedPush } from '../store/mesh-store.js';
import { CopyUpdatesService, type UpdateInput } from './copy-updates.service.js';
import { PushesQuery, SubscribeRequest, SubscriptionsQuery } from './mesh.dto.js';
import { PushReceiver, type PushReceipt } from './push-receiver.js';
import { SubscriptionsService } from './subscriptions.service.js';

/** POST: called by the hub only, signed with its provision-signing key. GET: the staff's list of what arrived. */
@Controller('v1/pushes')
export class PushesController {
  constructor(
    private readonly receiver: PushReceiver,
    private readonly store: AgencyStore,
  ) {}

  @Post()
  @HttpCode(200)
  receive(@Req() request: FastifyRequest): Promise<PushReceipt> {
    return this.receiver.receive(request.rawBody, request.headers[SIGNATURE_HEADER], request.headers[SIGNATURE_KEY_HEADER]);
  }

  @Get()
  @UseGuards(StaffGuard)
  list(@Query() query: PushesQuery): { pushes: ReceivedPush[]; nextBefore: number | null } {
    const limit = query.limit ?? 50;
    const pushes = this.store.mesh.pushes({ limit, before: query.before });
    return { pushes, nextBefore: pushes.length === limit ? pushes[pushes.length - 1]!.id : null };
  }
}

/** The update command for the staff: changed copies loaded and reported to the hub. */
@Controller('v1/updates')
@UseGuards(StaffGuard)
export class UpdatesController {
  constructor(private readonly updates: CopyUpdatesService) {}

  @Post()
  @HttpCode(200)
  update(@Body() body: unknown) {
    if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new AgencyProblem('VALIDATION_FAILED', 'the request body must be a JSON object {updateId?, updatedAt?, changes}');
    const extra = Object.keys(body).filter((k) => !['updateId', 'updatedAt', 'changes'].includes(k));
    if (extra.length > 0) throw new AgencyProblem('VALIDATION_FAILED', `${extra[0]}: is not a known field`, { errors: extra.map((field) => ({ field, message: 'is not a known field' })) });
    return this.updates.update(body as UpdateInput);
  }
}

/** Subscriptions for the staff, kept by the hub. */
@Controller('v1/subscriptions')
@UseGuards(StaffGuard)
export class SubscriptionsController {
  constructor(private readonly subscriptions: SubscriptionsService) {}

  @Post()
  @HttpCode(201)
  subscribe(@Body() body: SubscribeRequest) {
    return this.subscriptions.subscribe(body);
  }

  @Get()
  list(@Query() query: SubscriptionsQuery) {
    return this.subscriptions.list(query);
  }

  @Get(':subscriptionId')
  get(@Param('subscriptionId') subscriptionId: string) {
    return this.subscriptions.get(subscriptionId);
  }

  @Delete(':subscriptionId')
  @HttpCode(200)
  cancel(@Param('subscriptionId') subscriptionId: string) {
    return this.subscriptions.cancel(subscriptionId);
  }
}
