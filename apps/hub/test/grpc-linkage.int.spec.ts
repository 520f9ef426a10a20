import { status as GrpcStatus } from '@grpc/grpc-js';
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateAnswerKeyPair, openAnswer } from '#sealed-answer';
import { LINKAGE_SERVICE, NUMBERING_SERVICE } from '../src/grpc/proto-files.js';
import { Refusals } from '../src/refusals/refusals.service.js';
import { MURORAN, SAPPORO } from './support/test-hub.js';
import { expectGrpcProblem, startGrpcTestHub, type GrpcServiceClient, type GrpcTestHub } from './support/grpc-client.js';
import { FakeProvider, MURORAN_CITY, PENSION, acquire, dropMapperKeys, issuePerson, operatorToken, registerAgency, type Agency } from './support/linkage-fixture.js';

const LOCAL_TAX = { 'local-tax': { fiscalYear: 2026, taxableIncome: 2_400_000 } };

const prefix = `llg-${process.pid}-${randomBytes(4).toString('hex')}`;
let g: GrpcTestHub;
let linkage: GrpcServiceClient;
const provider = new FakeProvider();
let pension: Agency;
let codeA: string;
let individualNumber: string;
let citizenSecret: string;

beforeAll(async () => {
  g = await startGrpcTestHub({
    env: { HUB_AUTHORIZATION_TABLE_FILE: '', HUB_REDIS_URL: 'redis://127.0.0.1:6379', HUB_REDIS_PREFIX: prefix, HUB_PROVIDER_TIMEOUT_MS: '1500', HUB_UNIDENTIFIED_REFUSALS_INTERVAL_MS: '3600000', HUB_UNIDENTIFIED_REFUSALS_PER_SOURCE: '3' },
  });
  linkage = g.client(LINKAGE_SERVICE);
  await provider.start(g.hub);
  pension = await registerAgency(g.hub, PENSION, 'pension-service', 'http://127.0.0.1:9');
  const muroran = await registerAgency(g.hub, MURORAN_CITY, 'municipality', provider.endpoint);
  const person = await issuePerson(g.hub);
  individualNumber = person.individualNumber;
  citizenSecret = person.citizenSecret;
  const codeB = await acquire(g.hub, muroran, individualNumber);
  provider.behaviours.set(codeB, { answer: LOCAL_TAX });
});

afterAll(async () => {
  await provider.stop();
  await g?.dispose();
  await dropMapperKeys(prefix);
});

const auth = (token: string) => ({ authorization: `Bearer ${token}` });

describe('Linkage over gRPC: the same commands as HTTP', () => {
  it('acquires the agency code, and the same code again', async () => {
    const { response } = await linkage.call<{ code: string; serial: string; reacquired: boolean }>('AcquireAgencyCode', { individualNumber, acquisitionNumber: 'G-1' }, auth(pension.token));
    expect(response).toMatchObject({ code: expect.stringMatching(/^[A-Za-z0-9_-]{22}$/), reacquired: false });
    codeA = response.code;
    const again = await linkage.call<{ code: string; reacquired: boolean }>('AcquireAgencyCode', { individualNumber, acquisitionNumber: 'G-2' }, auth(pension.token));
    expect(again.response).toMatchObject({ code: codeA, reacquired: true });
    await expectGrpcProblem(linkage.call('AcquireAgencyCode', { individualNumber, acquisitionNumber: 'G-3' }), GrpcStatus.UNAUTHENTICATED, 'UNAUTHENTICATED');
  });

  it('counts calls without a credential per host (not per connection) and answers RESOURCE_EXHAUSTED past the allowance (3 here)', async () => {
    const refusals = g.hub.app.get(Refusals);
    await refusals.flush();
    const request = { code: codeA, providerAgencyId: MURORAN_CITY, procedureCode: 'pension-award-claim', itemCodes: ['local-tax'] };
    for (let i = 0; i < 3; i++) await expectGrpcProblem(linkage.call('Query', request, auth('an-unknown-token-of-nobody-000')), GrpcStatus.UNAUTHENTICATED, 'UNAUTHENTICATED');
    await expectGrpcProblem(linkage.call('Query', request, auth('an-unknown-token-of-nobody-000')), GrpcStatus.RESOURCE_EXHAUSTED, 'TOO_MANY_UNAUTHENTICATED_REQUESTS');
    // A credentialed caller from the same host is heard.
    await expectGrpcProblem(linkage.call('Query', { ...request, itemCodes: ['livelihood-protection'] }, auth(pension.token)), GrpcStatus.PERMISSION_DENIED, 'ITEM_NOT_ALLOWED');
    const before = await g.hub.head();
    await refusals.flush();
    const recorded = (await g.hub.store.readAll({ fromPosition: before })).filter((e) => e.type === 'UnauthenticatedRequestsRecorded');
    expect(recorded).toHaveLength(1);
    const [opened] = await g.hub.ledger.readSerial(recorded[0]!.serial);
    expect(opened!.data).toMatchObject({ source: '127.0.0.1', count: 4, reasons: { UNAUTHENTICATED: 3, TOO_MANY_UNAUTHENTICATED_REQUESTS: 1 }, commands: { SubmitQuery: 4 } });
  });

  it('queries with an encrypted answer relayed as bytes, under one serial', async () => {
    const keys = await generateAnswerKeyPair();
    const { response } = await linkage.call<{ serial: string; outcome: string; answer: { data: Buffer; encrypted: boolean; digest: string } }>(
      'Query',
      { code: codeA, providerAgencyId: MURORAN_CITY, procedureCode: 'pension-award-claim', itemCodes: ['local-tax'], answerPublicKey: keys.publicKey },
      auth(pension.token),
    );
    expect(response).toMatchObject({ outcome: 'answered', answer: { encrypted: true } });
    const plain = JSON.parse(Buffer.from(await openAnswer(response.answer.data, keys.privateKey, response.serial)).toString('utf8'));
    expect(plain).toEqual({ items: LOCAL_TAX });
    const events = await g.hub.store.readSerial(response.serial as never);
    expect(events.map((e) => e.type)).toEqual(['QueryAccepted', 'ProvisionRequested', 'ProvisionAnswered', 'QueryCompleted']);
  });

  it('answers a denial with PERMISSION_DENIED, the reason as problem code and the serial recorded', async () => {
    const { problem } = await expectGrpcProblem(
      linkage.call('Query', { code: codeA, providerAgencyId: MURORAN_CITY, procedureCode: 'pension-award-claim', itemCodes: ['livelihood-protection'] }, auth(pension.token)),
      GrpcStatus.PERMISSION_DENIED,
      'ITEM_NOT_ALLOWED',
    );
    const events = await g.hub.store.readSerial(String(problem['serial']) as never);
    expect(events[0]).toMatchObject({ type: 'QueryDenied', data: { reason: 'ITEM_NOT_ALLOWED' } });
    // Refusals over gRPC are events as over HTTP (I6): the agency the token proves, the named one apart.
    const invalid = await expectGrpcProblem(
      linkage.call('Query', { code: 'short', providerAgencyId: MURORAN_CITY, procedureCode: 'pension-award-claim', itemCodes: ['local-tax'] }, auth(pension.token)),
      GrpcStatus.INVALID_ARGUMENT,
      'VALIDATION_FAILED',
    );
    expect(await g.hub.store.readSerial(String(invalid.problem['serial']) as never)).toEqual([
      expect.objectContaining({ type: 'RequestRefused', data: expect.objectContaining({ command: 'SubmitQuery', reason: 'VALIDATION_FAILED', agencyId: PENSION, fields: ['code'] }) }),
    ]);
    const mismatch = await expectGrpcProblem(
      linkage.call('Query', { code: codeA, providerAgencyId: MURORAN_CITY, procedureCode: 'pension-award-claim', itemCodes: ['local-tax'], requesterAgencyId: MURORAN_CITY }, auth(pension.token)),
      GrpcStatus.PERMISSION_DENIED,
      'CREDENTIAL_MISMATCH',
    );
    expect(await g.hub.store.readSerial(String(mismatch.problem['serial']) as never)).toEqual([
      expect.objectContaining({ type: 'RequestRefused', data: expect.objectContaining({ reason: 'CREDENTIAL_MISMATCH', agencyId: PENSION, claimedAgencyId: MURORAN_CITY }) }),
    ]);
  });

  it('runs a bulk query, each person with their own serial', async () => {
    const other = await issuePerson(g.hub);
    const a2 = await acquire(g.hub, pension, other.individualNumber);
    const { response } = await linkage.call<{ batchId: string; results: { index: number; outcome: string; reason?: string; serial: string }[] }>(
      'BulkQuery',
      { codes: [codeA, a2], providerAgencyId: MURORAN_CITY, procedureCode: 'pension-award-claim', itemCodes: ['local-tax'] },
      auth(pension.token),
    );
    expect(response.results.map((r) => [r.index, r.outcome])).toEqual([
      [0, 'answered'],
      [1, 'denied'],
    ]);
    expect(response.results[1]!.reason).toBe('NO_CODE_AT_PROVIDER');
  });

  it('registers an agency with the operator token only', async () => {
    const keys = await generateAnswerKeyPair();
    const request = { agencyId: 'sapporo-city', name: '札幌市', kind: 'municipality', endpoint: 'http://127.0.0.1:9', publicKey: keys.publicKey, municipalityCode: SAPPORO };
    await expectGrpcProblem(linkage.call('RegisterAgency', request, auth(pension.token)), GrpcStatus.PERMISSION_DENIED, 'FORBIDDEN');
    const { response } = await linkage.call<{ agencyId: string; token: string }>('RegisterAgency', request, auth(operatorToken(g.hub)));
    expect(response).toMatchObject({ agencyId: 'sapporo-city', token: expect.stringMatching(/^[A-Za-z0-9_-]{43}$/) });
    // Registered with its municipality code, Sapporo numbers its own residents over gRPC, and only them.
    const numbering = g.client(NUMBERING_SERVICE);
    const issued = await numbering.call<{ serial: string }>('IssueIndividualNumber', { residentRecordCode: '42000000001', municipalityCode: SAPPORO }, auth(response.token));
    expect((await g.hub.store.readSerial(issued.response.serial as never))[0]).toMatchObject({ metadata: { actor: 'agency:sapporo-city' } });
    await expectGrpcProblem(numbering.call('IssueIndividualNumber', { residentRecordCode: '42000000002', municipalityCode: MURORAN }, auth(response.token)), GrpcStatus.PERMISSION_DENIED, 'FORBIDDEN');
  });

  it('sends a notice addressed by the agency\'s code; the person reads it over HTTP; a foreign code is NOT_FOUND', async () => {
    const { response } = await linkage.call<{ noticeId: string; serial: string; sentAt: string }>('SendNotice', { code: codeA, title: 'ねんきん定期便', body: '見込額のお知らせ' }, auth(pension.token));
    expect(response).toEqual({ noticeId: expect.stringMatching(/^[0-9a-f-]{36}$/), serial: expect.stringMatching(/^\d{20}$/), sentAt: expect.any(String) });
    const inbox = await g.hub.get('/v1/citizens/me/notices', auth(citizenSecret));
    expect(inbox.json<{ notices: { noticeId: string; title: string; body: string }[] }>().notices).toEqual([expect.objectContaining({ noticeId: response.noticeId, title: 'ねんきん定期便', body: '見込額のお知らせ' })]);
    await expectGrpcProblem(linkage.call('SendNotice', { code: 'A'.repeat(21) + 'w', title: 't', body: 'b' }, auth(pension.token)), GrpcStatus.NOT_FOUND, 'UNKNOWN_CODE');
    await expectGrpcProblem(linkage.call('SendNotice', { code: codeA, title: '', body: 'b' }, auth(pension.token)), GrpcStatus.INVALID_ARGUMENT, 'VALIDATION_FAILED');
  });
});
