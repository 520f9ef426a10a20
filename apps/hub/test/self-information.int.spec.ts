import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateAnswerKeyPair, openAnswer } from '#sealed-answer';
import { leafHash, toHex } from '#audit-log';
import type { RecordedEvent } from '#ledger';
import { verifyOpening } from '#sealing';
import { demoCopies, startTestNode, type TestNode } from '../../agency-node/test/support/agency-fixture.js';
import { FakeProvider, MURORAN_CITY, PENSION, acquire, bearer, issuePerson, registerAgency, startLinkageHub, type Agency } from './support/linkage-fixture.js';
import { expectProblem } from './support/problem-assertions.js';
import type { TestHub } from './support/test-hub.js';
import { join } from 'node:path';
import { replayProvisionRecords } from '../../auditor/src/replay/replay-provision-records.js';
import { verifyLog } from '../../auditor/src/verify/verify-log.js';
import { readKey } from './support/read-key.js';

// 自己情報表示: Aoyama-san asks Muroran City, through the hub, what it holds about her. Muroran is the real
// intermediate server (apps/agency-node) over HTTP; Noboribetsu a stand-in provider for the ways a provider fails.
const NOBORIBETSU = 'noboribetsu-city';
const HELLO_WORK = 'hello-work-muroran';
const PATH = '/v1/citizens/me/self-information-requests';

let hub: TestHub;
let node: TestNode;
const fake = new FakeProvider();
let muroran: Agency;
let pension: Agency;
let noboribetsu: Agency;
let aoyama: { individualNumber: string; citizenSecret: string };
let codeB: string;

async function ask(secret: string, body: Record<string, unknown>) {
  return hub.post(PATH, { providerAgencyId: MURORAN_CITY, itemCode: 'local-tax', ...body }, bearer(secret));
}

async function typesOf(serial: string): Promise<string[]> {
  return (await hub.store.readSerial(serial as never)).map((e) => e.type);
}

beforeAll(async () => {
  hub = await startLinkageHub();
  const hubKey = (await hub.get('/v1/hub/keys')).json<{ provisionSigningKey: string }>().provisionSigningKey;
  node = await startTestNode({ agencyId: MURORAN_CITY, signer: { publicKey: hubKey, sign: () => '' } });
  node.runtime.store.loadCopies(demoCopies(MURORAN_CITY), new Date());
  await node.app.listen(0, '127.0.0.1');
  const port = (node.app.getHttpServer().address() as { port: number }).port;
  await fake.start(hub);
  muroran = await registerAgency(hub, MURORAN_CITY, 'municipality', `http://127.0.0.1:${port}`);
  pension = await registerAgency(hub, PENSION, 'pension-service', 'http://127.0.0.1:9');
  noboribetsu = await registerAgency(hub, NOBORIBETSU, 'municipality', fake.endpoint);
  await registerAgency(hub, HELLO_WORK, 'hello-work', 'http://127.0.0.1:9');
  aoyama = await issuePerson(hub);
  codeB = await acquire(hub, muroran, aoyama.individualNumber);
  node.runtime.store.setAgencyCode('M-000123', codeB, new Date().toISOString());
  await acquire(hub, pension, aoyama.individualNumber);
  await acquire(hub, noboribetsu, aoyama.individualNumber);
});

afterAll(async () => {
  await node?.close();
  await fake.stop();
  await hub?.dispose();
});

describe('self-information display (自己情報表示)', () => {
  it('lists the agencies holding a code for her whose kind discloses items, with those items', async () => {
    const res = await hub.get('/v1/citizens/me/self-information/options', bearer(aoyama.citizenSecret));
    expect(res.statusCode, res.body).toBe(200);
    const { providers } = res.json<{ providers: { agencyId: string; name: string; items: { code: string; name: string }[] }[] }>();
    // Hello Work holds no code for her: not listed.
    expect(providers.map((p) => p.agencyId)).toEqual([PENSION, MURORAN_CITY, NOBORIBETSU]);
    expect(providers.find((p) => p.agencyId === MURORAN_CITY)).toEqual({
      agencyId: MURORAN_CITY,
      name: `${MURORAN_CITY} (test)`,
      items: [
        { code: 'local-tax', name: '地方税関係情報' },
        { code: 'resident-record', name: '住民票関係情報' },
        { code: 'livelihood-protection', name: '生活保護関係情報' },
        { code: 'child-rearing-allowance', name: '児童扶養手当関係情報' },
      ],
    });
    expect(providers.find((p) => p.agencyId === PENSION)?.items.map((i) => i.code)).toEqual(['pension-enrollment', 'pension-benefit']);
    expectProblem(await hub.get('/v1/citizens/me/self-information/options', bearer(muroran.token)), 401, 'UNAUTHENTICATED');
    expectProblem(await hub.get('/v1/citizens/me/self-information/options'), 401, 'UNAUTHENTICATED');
  });

  it('answers from Muroran\'s copy, sealed to the browser\'s key: only that key opens it, and the serial ran the query lifecycle', async () => {
    const browser = await generateAnswerKeyPair();
    const res = await ask(aoyama.citizenSecret, { answerPublicKey: browser.publicKey });
    expect(res.statusCode, res.body).toBe(200);
    const body = res.json<{ serial: string; outcome: string; provider: unknown; item: unknown; answer: { data: string; encrypted: boolean; digest: string; size: number } }>();
    expect(body).toMatchObject({ outcome: 'answered', provider: { agencyId: MURORAN_CITY, name: `${MURORAN_CITY} (test)` }, item: { code: 'local-tax', name: '地方税関係情報' }, answer: { encrypted: true } });
    const bytes = Buffer.from(body.answer.data, 'base64url');
    expect(body.answer.size).toBe(bytes.length);
    const plain = JSON.parse(Buffer.from(await openAnswer(bytes, browser.privateKey, body.serial)).toString('utf8'));
    expect(plain).toEqual({ items: { 'local-tax': demoCopies(MURORAN_CITY)[0]!.items['local-tax'] } });
    // Another key, or another serial as AAD, opens nothing.
    const other = await generateAnswerKeyPair();
    await expect(openAnswer(bytes, other.privateKey, body.serial)).rejects.toThrow();
    await expect(openAnswer(bytes, browser.privateKey, '20990101010000000001')).rejects.toThrow();

    expect(await typesOf(body.serial)).toEqual(['QueryAccepted', 'ProvisionRequested', 'ProvisionAnswered', 'QueryCompleted']);
    const stored = await hub.store.readSerial(body.serial as never);
    expect(stored.map((e) => e.schemaVersion)).toEqual([3, 3, 2, 1]);
    expect(stored[0]!.data).toMatchObject({ requesterKind: 'citizen', procedureCode: 'self-information', providerAgencyId: MURORAN_CITY, providerKind: 'municipality', itemCodes: ['local-tax'], tableVersion: 1 });
    expect(stored[0]!.data).not.toHaveProperty('requesterAgencyId');
    expect(stored[2]!.data).toMatchObject({ encrypted: true, answerSize: body.answer.size });
    expect(stored.at(-1)).toMatchObject({ terminal: 'completed', data: { outcome: 'answered' } });

    // The stored log holds no code, no subject id, no answer key and no answer digest in clear (I10, I5).
    const opened = await hub.ledger.readSerial(body.serial as never);
    const subjectId = (opened[0]!.data as { subjectId: string }).subjectId;
    expect((opened[1]!.data as { providerCode: string }).providerCode).toBe(codeB);
    const text = JSON.stringify(stored);
    for (const secret of [codeB, subjectId, browser.publicKey, body.answer.digest, body.answer.data]) expect(text).not.toContain(secret);

    // The provider recorded the exchange in its own provision record, with the person as counterpart.
    expect(node.runtime.store.recordFor('provided', body.serial)).toMatchObject({ role: 'provided', counterpartAgencyId: 'citizen:self', procedureCode: 'self-information', outcome: 'answered', encrypted: true });
  });

  it('the exchange is in the provider agency\'s records', async () => {
    const browser = await generateAnswerKeyPair();
    const serial = (await ask(aoyama.citizenSecret, { answerPublicKey: browser.publicKey, itemCode: 'resident-record' })).json<{ serial: string }>().serial;
    let records: { serial: string }[] = [];
    for (let i = 0; i < 100; i++) {
      const res = await hub.get('/v1/agencies/me/provision-records?role=provider', bearer(muroran.token));
      expect(res.statusCode, res.body).toBe(200);
      records = res.json<{ records: { serial: string }[] }>().records;
      if (records.some((r) => r.serial === serial)) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    expect(records.find((r) => r.serial === serial)).toMatchObject({ serial, procedure: { code: 'self-information' } });
  });

  it('gives Aoyama-san, in her inclusion proof of the serial, the openings of her fields: her subject, her answer key, the answer\'s digest; the provider its code only', async () => {
    const browser = await generateAnswerKeyPair();
    const res = await ask(aoyama.citizenSecret, { answerPublicKey: browser.publicKey });
    const { serial, answer } = res.json<{ serial: string; answer: { digest: string } }>();
    const size = await hub.head();
    for (let i = 0; i < 200 && (await hub.get(`/v1/audit/proofs/inclusion?serial=${serial}&size=${size}`)).statusCode !== 200; i++) await new Promise((r) => setTimeout(r, 25));
    type Proof = { envelope: string; leafHex: string; openings: { field: string; value: unknown; salt: string }[] };
    const proofs = async (headers: Record<string, string> = {}) => (await hub.get(`/v1/audit/proofs/inclusion?serial=${serial}&size=${size}`, headers)).json<{ proofs: Proof[] }>().proofs;
    const opened = (ps: Proof[]) => ps.flatMap((p) => p.openings.map((o) => `${(JSON.parse(p.envelope) as { type: string }).type}.${o.field}`)).sort();
    const mine = await proofs(bearer(aoyama.citizenSecret));
    expect(mine.every((p) => p.leafHex === toHex(leafHash(p.envelope)))).toBe(true);
    expect(opened(mine)).toEqual(['ProvisionAnswered.answerDigest', 'ProvisionAnswered.subjectId', 'ProvisionRequested.answerPublicKey', 'ProvisionRequested.subjectId', 'QueryAccepted.subjectId']);
    const values = mine.flatMap((p) => p.openings);
    expect(values.find((o) => o.field === 'answerPublicKey')?.value).toBe(browser.publicKey);
    expect(values.find((o) => o.field === 'answerDigest')?.value).toBe(answer.digest);
    expect(JSON.stringify(mine)).not.toContain(codeB);
    for (const p of mine) for (const o of p.openings) verifyOpening(JSON.parse(p.envelope) as RecordedEvent, o);
    const provider = await proofs(bearer(muroran.token));
    expect(opened(provider)).toEqual(['ProvisionAnswered.answerDigest', 'ProvisionRequested.providerCode']);
    expect(opened(await proofs(bearer(pension.token)))).toEqual([]);
    const stranger = await issuePerson(hub);
    expect(opened(await proofs(bearer(stranger.citizenSecret)))).toEqual([]);
  });

  it('refuses an item the provider\'s kind does not disclose: 403 SELF_DISCLOSURE_NOT_ALLOWED with the serial, ended by QueryDenied, nothing asked of the provider', async () => {
    const browser = await generateAnswerKeyPair();
    const before = fake.calls.length;
    const body = expectProblem(await ask(aoyama.citizenSecret, { answerPublicKey: browser.publicKey, itemCode: 'pension-benefit' }), 403, 'SELF_DISCLOSURE_NOT_ALLOWED');
    expect(body).toMatchObject({ serial: expect.stringMatching(/^\d{20}$/), tableVersion: 1, allowedItems: ['local-tax', 'resident-record', 'livelihood-protection', 'child-rearing-allowance'] });
    const [denied] = await hub.store.readSerial(String(body['serial']) as never);
    expect(denied).toMatchObject({ type: 'QueryDenied', schemaVersion: 3, terminal: 'denied', data: { reason: 'SELF_DISCLOSURE_NOT_ALLOWED', requesterKind: 'citizen', itemCodes: ['pension-benefit'] } });
    expect(fake.calls.length).toBe(before);
    // An agency that is not registered is refused the same way, with its own reason.
    const unknown = expectProblem(await ask(aoyama.citizenSecret, { answerPublicKey: browser.publicKey, providerAgencyId: 'nowhere-city' }), 403, 'UNKNOWN_PROVIDER');
    expect(await typesOf(String(unknown['serial']))).toEqual(['QueryDenied']);
  });

  it('refuses when the agency holds no code for her: 404 NO_AGENCY_CODE with the serial, ended by QueryDenied', async () => {
    const browser = await generateAnswerKeyPair();
    const body = expectProblem(await ask(aoyama.citizenSecret, { answerPublicKey: browser.publicKey, providerAgencyId: HELLO_WORK, itemCode: 'employment-insurance' }), 404, 'NO_AGENCY_CODE');
    expect((await hub.store.readSerial(String(body['serial']) as never)).map((e) => [e.type, (e.data as { reason?: string }).reason, e.terminal])).toEqual([['QueryDenied', 'NO_AGENCY_CODE', 'denied']]);
  });

  it('requires the answer key, and a citizen\'s credential: validation and agency tokens are refused (recorded)', async () => {
    const res = await ask(aoyama.citizenSecret, {});
    const body = expectProblem(res, 400, 'VALIDATION_FAILED');
    expect(body['serial']).toMatch(/^\d{20}$/);
    expect(await hub.store.readSerial(String(body['serial']) as never)).toMatchObject([{ type: 'RequestRefused', data: { command: 'RequestSelfInformation', reason: 'VALIDATION_FAILED' } }]);
    const browser = await generateAnswerKeyPair();
    expectProblem(await hub.post(PATH, { providerAgencyId: MURORAN_CITY, itemCode: 'local-tax', answerPublicKey: browser.publicKey }, bearer(muroran.token)), 401, 'UNAUTHENTICATED');
  });

  it('asks a provider registered with a grpc:// endpoint over gRPC with the same citizen document, and relays its sealed answer', async () => {
    await fake.startGrpc();
    const grpcCity = await registerAgency(hub, 'date-city', 'municipality', fake.grpcEndpoint);
    const code = await acquire(hub, grpcCity, aoyama.individualNumber);
    fake.behaviours.set(code, { answer: { 'resident-record': { household: 2 } } });
    const browser = await generateAnswerKeyPair();
    const res = await ask(aoyama.citizenSecret, { providerAgencyId: 'date-city', itemCode: 'resident-record', answerPublicKey: browser.publicKey });
    expect(res.statusCode, res.body).toBe(200);
    const { serial, answer } = res.json<{ serial: string; answer: { data: string } }>();
    expect(JSON.parse(Buffer.from(await openAnswer(Buffer.from(answer.data, 'base64url'), browser.privateKey, serial)).toString('utf8'))).toEqual({ items: { 'resident-record': { household: 2 } } });
    expect(fake.calls.at(-1)).toMatchObject({ signatureValid: true, body: { requesterKind: 'citizen', procedureCode: 'self-information', code, serial } });
  });

  it('ends the serial as a refusal or failure when the provider refuses, cannot be reached, does not answer in time or breaks the protocol', async () => {
    const person = await issuePerson(hub);
    const code = await acquire(hub, noboribetsu, person.individualNumber);
    const browser = await generateAnswerKeyPair();
    const askNoboribetsu = () => ask(person.citizenSecret, { providerAgencyId: NOBORIBETSU, answerPublicKey: browser.publicKey });

    const refused = expectProblem(await askNoboribetsu(), 502, 'PROVISION_REFUSED');
    expect(refused['reason']).toBe('NO_RECORD');
    expect(await typesOf(String(refused['serial']))).toEqual(['QueryAccepted', 'ProvisionRequested', 'ProvisionRefused', 'QueryCompleted']);
    // The fake received the citizen form of the provision protocol: no requesting agency, the key, the provider's own code.
    expect(fake.calls.at(-1)).toMatchObject({ signatureValid: true, body: { requesterKind: 'citizen', procedureCode: 'self-information', code, answerPublicKey: browser.publicKey, serial: refused['serial'] } });
    expect(fake.calls.at(-1)!.body).not.toHaveProperty('requesterAgencyId');

    fake.behaviours.set(code, { hang: true });
    const timeout = expectProblem(await askNoboribetsu(), 504, 'PROVIDER_TIMEOUT');
    expect((await hub.store.readSerial(String(timeout['serial']) as never)).at(-1)).toMatchObject({ type: 'QueryFailed', terminal: 'failed', data: { reason: 'PROVIDER_TIMEOUT' } });
    fake.behaviours.set(code, { garbage: true });
    expectProblem(await askNoboribetsu(), 502, 'PROVIDER_PROTOCOL_ERROR');
    // An answer in plaintext to a request with a key is a protocol error: the hub never relays it.
    fake.behaviours.set(code, { answer: { 'local-tax': 1 }, plaintextAlways: true });
    expectProblem(await askNoboribetsu(), 502, 'PROVIDER_PROTOCOL_ERROR');
    await fake.stop();
    const down = expectProblem(await askNoboribetsu(), 502, 'PROVIDER_UNREACHABLE');
    expect((await hub.store.readSerial(String(down['serial']) as never)).at(-1)).toMatchObject({ type: 'QueryFailed', data: { reason: 'PROVIDER_UNREACHABLE' } });
    expect(await hub.store.openSerials()).toEqual([]);
  });

  it('the auditor verifies the log with its self-information requests: each judged lawful under the self-disclosure table in force', async () => {
    const verifierKey = (await hub.get('/v1/audit/verifier-key')).body;
    const report = await verifyLog({ source: { kind: 'db', path: hub.config.ledgerPath }, verifierKey, threads: 1 });
    expect(report.firstFailure).toBeNull();
    expect(report.ok).toBe(true);
    const published = (await hub.store.readAll({ fromPosition: 0, maxCount: 100 })).filter((e) => e.type === 'SelfDisclosureTablePublished');
    expect(published).toMatchObject([{ streamId: 'self-disclosure-table', schemaVersion: 1, terminal: 'completed', data: { version: 1 } }]);
  });

  it('the provision records, self-information requests included, rebuild from the log to the live projection (I8)', async () => {
    const live = (await hub.get('/v1/citizens/me/provision-records', bearer(aoyama.citizenSecret))).json<{ records: { kind: string }[] }>().records;
    expect(live.filter((r) => r.kind === 'self-information').length).toBeGreaterThanOrEqual(5);
    const { sealer, close } = readKey(hub.dataDir);
    try {
      const diff = await replayProvisionRecords(hub.config.ledgerPath, join(hub.dataDir, 'projections.sqlite'), true, sealer);
      expect(diff).toMatchObject({ ok: true });
    } finally {
      close();
    }
  });
});
