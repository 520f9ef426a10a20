import type { UntypedServiceImplementation } from '@grpc/grpc-js';
import { credentialed, limited, recorded, unary, validated, type GrpcCall, type RefusalGuard } from '../../grpc/grpc-call.js';
import { RequestValidationError } from '../../http/hub-problem.js';
import type { Authenticator } from '../authenticator.js';
import type { AuthorizationTableRollout } from './authorization-table-rollout.js';
import { OPERATOR_ACTOR } from './authorization-tables.controller.js';
import { PublishAuthorizationTableRequest, TableVersionParam, WithdrawAuthorizationTableRequest } from './authorization-tables.dto.js';

/** Fully qualified name of the service in schemas/proto/linkage_ledger/v1/authorization_tables.proto. */
export const AUTHORIZATION_TABLES_SERVICE = 'linkage_ledger.v1.AuthorizationTables';

function meta(call: GrpcCall) {
  return { correlationId: call.correlationId, ...(call.idempotencyKey === undefined ? {} : { idempotencyKey: call.idempotencyKey }) };
}

/** `table_json` as the HTTP body's `table`: JSON text of an object, else VALIDATION_FAILED naming the field. */
function tableOf(m: { tableJson?: string }): PublishAuthorizationTableRequest {
  let table: unknown;
  try {
    table = m.tableJson === undefined ? undefined : JSON.parse(m.tableJson);
  } catch {
    throw new RequestValidationError([{ field: 'table_json', message: 'must be the table as JSON text' }]);
  }
  return validated(PublishAuthorizationTableRequest, { table }, { table: 'table_json' });
}

/**
 * linkage_ledger.v1.AuthorizationTables: the same commands and views as /v1/authorization-tables (the same
 * DTO validation, the operator's credential, the same refusals recorded). The table travels as JSON text.
 */
export function authorizationTablesService(auth: Authenticator, rollout: AuthorizationTableRollout, guard: RefusalGuard): UntypedServiceImplementation {
  return {
    PublishAuthorizationTable: unary(recorded('PublishAuthorizationTable', guard, async (m: { tableJson?: string }, call) => {
      const body = tableOf(m);
      auth.operator(credentialed(call));
      const outcome = await rollout.publish(body.table, { actor: OPERATOR_ACTOR, ...meta(call) });
      call.replayed = outcome.replayed;
      return outcome.value;
    })),
    ValidateAuthorizationTable: unary(limited('ValidateAuthorizationTable', guard, async (m: { tableJson?: string }, call) => {
      auth.operator(credentialed(call));
      return rollout.validate(tableOf(m).table);
    })),
    WithdrawAuthorizationTable: unary(recorded('WithdrawAuthorizationTable', guard, async (m: { version?: number; reason?: string }, call) => {
      const params = validated(TableVersionParam, { version: m.version });
      const body = validated(WithdrawAuthorizationTableRequest, { reason: m.reason });
      auth.operator(credentialed(call));
      const outcome = await rollout.withdraw(params.version, body.reason, { actor: OPERATOR_ACTOR, ...meta(call) });
      call.replayed = outcome.replayed;
      return outcome.value;
    })),
    ListAuthorizationTables: unary(limited('ListAuthorizationTables', guard, async () => rollout.list())),
  };
}
