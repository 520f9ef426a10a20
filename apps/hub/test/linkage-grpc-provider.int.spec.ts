import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openAnswer } from '#sealed-answer';
import { startProvisionGrpcServer } from '../../agency-node/src/provider/provision-grpc.js';
import { demoCopies, startTestNode, type TestNode } from '../../agency-node/test/support/agency-fixture.js';
import { FakeProvider, MURORAN_CITY, PENSION, acquire, bearer, issuePerson, registerAgency, startLinkageHub, type Agency } from './support/linkage-fixture.js';
import { expectProblem } from './support/problem-assertions.js';
import type { TestHub } from './support/test-hub.js';

// Providers registered with a grpc:// endpoint: the hub calls them over gRPC
// (schemas/proto/linkage_ledger/v1/intermediate_server.proto) with the same signed document as over HTTP.
const PROCEDURE = 'pension-award-claim';
const NOBORIBETSU = 'noboribetsu-city';
const LOCAL_TAX = { 'local-tax': { fiscalYear: 2026, taxableIncome: 3_120_000, municipalTax: 187_200 } };

let hub: TestHub;
let node: TestNode;
let nodeGrpc: { port: number; close(): Promise<void> };
const fake = new FakeProvider();
let pension: Agency;
let muroran: Agency;
let noboribetsu: Agency;

async function query(body: Record<string, unknown>) {
  return hub.post('/v1/queries', { providerAgencyId: MURORAN_CITY, procedureCode: PROCEDURE, itemCodes: ['local-tax'], ...body }, bearer(pension.token));
}

beforeAll(async () => {
  hub = await startLinkageHub();
  // Muroran: the real intermediate server, its provision endpoint over gRPC only (its HTTP server is not listening).
  const hubKey = (await hub.get('/v1/hub/keys')).json<{ provisionSigningKey: string }>().provisionSigningKey;
  node = await startTestNode({ agencyId: MURORAN_CITY, signer: { publicKey: hubKey, sign: () => '' } });
  node.runtime.store.loadCopies(demoCopies(MURORAN_CITY), new Date());
  nodeGrpc = await startProvisionGrpcServer(node.runtime.provisions, { host: '127.0.0.1', port: 0, maxMessageBytes: 4 * 1024 * 1024 });
  // Noboribetsu: a stand-in provider over gRPC, for the ways a provider can fail.
  await fake.start(hub);
  await fake.startGrpc();
  pension = await registerAgency(hub, PENSION, 'pension-service', 'http://127.0.0.1:9');
  muroran = await registerAgency(hub, MURORAN_CITY, 'municipality', `grpc://127.0.0.1:${nodeGrpc.port}`);
  noboribetsu = await registerAgency(hub, NOBORIBETSU, 'municipality', fake.grpcEndpoint);
});

afterAll(async () => {
  await nodeGrpc?.close();
  await node?.close();
  await fake.stop();
  await hub?.dispose();
});

describe('a provider over gRPC', () => {
  it('the real intermediate server answers the seeds/001 query over gRPC, sealed to the requester, and records the provision', async () => {
    const person = await issuePerson(hub);
    const codeA = await acquire(hub, pension, person.individualNumber);
    // Muroran's own code for the person, kept by its node on the resident's local id (as its staff would).
    const codeB = await acquire(hub, muroran, person.individualNumber);
    node.runtime.store.setAgencyCode('M-000123', codeB, new Date().toISOString());

    const res = await query({ code: codeA, answerPublicKey: pension.keys.publicKey });
    expect(res.statusCode, res.body).toBe(200);
    const body = res.json<{ serial: string; outcome: string; answer: { data: string; encrypted: boolean } }>();
    expect(body).toMatchObject({ outcome: 'answered', answer: { encrypted: true } });
    const plain = JSON.parse(Buffer.from(await openAnswer(Buffer.from(body.answer.data, 'base64url'), pension.keys.privateKey, body.serial)).toString('utf8'));
    expect(plain).toEqual({ items: { 'local-tax': demoCopies(MURORAN_CITY)[0]!.items['local-tax'] } });
    expect(node.runtime.store.recordFor('provided', body.serial)).toMatchObject({ role: 'provided', counterpartAgencyId: PENSION, procedureCode: PROCEDURE });
    expect((await hub.store.readSerial(body.serial as never)).map((e) => e.type)).toEqual(['QueryAccepted', 'ProvisionRequested', 'ProvisionAnswered', 'QueryCompleted']);
  });

  it('sends the signed document, gets refusals and batch answers over gRPC (one ProvideBatch call per bulk query)', async () => {
    const person = await issuePerson(hub);
    const a = await acquire(hub, pension, person.individualNumber);
    const b = await acquire(hub, noboribetsu, person.individualNumber);
    fake.behaviours.set(b, { answer: LOCAL_TAX });
    const answered = await query({ code: a, providerAgencyId: NOBORIBETSU });
    expect(answered.json()).toMatchObject({ outcome: 'answered', answer: { encrypted: false } });
    const call = fake.calls.at(-1)!;
    // Signed, naming the key that signed (hub_signature_key), as over HTTP.
    expect(call).toMatchObject({ path: '/v1/provisions', signatureValid: true, keyId: (await hub.get('/v1/hub/keys')).json<{ provisionSigningKeyId: string }>().provisionSigningKeyId, body: { code: b, serial: answered.json<{ serial: string }>().serial } });

    const other = await issuePerson(hub);
    const a2 = await acquire(hub, pension, other.individualNumber);
    await acquire(hub, noboribetsu, other.individualNumber);
    expect((await query({ code: a2, providerAgencyId: NOBORIBETSU })).json()).toMatchObject({ outcome: 'refused-by-provider', reason: 'NO_RECORD' });

    const before = fake.calls.length;
    const bulk = await hub.post('/v1/queries/bulk', { codes: [a, a2], providerAgencyId: NOBORIBETSU, procedureCode: PROCEDURE, itemCodes: ['local-tax'] }, bearer(pension.token));
    expect(bulk.statusCode, bulk.body).toBe(200);
    expect(bulk.json<{ results: { outcome: string }[] }>().results.map((r) => r.outcome)).toEqual(['answered', 'refused-by-provider']);
    expect(fake.calls.slice(before).map((c) => [c.path, c.signatureValid])).toEqual([['/v1/provisions/batch', true]]);
  });

  it('ends the serial in QueryFailed when the provider cannot be reached, does not answer in time, breaks the protocol or answers too much', async () => {
    const person = await issuePerson(hub);
    const a = await acquire(hub, pension, person.individualNumber);
    const b = await acquire(hub, noboribetsu, person.individualNumber);
    const down = await registerAgency(hub, 'date-city', 'municipality', 'grpc://127.0.0.1:9');
    await acquire(hub, down, person.individualNumber);
    const unreachable = expectProblem(await query({ code: a, providerAgencyId: 'date-city' }), 502, 'PROVIDER_UNREACHABLE');
    expect((await hub.store.readSerial(String(unreachable['serial']) as never)).at(-1)).toMatchObject({ type: 'QueryFailed', data: { reason: 'PROVIDER_UNREACHABLE' } });

    fake.behaviours.set(b, { hang: true });
    expectProblem(await query({ code: a, providerAgencyId: NOBORIBETSU }), 504, 'PROVIDER_TIMEOUT');
    fake.behaviours.set(b, { garbage: true });
    expectProblem(await query({ code: a, providerAgencyId: NOBORIBETSU }), 502, 'PROVIDER_PROTOCOL_ERROR');
    fake.behaviours.set(b, { status: 500 });
    const broken = expectProblem(await query({ code: a, providerAgencyId: NOBORIBETSU }), 502, 'PROVIDER_PROTOCOL_ERROR');
    expect((await hub.store.readSerial(String(broken['serial']) as never)).at(-1)).toMatchObject({ type: 'QueryFailed', data: { reason: 'PROVIDER_PROTOCOL_ERROR' } });
    fake.behaviours.set(b, { answer: { 'local-tax': 'x'.repeat(1_100_000) } });
    expectProblem(await query({ code: a, providerAgencyId: NOBORIBETSU }), 502, 'ANSWER_TOO_LARGE');
    expect(await hub.store.openSerials()).toEqual([]);
  });
});

