import type { UntypedServiceImplementation } from '@grpc/grpc-js';
import type { Authenticator } from '../linkage/authenticator.js';
import { SubscribeRequestBody, SubscriptionIdParam, SubscriptionsQuery } from '../subscriptions/subscriptions.dto.js';
import type { SubscriptionsService, SubscriptionView } from '../subscriptions/subscriptions.service.js';
import { credentialed, limited, recorded, unary, validated, type GrpcCall, type RefusalGuard } from './grpc-call.js';

interface SubscribeMessage {
  code?: string;
  providerAgencyId?: string;
  procedureCode?: string;
  itemCodes?: string[];
  expiresAt?: string;
  requesterAgencyId?: string;
  tableVersion?: number;
}

const RENAMED = {
  providerAgencyId: 'provider_agency_id',
  procedureCode: 'procedure_code',
  itemCodes: 'item_codes',
  expiresAt: 'expires_at',
  requesterAgencyId: 'requester_agency_id',
  tableVersion: 'table_version',
  subscriptionId: 'subscription_id',
};

function meta(call: GrpcCall) {
  return { correlationId: call.correlationId, ...(call.idempotencyKey === undefined ? {} : { idempotencyKey: call.idempotencyKey }) };
}

function subscription(s: SubscriptionView) {
  return {
    subscriptionId: s.subscriptionId,
    serial: s.serial,
    code: s.code,
    providerAgencyId: s.providerAgencyId,
    procedureCode: s.procedureCode,
    itemCodes: [...s.itemCodes],
    tableVersion: s.tableVersion,
    status: s.status,
    createdAt: s.createdAt,
    expiresAt: s.expiresAt,
    ...(s.endedAt === undefined ? {} : { endedAt: s.endedAt }),
    ...(s.endReason === undefined ? {} : { endReason: s.endReason }),
  };
}

/** linkage_ledger.v1.Subscriptions: the HTTP edge's DTOs, authentication and commands, over gRPC. */
export function subscriptionsService(auth: Authenticator, subscriptions: SubscriptionsService, guard: RefusalGuard): UntypedServiceImplementation {
  return {
    Subscribe: unary(recorded('Subscribe', guard, async (m: SubscribeMessage, call) => {
      const body = validated(
        SubscribeRequestBody,
        {
          code: m.code,
          providerAgencyId: m.providerAgencyId,
          procedureCode: m.procedureCode,
          itemCodes: m.itemCodes,
          expiresAt: m.expiresAt,
          requesterAgencyId: m.requesterAgencyId,
          tableVersion: m.tableVersion,
        },
        RENAMED,
      );
      const agency = await auth.agency(credentialed(call));
      const outcome = await subscriptions.subscribe(agency.agencyId, body, { actor: `agency:${agency.agencyId}`, ...meta(call) });
      call.replayed = outcome.replayed;
      return outcome.value;
    })),
    ListSubscriptions: unary(limited('ListSubscriptions', guard, async (m: { limit?: number; after?: string }, call) => {
      const agency = await auth.agency(credentialed(call));
      const query = validated(SubscriptionsQuery, { limit: m.limit, after: m.after }, RENAMED);
      const page = await subscriptions.list(agency.agencyId, { ...(query.limit === undefined ? {} : { limit: query.limit }), ...(query.after === undefined ? {} : { after: query.after }) });
      return { subscriptions: page.subscriptions.map(subscription), ...(page.next === undefined ? {} : { next: page.next }) };
    })),
    GetSubscription: unary(limited('GetSubscription', guard, async (m: { subscriptionId?: string }, call) => {
      const agency = await auth.agency(credentialed(call));
      const params = validated(SubscriptionIdParam, { subscriptionId: m.subscriptionId }, RENAMED);
      return subscription(await subscriptions.get(agency.agencyId, params.subscriptionId));
    })),
    CancelSubscription: unary(recorded('CancelSubscription', guard, async (m: { subscriptionId?: string }, call) => {
      const params = validated(SubscriptionIdParam, { subscriptionId: m.subscriptionId }, RENAMED);
      const agency = await auth.agency(credentialed(call));
      const outcome = await subscriptions.cancel(agency.agencyId, params.subscriptionId, { actor: `agency:${agency.agencyId}`, ...meta(call) });
      call.replayed = outcome.replayed;
      return outcome.value;
    })),
  };
}
