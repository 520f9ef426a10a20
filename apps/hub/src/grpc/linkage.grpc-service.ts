import type { UntypedServiceImplementation } from '@grpc/grpc-js';
import type { CommandBus } from '@nestjs/cqrs';
import { RegisterAgencyRequest } from '../linkage/agencies/agency.dto.js';
import { ChangeAgencyRegistryCommand } from '../linkage/agencies/agency-registry.commands.js';
import type { Authenticator } from '../linkage/authenticator.js';
import { AcquireAgencyCodeCommand, AcquireAgencyCodeRequest } from '../linkage/codes/agency-codes.js';
import type { QueryAnswer, QueryResult } from '../linkage/queries/query-outcome.js';
import type { QueryEdge } from '../linkage/queries/query-edge.js';
import { SubmitBulkQueryRequest, SubmitQueryRequest } from '../linkage/queries/query.dto.js';
import { SendNoticeRequest } from '../notices/notices.dto.js';
import { SendNoticeCommand } from '../notices/send-notice.handler.js';
import { ChangeAgencyCertificatesCommand } from '../tls/agency-certificates.js';
import type { HubTls } from '../tls/hub-tls.js';
import { credentialed, recorded, unary, validated, type GrpcCall, type RefusalGuard } from './grpc-call.js';

interface QueryMessage {
  code?: string;
  codes?: string[];
  providerAgencyId?: string;
  procedureCode?: string;
  itemCodes?: string[];
  answerPublicKey?: string;
  tableVersion?: number;
  requesterAgencyId?: string;
}

function meta(call: GrpcCall) {
  return { correlationId: call.correlationId, ...(call.idempotencyKey === undefined ? {} : { idempotencyKey: call.idempotencyKey }) };
}

function answer(a: QueryAnswer | undefined) {
  if (a === undefined) return undefined;
  return { ...(a.data === undefined ? {} : { data: Buffer.from(a.data, 'base64url') }), encrypted: a.encrypted, digest: a.digest, size: a.size };
}

function result(r: QueryResult) {
  return {
    serial: r.serial,
    queryId: r.queryId,
    outcome: r.outcome,
    ...(r.tableVersion === undefined ? {} : { tableVersion: r.tableVersion }),
    ...(r.answer === undefined ? {} : { answer: answer(r.answer) }),
    ...(r.reason === undefined ? {} : { reason: r.reason }),
    ...(r.batch === undefined ? {} : { index: r.batch.index }),
  };
}

function queryFields(m: QueryMessage): Record<string, unknown> {
  return {
    providerAgencyId: m.providerAgencyId,
    procedureCode: m.procedureCode,
    itemCodes: m.itemCodes,
    ...(m.answerPublicKey === undefined ? {} : { answerPublicKey: m.answerPublicKey }),
    ...(m.tableVersion === undefined ? {} : { tableVersion: m.tableVersion }),
    ...(m.requesterAgencyId === undefined ? {} : { requesterAgencyId: m.requesterAgencyId }),
  };
}

const RENAMED = {
  providerAgencyId: 'provider_agency_id',
  procedureCode: 'procedure_code',
  itemCodes: 'item_codes',
  answerPublicKey: 'answer_public_key',
  tableVersion: 'table_version',
  requesterAgencyId: 'requester_agency_id',
  individualNumber: 'individual_number',
  acquisitionNumber: 'acquisition_number',
  agencyId: 'agency_id',
  publicKey: 'public_key',
  municipalityCode: 'municipality_code',
};

/**
 * linkage_ledger.v1.Linkage: the HTTP edge's DTOs, authentication and commands, over gRPC. With `tls`
 * (HubTls), RegisterAgency checks its csr and issues the certificate as POST /v1/agencies does.
 */
export function linkageService(commandBus: CommandBus, auth: Authenticator, queries: QueryEdge, guard: RefusalGuard, tls?: HubTls): UntypedServiceImplementation {
  return {
    AcquireAgencyCode: unary(recorded('AcquireAgencyCode', guard, async (m: { individualNumber?: string; acquisitionNumber?: string }, call) => {
      const body = validated(AcquireAgencyCodeRequest, { individualNumber: m.individualNumber, acquisitionNumber: m.acquisitionNumber }, RENAMED);
      const agency = await auth.agency(credentialed(call));
      const outcome = await commandBus.execute(new AcquireAgencyCodeCommand(agency.agencyId, body.individualNumber, body.acquisitionNumber, { actor: `agency:${agency.agencyId}`, ...meta(call) }));
      call.replayed = outcome.replayed;
      return { code: outcome.code, serial: outcome.serial, acquiredAt: outcome.acquiredAt, reacquired: outcome.reacquired };
    })),

    Query: unary(recorded('SubmitQuery', guard, async (m: QueryMessage, call) => {
      const body = validated(SubmitQueryRequest, { code: m.code, ...queryFields(m) }, RENAMED);
      const r = await queries.one(credentialed(call), body, meta(call));
      call.replayed = r.replayed;
      return result(r);
    })),

    BulkQuery: unary(recorded('SubmitBulkQuery', guard, async (m: QueryMessage, call) => {
      const body = validated(SubmitBulkQueryRequest, { codes: m.codes, ...queryFields(m) }, RENAMED);
      const results = await queries.bulk(credentialed(call), body, meta(call));
      call.replayed = results.every((r) => r.replayed);
      return { batchId: results[0]?.batch?.batchId ?? '', results: results.map(result) };
    })),

    SendNotice: unary(recorded('SendNotice', guard, async (m: { code?: string; title?: string; body?: string }, call) => {
      const body = validated(SendNoticeRequest, { code: m.code, title: m.title, body: m.body }, RENAMED);
      const agency = await auth.agency(credentialed(call));
      const outcome = await commandBus.execute(new SendNoticeCommand(agency.agencyId, body.code, body.title, body.body, { actor: `agency:${agency.agencyId}`, ...meta(call) }));
      call.replayed = outcome.replayed;
      return outcome.value;
    })),

    RegisterAgency: unary(recorded('RegisterAgency', guard, async (m: { agencyId?: string; name?: string; kind?: string; endpoint?: string; publicKey?: string; municipalityCode?: string; csr?: string }, call) => {
      const fields = { agencyId: m.agencyId, name: m.name, kind: m.kind, endpoint: m.endpoint, publicKey: m.publicKey, ...(m.csr ? { csr: m.csr } : {}) };
      const body = validated(RegisterAgencyRequest, m.municipalityCode ? { ...fields, municipalityCode: m.municipalityCode } : fields, RENAMED);
      auth.operator(credentialed(call));
      // Before the registration is recorded, as over HTTP: a refused CSR (or none under HUB_TLS_REQUIRE_CSR=on) registers nothing.
      const csr = tls === undefined ? undefined : await tls.csrOf(body.csr);
      const outcome = await commandBus.execute(
        new ChangeAgencyRegistryCommand(body.agencyId, { type: 'register', name: body.name, kind: body.kind, endpoint: body.endpoint, publicKey: body.publicKey, ...(body.municipalityCode === undefined ? {} : { municipalityCode: body.municipalityCode }) }, { actor: 'operator:hub', ...meta(call) }),
      );
      const registered = { agencyId: outcome.agencyId, serial: outcome.serial, token: outcome.token! };
      const ca = tls?.ca;
      if (ca === undefined) return registered;
      const { issued } = await commandBus.execute(new ChangeAgencyCertificatesCommand(body.agencyId, { type: 'issue', occasion: 'registration', ...(csr === undefined ? {} : { csr }) }, { actor: 'operator:hub', ...meta(call) }));
      if (issued === undefined) throw new Error('a certificate was expected');
      const { fingerprint, serialNumber, notBefore, notAfter, certificatePem, privateKeyPem } = issued;
      return {
        ...registered,
        certificate: { fingerprint, serialNumber, notBefore, notAfter, certificatePem, ...(privateKeyPem === undefined ? {} : { privateKeyPem }), keyOrigin: privateKeyPem === undefined ? 'agency' : 'hub', caCertificatePem: ca.caCertificatePem },
      };
    })),
  };
}
