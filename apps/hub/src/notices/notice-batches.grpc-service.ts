import type { UntypedServiceImplementation } from '@grpc/grpc-js';
import type { CommandBus } from '@nestjs/cqrs';
import { credentialed, limited, recorded, unary, validated, type GrpcCall, type RefusalGuard } from '../grpc/grpc-call.js';
import { oversizeOf } from '../grpc/message-limits.js';
import { HubProblem } from '../http/hub-problem.js';
import type { Outcome } from '../ledger/idempotency.js';
import type { Authenticator } from '../linkage/authenticator.js';
import type { NoticeBatchProgress } from './notice-batch-runner.service.js';
import { DEFAULT_NOTICE_BATCH_LIMIT } from './notice-batch.store.js';
import { noticeBatchView } from './notice-batches.controller.js';
import { NoticeBatchIdParam, NoticeBatchesQuery, StartNoticeBatchRequest } from './notice-batches.dto.js';
import { StartNoticeBatchCommand, type StartedNoticeBatch } from './start-notice-batch.handler.js';

/** Fully qualified name of the service in schemas/proto/linkage_ledger/v1/notice_batches.proto. */
export const NOTICE_BATCHES_SERVICE = 'linkage_ledger.v1.NoticeBatches';

const RENAMED = { batchId: 'batch_id' };

function meta(call: GrpcCall) {
  return { correlationId: call.correlationId, ...(call.idempotencyKey === undefined ? {} : { idempotencyKey: call.idempotencyKey }) };
}

/**
 * linkage_ledger.v1.NoticeBatches: the same command and views as POST/GET /v1/notice-batches (the same DTO
 * validation, the same refusals recorded). A proto3 `repeated` has no presence: an empty `codes` is "not given".
 * StartNoticeBatch takes a message of up to HUB_NOTICE_BATCH_BODY_LIMIT_BYTES (10,000 codes), as the HTTP route
 * takes a body of that size (HubGrpcServer's per-method limits, grpc/message-limits.ts).
 */
export function noticeBatchesService(commandBus: CommandBus, auth: Authenticator, progress: NoticeBatchProgress, guard: RefusalGuard): UntypedServiceImplementation {
  return {
    StartNoticeBatch: unary(recorded('StartNoticeBatch', guard, async (m: { title?: string; body?: string; audience?: string; codes?: string[] }, call) => {
      // A message over this method's limit (HUB_NOTICE_BATCH_BODY_LIMIT_BYTES) arrives undecoded: refused here, so recorded (I6).
      const over = oversizeOf(m);
      if (over !== undefined) throw new HubProblem('PAYLOAD_TOO_LARGE', `the request message is ${over.bytes} bytes, over the limit of ${over.limit} bytes for StartNoticeBatch`);
      const codes = m.codes !== undefined && m.codes.length > 0 ? m.codes : undefined;
      const body = validated(StartNoticeBatchRequest, { title: m.title, body: m.body, ...(m.audience === undefined ? {} : { audience: m.audience }), ...(codes === undefined ? {} : { codes }) }, RENAMED);
      const agency = await auth.agency(credentialed(call));
      const outcome = await commandBus.execute<StartNoticeBatchCommand, Outcome<StartedNoticeBatch>>(
        new StartNoticeBatchCommand(agency.agencyId, body.title, body.body, body.audience, body.codes, { actor: `agency:${agency.agencyId}`, ...meta(call) }),
      );
      call.replayed = outcome.replayed;
      return outcome.value;
    })),
    GetNoticeBatch: unary(limited('GetNoticeBatch', guard, async (m: { batchId?: string }, call) => {
      const agency = await auth.agency(credentialed(call));
      const params = validated(NoticeBatchIdParam, { batchId: m.batchId }, RENAMED);
      const row = (await progress.current()).batch(params.batchId);
      if (row === undefined || row.agencyId !== agency.agencyId) throw new HubProblem('UNKNOWN_NOTICE_BATCH', `your agency sent no notice batch ${params.batchId}; use the batch_id StartNoticeBatch answered`);
      return noticeBatchView(row);
    })),
    ListNoticeBatches: unary(limited('ListNoticeBatches', guard, async (m: { limit?: number; after?: string }, call) => {
      const agency = await auth.agency(credentialed(call));
      const query = validated(NoticeBatchesQuery, { limit: m.limit, after: m.after }, RENAMED);
      const page = (await progress.current()).page(agency.agencyId, { limit: query.limit ?? DEFAULT_NOTICE_BATCH_LIMIT, ...(query.after === undefined ? {} : { before: Number(query.after) }) });
      return { batches: page.batches.map(noticeBatchView), ...(page.next === undefined ? {} : { next: page.next }) };
    })),
  };
}
