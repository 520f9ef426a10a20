import { status } from '@grpc/grpc-js';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { corporateNumberCheckDigit, japanDay, localGovernmentCodeCheckDigit } from '#numbering';
import { NUMBERING_SERVICE } from '../src/grpc/proto-files.js';
import { expectGrpcProblem, startGrpcTestHub, type GrpcTestHub } from './support/grpc-client.js';
import { MURORAN, nextResidentRecordCode, unlistedMunicipality, expectNothingButRefusals } from './support/test-hub.js';

interface Issued {
  serial: string;
  individualNumber: string;
  issuedAt: string;
}

/** No checkpoint is signed during a test, so the log grows only by the requests' own events. */
const NO_CHECKPOINTS = { HUB_CHECKPOINT_EVERY_EVENTS: '1000000', HUB_CHECKPOINT_EVERY_MS: '86400000' };

let g: GrpcTestHub | undefined;
afterEach(async () => {
  await g?.dispose();
  g = undefined;
});

/** The Japan-time day of a designation: a change or closure may take effect from it to today. */
function designatedDay(r: { designatedAt: string }): string {
  return japanDay(r.designatedAt);
}

/** Muroran's code with its last digit replaced by a wrong check digit. */
function wrongCheckDigit(code: string): string {
  const right = localGovernmentCodeCheckDigit(code.slice(0, 5));
  return `${code.slice(0, 5)}${(right + 1) % 10}`;
}

describe('Numbering over gRPC', () => {
  it('issues an individual number into the same ledger the HTTP edge reads, echoing the caller\'s correlation id and storing the hub\'s', async () => {
    g = await startGrpcTestHub({ env: NO_CHECKPOINTS });
    const resident = nextResidentRecordCode();
    const { response, metadata } = await g.numbering.call<Issued>('IssueIndividualNumber', { residentRecordCode: resident, municipalityCode: MURORAN }, { 'x-correlation-id': 'grpc-issue-1' });
    expect(response.serial).toMatch(/^\d{8}01\d{10}$/);
    expect(response.individualNumber).toMatch(/^\d{12}$/);
    expect(metadata.get('x-correlation-id')).toEqual(['grpc-issue-1']);
    expect(metadata.get('idempotent-replayed')).toEqual([]);
    const page = (await g.hub.get('/v1/events?from=0&limit=100', g.hub.auditor)).json<{ events: { serial: string; type: string; metadata: Record<string, unknown> }[] }>();
    const event = page.events.find((e) => e.serial === response.serial);
    expect(event).toMatchObject({ type: 'IndividualNumberIssued', metadata: { actor: 'operator:hub', correlationId: metadata.get('x-request-id')[0] } });
    expect(JSON.stringify(page.events)).not.toContain('grpc-issue-1');
    // The resident is numbered for HTTP as well: a second issuance over HTTP is refused.
    const again = await g.hub.post('/v1/individual-numbers', { residentRecordCode: resident, municipalityCode: MURORAN }, g.hub.operator);
    expect(again.json()).toMatchObject({ code: 'RESIDENT_ALREADY_NUMBERED' });
  });

  it('answers a retry with the same idempotency key with the original outcome, across both edges', async () => {
    g = await startGrpcTestHub({ env: NO_CHECKPOINTS });
    const body = { residentRecordCode: nextResidentRecordCode(), municipalityCode: MURORAN };
    const http = await g.hub.post('/v1/individual-numbers', body, { ...g.hub.operator, 'idempotency-key': 'issue-42' });
    expect(http.statusCode).toBe(201);
    const head = await g.hub.head();
    const retry = await g.numbering.call<Issued>('IssueIndividualNumber', body, { 'idempotency-key': 'issue-42' });
    expect(retry.response).toEqual(http.json());
    expect(retry.metadata.get('idempotent-replayed')).toEqual(['true']);
    const twice = await g.numbering.call<Issued>('IssueIndividualNumber', body, { 'idempotency-key': 'issue-42' });
    expect(twice.response.serial).toBe(retry.response.serial);
    await expectNothingButRefusals(g.hub, head);

    // gRPC first, then HTTP: the same.
    const other = { residentRecordCode: nextResidentRecordCode(), municipalityCode: MURORAN };
    const first = await g.numbering.call<Issued>('IssueIndividualNumber', other, { 'idempotency-key': 'issue-43' });
    const httpRetry = await g.hub.post('/v1/individual-numbers', other, { ...g.hub.operator, 'idempotency-key': 'issue-43' });
    expect(httpRetry.json()).toEqual(first.response);
    expect(httpRetry.headers['idempotent-replayed']).toBe('true');

    // The same key with another request is refused: only its refusal event is appended (I6).
    const beforeReuse = await g.hub.head();
    const reused = await expectGrpcProblem(
      g.numbering.call('IssueIndividualNumber', { ...body, residentRecordCode: nextResidentRecordCode() }, { 'idempotency-key': 'issue-42' }),
      status.FAILED_PRECONDITION,
      'IDEMPOTENCY_KEY_REUSED',
    );
    expect(reused.problem['status']).toBe(409);
    expect(beforeReuse).toBe(head + 1);
    const [refusal] = await expectNothingButRefusals(g.hub, beforeReuse, 1);
    expect(refusal).toMatchObject({ type: 'RequestRefused', serial: reused.problem['serial'], data: { reason: 'IDEMPOTENCY_KEY_REUSED', callerKind: 'operator', command: 'IssueIndividualNumber' } });
  });

  it('takes numbering commands from the operator only: UNAUTHENTICATED without a token, PERMISSION_DENIED with another', async () => {
    g = await startGrpcTestHub({ env: NO_CHECKPOINTS });
    const anonymous = g.client(NUMBERING_SERVICE);
    const request = { residentRecordCode: nextResidentRecordCode(), municipalityCode: MURORAN };
    await expectGrpcProblem(anonymous.call('IssueIndividualNumber', request), status.UNAUTHENTICATED, 'UNAUTHENTICATED');
    await expectGrpcProblem(anonymous.call('IssueIndividualNumber', request, g.hub.auditor), status.PERMISSION_DENIED, 'FORBIDDEN');
    await expectGrpcProblem(anonymous.call('DesignateCorporateNumber', { name: '株式会社無権', location: '北海道室蘭市', kind: 'stock-company' }), status.UNAUTHENTICATED, 'UNAUTHENTICATED');
    await expectNothingButRefusals(g.hub, 0);
  });

  it('refuses a malformed request with INVALID_ARGUMENT naming each proto field, and appends nothing', async () => {
    g = await startGrpcTestHub({ env: NO_CHECKPOINTS });
    const head = await g.hub.head();
    const { problem, error } = await expectGrpcProblem(
      g.numbering.call('IssueIndividualNumber', { residentRecordCode: '1234', municipalityCode: wrongCheckDigit(MURORAN) }),
      status.INVALID_ARGUMENT,
      'VALIDATION_FAILED',
    );
    expect(problem['errors']).toEqual([
      { field: 'resident_record_code', message: expect.stringMatching(/11/) },
      { field: 'municipality_code', message: expect.stringMatching(/check digit is \d, expected \d/) },
    ]);
    expect(error.details).toBe('2 fields are not valid; see errors');
    // An absent field (proto3 sends no empty string) is named too.
    const missing = await expectGrpcProblem(g.numbering.call('ChangeIndividualNumber', { residentRecordCode: nextResidentRecordCode(), municipalityCode: MURORAN }), status.INVALID_ARGUMENT, 'VALIDATION_FAILED');
    expect(missing.problem['errors']).toEqual([{ field: 'reason', message: expect.stringContaining('leak') }]);
    await expectNothingButRefusals(g.hub, head);
  });

  it('maps the domain\'s refusals: unknown municipality, resident already numbered, resident not numbered', async () => {
    g = await startGrpcTestHub({ env: NO_CHECKPOINTS });
    const resident = nextResidentRecordCode();
    await expectGrpcProblem(g.numbering.call('IssueIndividualNumber', { residentRecordCode: resident, municipalityCode: unlistedMunicipality() }), status.INVALID_ARGUMENT, 'UNKNOWN_MUNICIPALITY');
    await expectGrpcProblem(
      g.numbering.call('ChangeIndividualNumber', { residentRecordCode: resident, municipalityCode: MURORAN, reason: 'leak' }),
      status.FAILED_PRECONDITION,
      'RESIDENT_NOT_NUMBERED',
    );
    const issued = await g.numbering.call<Issued>('IssueIndividualNumber', { residentRecordCode: resident, municipalityCode: MURORAN });
    const { problem } = await expectGrpcProblem(
      g.numbering.call('IssueIndividualNumber', { residentRecordCode: resident, municipalityCode: MURORAN }),
      status.ALREADY_EXISTS,
      'RESIDENT_ALREADY_NUMBERED',
    );
    expect(JSON.stringify(problem)).not.toContain(issued.response.individualNumber);
    const changed = await g.numbering.call<{ serial: string; individualNumber: string; previousNumberRevoked: boolean }>('ChangeIndividualNumber', {
      residentRecordCode: resident,
      municipalityCode: MURORAN,
      reason: 'leak',
    });
    expect(changed.response.previousNumberRevoked).toBe(true);
    expect(changed.response.individualNumber).not.toBe(issued.response.individualNumber);
  });

  it('designates and looks up corporate numbers consistently with HTTP; an unknown one is NOT_FOUND, a wrong check digit INVALID_ARGUMENT', async () => {
    g = await startGrpcTestHub({ env: NO_CHECKPOINTS });
    const designated = await g.numbering.call<{ corporateNumber: string; serial: string; designatedAt: string }>('DesignateCorporateNumber', {
      name: '株式会社室蘭製作所',
      location: '北海道室蘭市幸町1番2号',
      kind: 'stock-company',
      registryNumber: '430001012345',
    });
    const number = designated.response.corporateNumber;
    expect(number).toBe(`${corporateNumberCheckDigit('430001012345')}430001012345`);
    const viaGrpc = await g.numbering.call('GetCorporateNumber', { corporateNumber: number });
    // HTTP answers null for the closure of an active corporation; gRPC leaves those optional fields out.
    const { closedOn, closedAt, closeReason, ...overHttp } = (await g.hub.get(`/v1/corporate-numbers/${number}`)).json<Record<string, unknown>>();
    expect([closedOn, closedAt, closeReason]).toEqual([null, null, null]);
    expect(viaGrpc.response).toMatchObject({ ...overHttp, status: 'active', history: [] });
    expect(viaGrpc.response['closedOn'] ?? null).toBeNull();

    // A change and a closure over gRPC: the same commands, the same record over both edges.
    const changed = await g.numbering.call('ChangeCorporateNumber', { corporateNumber: number, name: '株式会社むろらん', reason: '商号変更', effectiveOn: designatedDay(designated.response) });
    expect(changed.response).toMatchObject({ corporateNumber: number, name: '株式会社むろらん', location: '北海道室蘭市幸町1番2号', changed: ['name'] });
    const closed = await g.numbering.call('CloseCorporateNumber', { corporateNumber: number, reason: '清算の結了', closedOn: designatedDay(designated.response) });
    expect(closed.response).toMatchObject({ corporateNumber: number, closedOn: designatedDay(designated.response) });
    const after = (await g.numbering.call('GetCorporateNumber', { corporateNumber: number })).response;
    const httpAfter = (await g.hub.get(`/v1/corporate-numbers/${number}`)).json<Record<string, unknown>>();
    expect(after).toMatchObject({ ...httpAfter, history: [{ name: { previous: '株式会社室蘭製作所', current: '株式会社むろらん' }, reason: '商号変更' }] });
    expect(httpAfter).toMatchObject({ status: 'closed', closeReason: '清算の結了' });
    await expectGrpcProblem(
      g.numbering.call('CloseCorporateNumber', { corporateNumber: number, reason: '清算の結了', closedOn: designatedDay(designated.response) }),
      status.FAILED_PRECONDITION,
      'CORPORATE_NUMBER_CLOSED',
    );
    const invalid = await expectGrpcProblem(g.numbering.call('ChangeCorporateNumber', { corporateNumber: number, reason: '', effectiveOn: 'x' }), status.INVALID_ARGUMENT, 'VALIDATION_FAILED');
    expect((invalid.problem['errors'] as { field: string }[]).map((e) => e.field).sort()).toEqual(['effective_on', 'reason']);
    await expectGrpcProblem(
      g.numbering.call('DesignateCorporateNumber', { name: '株式会社別名', location: '北海道室蘭市', kind: 'stock-company', registryNumber: '430001012345' }),
      status.ALREADY_EXISTS,
      'CORPORATE_NUMBER_ALREADY_DESIGNATED',
    );

    const unknownBase = '430001099999';
    await expectGrpcProblem(g.numbering.call('GetCorporateNumber', { corporateNumber: `${corporateNumberCheckDigit(unknownBase)}${unknownBase}` }), status.NOT_FOUND, 'CORPORATE_NUMBER_NOT_FOUND');
    const wrong = `${(corporateNumberCheckDigit(unknownBase) + 1) % 10}${unknownBase}`;
    const { problem } = await expectGrpcProblem(g.numbering.call('GetCorporateNumber', { corporateNumber: wrong }), status.INVALID_ARGUMENT, 'CHECK_DIGIT_MISMATCH');
    expect(problem).toMatchObject({ expected: corporateNumberCheckDigit(unknownBase), actual: (corporateNumberCheckDigit(unknownBase) + 1) % 10, status: 422 });
    const malformed = await expectGrpcProblem(g.numbering.call('GetCorporateNumber', { corporateNumber: '12' }), status.INVALID_ARGUMENT, 'VALIDATION_FAILED');
    expect(malformed.problem['errors']).toEqual([{ field: 'corporate_number', message: 'must be 13 ASCII digits (0-9)' }]);
  });

  it('refuses malformed metadata and messages above the size limit', async () => {
    g = await startGrpcTestHub({ maxMessageBytes: 1024, env: NO_CHECKPOINTS });
    const head = await g.hub.head();
    const body = { residentRecordCode: nextResidentRecordCode(), municipalityCode: MURORAN };
    const { problem } = await expectGrpcProblem(g.numbering.call('IssueIndividualNumber', body, { 'idempotency-key': 'k'.repeat(201) }), status.INVALID_ARGUMENT, 'VALIDATION_FAILED');
    expect(problem['errors']).toEqual([{ field: 'idempotency-key', message: expect.any(String) }]);
    await expectGrpcProblem(g.numbering.call('IssueIndividualNumber', body, { authorization: 'Basic dXNlcg==' }), status.INVALID_ARGUMENT, 'VALIDATION_FAILED');
    const big = g.numbering.call('DesignateCorporateNumber', { name: 'x'.repeat(2000), location: 'y', kind: 'other' });
    await expect(big).rejects.toMatchObject({ code: status.RESOURCE_EXHAUSTED });
    await expectNothingButRefusals(g.hub, head);
  });
});

describe('unforeseen errors and the server\'s life cycle', () => {
  it('answers an unforeseen error as INTERNAL with the correlation id, and logs it with its cause', async () => {
    g = await startGrpcTestHub({ env: NO_CHECKPOINTS });
    vi.spyOn(g.hub.store, 'readStream').mockRejectedValue(new Error('disk I/O error in /srv/hub/ledger.sqlite'));
    const { error } = await expectGrpcProblem(
      g.numbering.call('IssueIndividualNumber', { residentRecordCode: nextResidentRecordCode(), municipalityCode: MURORAN }, { 'x-correlation-id': 'corr-unforeseen' }),
      status.INTERNAL,
      'INTERNAL',
    );
    const id = String(error.metadata.get('x-request-id')[0]);
    expect(error.metadata.get('x-correlation-id')).toEqual(['corr-unforeseen']);
    expect(error.details).toBe(`an internal error occurred; quote correlation id ${id} when reporting it`);
    expect(JSON.stringify(error.metadata.getMap())).not.toContain('/srv/hub');
    const logged = g.hub.logger.lines.filter((l) => l.level === 'error').map((l) => l.message);
    expect(logged).toEqual([expect.stringMatching(new RegExp(`^\\[${id}\\] /linkage_ledger\\.v1\\.Numbering/IssueIndividualNumber: Error: disk I/O error in /srv/hub`))]);
  });

  it('refuses calls once stopped', async () => {
    g = await startGrpcTestHub({ env: NO_CHECKPOINTS });
    expect((await g.health.call('Check', {})).response).toEqual({ status: 'SERVING' });
    await g.server.stop();
    await expect(g.health.call('Check', {})).rejects.toMatchObject({ code: status.UNAVAILABLE });
  });
});

describe('grpc.health.v1 at the hub', () => {
  it('is SERVING once the ledger is open, for the server and each service; an unknown service is NOT_FOUND', async () => {
    g = await startGrpcTestHub({ env: NO_CHECKPOINTS });
    expect((await g.health.call('Check', {})).response).toEqual({ status: 'SERVING' });
    expect((await g.health.call('Check', { service: 'linkage_ledger.v1.Numbering' })).response).toEqual({ status: 'SERVING' });
    await expectGrpcProblem(g.health.call('Check', { service: 'linkage_ledger.v1.Nope' }), status.NOT_FOUND, 'NOT_FOUND');
  });
});
