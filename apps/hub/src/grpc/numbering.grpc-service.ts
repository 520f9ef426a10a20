import type { UntypedServiceImplementation } from '@grpc/grpc-js';
import type { CommandBus, QueryBus } from '@nestjs/cqrs';
import type { Caller } from '../ledger/idempotency.js';
import { ChangeIndividualNumberCommand } from '../numbering/commands/change-individual-number.command.js';
import { DesignateCorporateNumberCommand } from '../numbering/commands/designate-corporate-number.command.js';
import { IssueIndividualNumberCommand } from '../numbering/commands/issue-individual-number.command.js';
import { ChangeCorporateNumberCommand, CloseCorporateNumberCommand } from '../numbering/commands/corporate-number-record.command.js';
import {
  ChangeCorporateNumberRequest,
  CloseCorporateNumberRequest,
  toChangedCorporateNumberResponse,
  toClosedCorporateNumberResponse,
  CorporateNumberParams,
  DesignateCorporateNumberRequest,
  toCorporateNumberResponse,
  toDesignatedCorporateNumberResponse,
} from '../numbering/dto/corporate-number.dto.js';
import {
  ChangeIndividualNumberRequest,
  IssueIndividualNumberRequest,
  toChangedIndividualNumberResponse,
  toIssuedIndividualNumberResponse,
} from '../numbering/dto/individual-number.dto.js';
import { GetCorporateNumberQuery } from '../numbering/queries/get-corporate-number.query.js';
import { DESIGNATING_OPERATOR } from '../numbering/corporate-numbers.controller.js';
import type { Authenticator } from '../linkage/authenticator.js';
import { limited, credentialed, recorded, unary, validated, type RefusalGuard, type GrpcCall } from './grpc-call.js';

/** Request messages as @grpc/proto-loader decodes them (lowerCamelCase, absent fields undefined). */
interface IssueMessage {
  residentRecordCode?: string;
  municipalityCode?: string;
}
interface ChangeMessage extends IssueMessage {
  reason?: string;
}
interface DesignateMessage {
  name?: string;
  location?: string;
  kind?: string;
  registryNumber?: string;
}
interface LookupMessage {
  corporateNumber?: string;
}
interface ChangeCorporateMessage extends LookupMessage {
  name?: string;
  location?: string;
  reason?: string;
  effectiveOn?: string;
}
interface CloseCorporateMessage extends LookupMessage {
  reason?: string;
  closedOn?: string;
}

/*
 * The same actors and the same operator check as the HTTP controllers, so that an idempotency key
 * (scoped `<actor>/<key>`) means the same request on both edges.
 */

function caller(actor: string, call: GrpcCall): Caller {
  return { actor, correlationId: call.correlationId, ...(call.idempotencyKey !== undefined ? { idempotencyKey: call.idempotencyKey } : {}) };
}

/** linkage_ledger.v1.Numbering: validates like the HTTP DTOs, then dispatches the HTTP edge's commands and queries. */
export function numberingService(commandBus: CommandBus, queryBus: QueryBus, auth: Authenticator, guard: RefusalGuard): UntypedServiceImplementation {
  return {
    IssueIndividualNumber: unary(recorded('IssueIndividualNumber', guard, async (m: IssueMessage, call) => {
      const body = validated(IssueIndividualNumberRequest, { residentRecordCode: m.residentRecordCode, municipalityCode: m.municipalityCode });
      const actor = await auth.numbering(credentialed(call), body.municipalityCode);
      const outcome = await commandBus.execute(new IssueIndividualNumberCommand(body.residentRecordCode, body.municipalityCode, caller(actor, call)));
      call.replayed = outcome.replayed;
      return toIssuedIndividualNumberResponse(outcome.value);
    })),

    ChangeIndividualNumber: unary(recorded('ChangeIndividualNumber', guard, async (m: ChangeMessage, call) => {
      const body = validated(ChangeIndividualNumberRequest, { residentRecordCode: m.residentRecordCode, municipalityCode: m.municipalityCode, reason: m.reason });
      const actor = await auth.numbering(credentialed(call), body.municipalityCode);
      const outcome = await commandBus.execute(new ChangeIndividualNumberCommand(body.residentRecordCode, body.municipalityCode, body.reason, caller(actor, call)));
      call.replayed = outcome.replayed;
      return toChangedIndividualNumberResponse(outcome.value);
    })),

    DesignateCorporateNumber: unary(recorded('DesignateCorporateNumber', guard, async (m: DesignateMessage, call) => {
      const body = validated(DesignateCorporateNumberRequest, { name: m.name, location: m.location, kind: m.kind, registryNumber: m.registryNumber });
      auth.operator(credentialed(call));
      const outcome = await commandBus.execute(
        new DesignateCorporateNumberCommand(body.name, body.location, body.kind, body.registryNumber, caller(DESIGNATING_OPERATOR, call)),
      );
      call.replayed = outcome.replayed;
      return toDesignatedCorporateNumberResponse(outcome.value);
    })),

    ChangeCorporateNumber: unary(recorded('ChangeCorporateNumber', guard, async (m: ChangeCorporateMessage, call) => {
      const params = validated(CorporateNumberParams, { number: m.corporateNumber }, { number: 'corporate_number' });
      const body = validated(ChangeCorporateNumberRequest, { name: m.name, location: m.location, reason: m.reason, effectiveOn: m.effectiveOn }, { effectiveOn: 'effective_on' });
      auth.operator(credentialed(call));
      const outcome = await commandBus.execute(
        new ChangeCorporateNumberCommand(params.number, body.name, body.location, body.reason, body.effectiveOn, caller(DESIGNATING_OPERATOR, call)),
      );
      call.replayed = outcome.replayed;
      return toChangedCorporateNumberResponse(outcome.value);
    })),

    CloseCorporateNumber: unary(recorded('CloseCorporateNumber', guard, async (m: CloseCorporateMessage, call) => {
      const params = validated(CorporateNumberParams, { number: m.corporateNumber }, { number: 'corporate_number' });
      const body = validated(CloseCorporateNumberRequest, { reason: m.reason, closedOn: m.closedOn }, { closedOn: 'closed_on' });
      auth.operator(credentialed(call));
      const outcome = await commandBus.execute(new CloseCorporateNumberCommand(params.number, body.reason, body.closedOn, caller(DESIGNATING_OPERATOR, call)));
      call.replayed = outcome.replayed;
      return toClosedCorporateNumberResponse(outcome.value);
    })),

    GetCorporateNumber: unary(limited('GetCorporateNumber', guard, async (m: LookupMessage) => {
      const params = validated(CorporateNumberParams, { number: m.corporateNumber }, { number: 'corporate_number' });
      return toCorporateNumberResponse(await queryBus.execute(new GetCorporateNumberQuery(params.number)));
    })),
  };
}
