import type { UntypedServiceImplementation } from '@grpc/grpc-js';
import type { AgencyId } from '#linkage';
import { credentialed, limited, recorded, unary, validated, type GrpcCall, type RefusalGuard } from '../grpc/grpc-call.js';
import type { Authenticator } from '../linkage/authenticator.js';
import type { PushFanOut } from './push-fan-out.js';
import type { PushRecords } from './push-records.js';
import { PushesQuery, ReportUpdateRequest, type PushRecordResponse } from './pushes.dto.js';


const RENAMED = { itemCodes: 'item_codes', updatedAt: 'updated_at' };

function push(p: PushRecordResponse) {
  const agency = (a: { agencyId: string; name: string | null }) => ({ agencyId: a.agencyId, ...(a.name === null ? {} : { name: a.name }) });
  return {
    pushId: p.pushId,
    serial: p.serial,
    updateId: p.updateId,
    subscriber: agency(p.subscriber),
    provider: agency(p.provider),
    procedureCode: p.procedureCode,
    itemCode: p.itemCode,
    status: p.status,
    attempts: p.attempts,
    updatedAt: p.updatedAt,
    issuedAt: p.issuedAt,
    deliverBy: p.deliverBy,
    ...(p.endedAt === null ? {} : { endedAt: p.endedAt }),
    ...(p.endSerial === null ? {} : { endSerial: p.endSerial }),
  };
}

/** linkage_ledger.v1.Updates: the HTTP edge's DTOs, authentication and commands, over gRPC. */
export function updatesService(auth: Authenticator, fanOut: PushFanOut, records: PushRecords, guard: RefusalGuard): UntypedServiceImplementation {
  return {
    ReportUpdate: unary(
      recorded('ReportUpdate', guard, async (m: { code?: string; itemCodes?: string[]; updatedAt?: string }, call: GrpcCall) => {
        const body = validated(ReportUpdateRequest, { code: m.code, itemCodes: m.itemCodes, updatedAt: m.updatedAt }, RENAMED);
        const agency = await auth.agency(credentialed(call));
        const outcome = await fanOut.report(agency.agencyId as AgencyId, body, {
          actor: `agency:${agency.agencyId}`,
          correlationId: call.correlationId,
          ...(call.idempotencyKey === undefined ? {} : { idempotencyKey: call.idempotencyKey }),
        });
        call.replayed = outcome.replayed;
        return outcome.value;
      }),
    ),
    ListPushes: unary(limited('ListPushes', guard, async (m: { role?: string; limit?: number; after?: string }, call: GrpcCall) => {
      const agency = await auth.agency(credentialed(call));
      const query = validated(PushesQuery, { role: m.role, limit: m.limit, after: m.after }, RENAMED);
      const page = await records.agency(agency.agencyId, query);
      return { pushes: page.pushes.map(push), ...(page.next === undefined ? {} : { next: page.next }) };
    })),
  };
}
