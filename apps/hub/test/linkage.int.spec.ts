import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openAnswer } from '#sealed-answer';
import { leafHash, toHex } from '#audit-log';
import type { RecordedEvent } from '#ledger';
import { verifyOpening } from '#sealing';
import { expectProblem } from './support/problem-assertions.js';
import { RESP_TYPES, createClient } from 'redis';
import { FakeProvider, JASSO, MURORAN_CITY, PENSION, acquire, bearer, issuePerson, operatorToken, registerAgency, startLinkageHub, type Agency } from './support/linkage-fixture.js';
import type { TestHub } from './support/test-hub.js';
import { expectNothingButRefusals } from './support/test-hub.js';

/** The worked example of seeds/001: the pension service asks Muroran City for local tax information. */
const PROCEDURE = 'pension-award-claim';
const LOCAL_TAX = { 'local-tax': { fiscalYear: 2026, taxableIncome: 3_120_000, municipalTax: 187_200 } };

let hub: TestHub;
const muroranNode = new FakeProvider();
let pension: Agency;
let muroran: Agency;
let jasso: Agency;
let aoyama: { individualNumber: string; citizenSecret: string; residentRecordCode: string };
let codeA: string; // the pension service's code for Aoyama-san
let codeB: string; // Muroran's code for Aoyama-san
const numbers: string[] = [];
const residents: string[] = [];

async function query(agency: Agency, body: Record<string, unknown>, headers: Record<string, string> = {}) {
  return hub.post('/v1/queries', { providerAgencyId: MURORAN_CITY, procedureCode: PROCEDURE, itemCodes: ['local-tax'], ...body }, { ...bearer(agency.token), ...headers });
}

async function eventsOf(serial: string) {
  return hub.store.readSerial(serial as never);
}

beforeAll(async () => {
  hub = await startLinkageHub();
  await muroranNode.start(hub);
  pension = await registerAgency(hub, PENSION, 'pension-service', 'http://127.0.0.1:9');
  muroran = await registerAgency(hub, MURORAN_CITY, 'municipality', muroranNode.endpoint);
  jasso = await registerAgency(hub, JASSO, 'jasso', muroranNode.endpoint);
  aoyama = await issuePerson(hub);
  numbers.push(aoyama.individualNumber);
  residents.push(aoyama.residentRecordCode);
  codeA = await acquire(hub, pension, aoyama.individualNumber, 'JPS-0001');
  codeB = await acquire(hub, muroran, aoyama.individualNumber, 'MRN-0001');
  muroranNode.behaviours.set(codeB, { answer: LOCAL_TAX });
});

afterAll(async () => {
  await muroranNode.stop();
  await hub?.dispose();
});

describe('agency codes (I7)', () => {
  it('gives two agencies unrelated codes for one person, and the same code when acquired again', async () => {
    expect(codeA).toMatch(/^[A-Za-z0-9_-]{22}$/);
    expect(codeB).not.toBe(codeA);
    const again = await hub.post('/v1/agency-codes', { individualNumber: aoyama.individualNumber, acquisitionNumber: 'JPS-0002' }, bearer(pension.token));
    expect(again.statusCode).toBe(200);
    expect(again.json()).toMatchObject({ code: codeA, reacquired: true });
    const retry = await hub.post('/v1/agency-codes', { individualNumber: aoyama.individualNumber, acquisitionNumber: 'JPS-0002' }, bearer(pension.token));
    expect(retry.json()).toEqual(again.json());
  });

  it('refuses an unknown number, a wrong check digit and a caller without a valid token; appends nothing', async () => {
    const before = await hub.head();
    const unknown = `${'1234567890'}${'1'}`;
    const wrong = aoyama.individualNumber.slice(0, 11) + String((Number(aoyama.individualNumber[11]) + 1) % 10);
    expectProblem(await hub.post('/v1/agency-codes', { individualNumber: `${unknown}8`, acquisitionNumber: 'x-1' }, bearer(pension.token)), 404, 'UNKNOWN_INDIVIDUAL_NUMBER');
    expect((await hub.post('/v1/agency-codes', { individualNumber: wrong, acquisitionNumber: 'x-2' }, bearer(pension.token))).statusCode).toBeGreaterThanOrEqual(400);
    expectProblem(await hub.post('/v1/agency-codes', { individualNumber: aoyama.individualNumber, acquisitionNumber: 'x-3' }), 401, 'UNAUTHENTICATED');
    expectProblem(await hub.post('/v1/agency-codes', { individualNumber: aoyama.individualNumber, acquisitionNumber: 'x-4' }, bearer('not-a-token-of-anyone-at-all-000')), 401, 'UNAUTHENTICATED');
    expectProblem(await hub.post('/v1/agency-codes', { individualNumber: aoyama.individualNumber, acquisitionNumber: '123456789012' }, bearer(pension.token)), 400, 'PERSONAL_IDENTIFIER_IN_EVENT');
    await expectNothingButRefusals(hub, before);
  });
});

describe('a lawful query end to end (seeds/001)', () => {
  it('relays the provider\'s answer encrypted to the requester under one serial, and keeps only its digest and size (I5)', async () => {
    const res = await query(pension, { code: codeA, answerPublicKey: pension.keys.publicKey });
    expect(res.statusCode, res.body).toBe(200);
    const body = res.json<{ serial: string; outcome: string; tableVersion: number; answer: { data: string; encrypted: boolean; digest: string; size: number } }>();
    expect(body).toMatchObject({ outcome: 'answered', tableVersion: 2, answer: { encrypted: true } });
    const bytes = Buffer.from(body.answer.data, 'base64url');
    expect(createHash('sha256').update(bytes).digest('hex')).toBe(body.answer.digest);
    const plain = JSON.parse(Buffer.from(await openAnswer(bytes, pension.keys.privateKey, body.serial)).toString('utf8'));
    expect(plain).toEqual({ items: LOCAL_TAX });

    // The provider got its own code (B), the serial, the procedure and the items; the call was signed.
    const call = muroranNode.calls.at(-1)!;
    expect(call.signatureValid).toBe(true);
    expect(call.keyId).toBe((await hub.get('/v1/hub/keys')).json<{ provisionSigningKeyId: string }>().provisionSigningKeyId);
    expect(call.body).toMatchObject({ serial: body.serial, code: codeB, requesterAgencyId: PENSION, procedureCode: PROCEDURE, itemCodes: ['local-tax'] });
    expect(JSON.stringify(call.body)).not.toContain(codeA);

    const events = await eventsOf(body.serial);
    expect(events.map((e) => [e.type, e.terminal ?? null])).toEqual([
      ['QueryAccepted', null],
      ['ProvisionRequested', null],
      ['ProvisionAnswered', null],
      ['QueryCompleted', 'completed'],
    ]);
    // Stored (I10): size and outcome in clear; the digest, the codes and the subject sealed.
    expect(events[2]!.data).toMatchObject({ answerSize: bytes.length, encrypted: true });
    const stored = JSON.stringify(events);
    for (const secret of [body.answer.data, '3120000', body.answer.digest, codeA, codeB]) expect(stored).not.toContain(secret);
    // Opened with the hub's keys: I7 inside each event, the requester's event holds no provider code, the provider's no requester code.
    const opened = await hub.ledger.readSerial(body.serial as never);
    expect(opened[0]!.data).toMatchObject({ requesterCode: codeA, subjectId: expect.any(String) });
    expect(opened[1]!.data).toMatchObject({ providerCode: codeB });
    expect(opened[2]!.data).toMatchObject({ answerDigest: body.answer.digest });
    expect(JSON.stringify(opened[0])).not.toContain(codeB);
    expect(JSON.stringify(opened[1])).not.toContain(codeA);
    expect(stored).not.toContain((opened[0]!.data as { subjectId: string }).subjectId);
  });

  it('relays a plaintext answer when no key is given, and a provider\'s refusal as its outcome', async () => {
    const plain = await query(pension, { code: codeA });
    expect(plain.json()).toMatchObject({ outcome: 'answered', answer: { encrypted: false } });
    expect(JSON.parse(Buffer.from(plain.json<{ answer: { data: string } }>().answer.data, 'base64url').toString('utf8'))).toEqual({ items: LOCAL_TAX });

    const other = await issuePerson(hub);
    numbers.push(other.individualNumber);
    residents.push(other.residentRecordCode);
    const a = await acquire(hub, pension, other.individualNumber);
    await acquire(hub, muroran, other.individualNumber);
    const refused = await query(pension, { code: a });
    expect(refused.statusCode).toBe(200);
    expect(refused.json()).toMatchObject({ outcome: 'refused-by-provider', reason: 'NO_RECORD' });
    const events = await eventsOf(refused.json<{ serial: string }>().serial);
    expect(events.map((e) => e.type)).toEqual(['QueryAccepted', 'ProvisionRequested', 'ProvisionRefused', 'QueryCompleted']);
  });
});

describe('refusals (I6): a precise error and a refusal event', () => {
  async function expectDenied(res: Awaited<ReturnType<typeof query>>, code: string, extra: Record<string, unknown> = {}) {
    const problem = expectProblem(res, 403, code);
    const events = await eventsOf(String(problem['serial']));
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({ type: 'QueryDenied', terminal: 'denied', data: { reason: code, ...extra } });
    return problem;
  }

  it('unknown procedure', async () => {
    await expectDenied(await query(pension, { code: codeA, procedureCode: 'no-such-procedure' }), 'UNKNOWN_PROCEDURE');
  });

  it('an item not allowed for the procedure, naming the allowed ones', async () => {
    const p = await expectDenied(await query(pension, { code: codeA, itemCodes: ['local-tax', 'livelihood-protection'] }), 'ITEM_NOT_ALLOWED');
    expect(p).toMatchObject({ notAllowedItems: ['livelihood-protection'] });
  });

  it('a provider kind not in the row', async () => {
    await expectDenied(await query(pension, { code: codeA, providerAgencyId: JASSO }), 'PROVIDER_KIND_NOT_ALLOWED');
  });

  it('the credential of another agency: one RequestRefused of the agency the token proves, the named one kept apart (never counted as its)', async () => {
    const problem = expectProblem(await query(muroran, { code: codeA, requesterAgencyId: PENSION }), 403, 'CREDENTIAL_MISMATCH');
    const events = await eventsOf(String(problem['serial']));
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({ type: 'RequestRefused', terminal: 'denied', data: { reason: 'CREDENTIAL_MISMATCH', command: 'SubmitQuery', agencyId: MURORAN_CITY, claimedAgencyId: PENSION, credential: 'current' } });
  });

  it('a code that belongs to another agency (the requester learns nothing about it)', async () => {
    const p = await expectDenied(await query(pension, { code: codeB }), 'CODE_NOT_ISSUED_TO_REQUESTER');
    expect(JSON.stringify(p)).not.toMatch(/subject/i);
  });

  it('a table version not in force', async () => {
    // Version 2 (the hub's default) is in force: version 1, superseded, and version 3, never published, are not.
    await expectDenied(await query(pension, { code: codeA, tableVersion: 1 }), 'TABLE_VERSION_NOT_IN_FORCE');
    await expectDenied(await query(pension, { code: codeA, tableVersion: 3 }), 'TABLE_VERSION_NOT_IN_FORCE');
  });

  it('no code at the provider for the person', async () => {
    const person = await issuePerson(hub);
    numbers.push(person.individualNumber);
    residents.push(person.residentRecordCode);
    const a = await acquire(hub, pension, person.individualNumber);
    await expectDenied(await query(pension, { code: a }), 'NO_CODE_AT_PROVIDER');
  });

  it('a malformed request or a missing credential changes nothing', async () => {
    const before = await hub.head();
    expectProblem(await query(pension, { code: 'not-a-code' }), 400, 'VALIDATION_FAILED');
    expectProblem(await query(pension, { code: codeA, itemCodes: [] }), 400, 'VALIDATION_FAILED');
    expectProblem(await hub.post('/v1/queries', { code: codeA, providerAgencyId: MURORAN_CITY, procedureCode: PROCEDURE, itemCodes: ['local-tax'] }), 401, 'UNAUTHENTICATED');
    await expectNothingButRefusals(hub, before);
  });
});

describe('failures end the serial in QueryFailed', () => {
  it('a provider that cannot be reached, that does not answer in time, or that breaks the protocol', async () => {
    const down = await registerAgency(hub, 'noboribetsu-city', 'municipality', 'http://127.0.0.1:9');
    const person = await issuePerson(hub);
    numbers.push(person.individualNumber);
    residents.push(person.residentRecordCode);
    const a = await acquire(hub, pension, person.individualNumber);
    await acquire(hub, down, person.individualNumber);
    const unreachable = expectProblem(await query(pension, { code: a, providerAgencyId: 'noboribetsu-city' }), 502, 'PROVIDER_UNREACHABLE');
    const failed = await eventsOf(String(unreachable['serial']));
    expect(failed.at(-1)).toMatchObject({ type: 'QueryFailed', terminal: 'failed', data: { reason: 'PROVIDER_UNREACHABLE' } });

    const b = await acquire(hub, muroran, person.individualNumber);
    muroranNode.behaviours.set(b, { hang: true });
    const timeout = expectProblem(await query(pension, { code: a }), 504, 'PROVIDER_TIMEOUT');
    expect((await eventsOf(String(timeout['serial']))).at(-1)).toMatchObject({ type: 'QueryFailed', data: { reason: 'PROVIDER_TIMEOUT' } });
    muroranNode.behaviours.set(b, { garbage: true });
    expectProblem(await query(pension, { code: a }), 502, 'PROVIDER_PROTOCOL_ERROR');
    muroranNode.behaviours.set(b, { status: 500 });
    expectProblem(await query(pension, { code: a }), 502, 'PROVIDER_PROTOCOL_ERROR');
    // A requester that gave a key never gets plaintext relayed (I5: end to end where the requester asks).
    muroranNode.behaviours.set(b, { answer: LOCAL_TAX, plaintextAlways: true });
    expectProblem(await query(pension, { code: a, answerPublicKey: pension.keys.publicKey }), 502, 'PROVIDER_PROTOCOL_ERROR');
    // More than HUB_MAX_ANSWER_BYTES (1 MiB) of answer is not relayed.
    muroranNode.behaviours.set(b, { answer: { 'local-tax': 'x'.repeat(1_100_000) } });
    const large = expectProblem(await query(pension, { code: a }), 502, 'ANSWER_TOO_LARGE');
    expect((await eventsOf(String(large['serial']))).at(-1)).toMatchObject({ type: 'QueryFailed', data: { reason: 'ANSWER_TOO_LARGE' } });
    expect(await hub.store.openSerials()).toEqual([]);
  });
});

describe('idempotent retry', () => {
  it('answers a retry with the original serial and outcome and appends nothing; another body with the key is refused', async () => {
    const first = await query(pension, { code: codeA }, { 'idempotency-key': 'annual-check-0001' });
    expect(first.statusCode).toBe(200);
    const head = await hub.head();
    const retry = await query(pension, { code: codeA }, { 'idempotency-key': 'annual-check-0001' });
    expect(retry.statusCode).toBe(200);
    expect(retry.headers['idempotent-replayed']).toBe('true');
    const a = first.json<{ serial: string; answer: { digest: string } }>();
    expect(retry.json()).toMatchObject({ serial: a.serial, outcome: 'answered', answer: { digest: a.answer.digest, encrypted: false } });
    expect(retry.json<{ answer: { data?: string } }>().answer.data).toBeUndefined();
    await expectNothingButRefusals(hub, head);
    expectProblem(await query(pension, { code: codeA, itemCodes: ['resident-record'] }, { 'idempotency-key': 'annual-check-0001' }), 409, 'IDEMPOTENCY_KEY_REUSED');
  });
});

describe('bulk queries', () => {
  it('gives every person their own serial and outcome and asks the provider once', async () => {
    const second = await issuePerson(hub);
    numbers.push(second.individualNumber);
    residents.push(second.residentRecordCode);
    const a2 = await acquire(hub, pension, second.individualNumber);
    await acquire(hub, muroran, second.individualNumber);
    const callsBefore = muroranNode.calls.length;
    const res = await hub.post(
      '/v1/queries/bulk',
      { codes: [codeA, a2, codeB], providerAgencyId: MURORAN_CITY, procedureCode: PROCEDURE, itemCodes: ['local-tax'] },
      bearer(pension.token),
    );
    expect(res.statusCode, res.body).toBe(200);
    const body = res.json<{ batchId: string; results: { index: number; serial: string; outcome: string; reason?: string }[] }>();
    expect(body.results.map((r) => [r.index, r.outcome, r.reason ?? null])).toEqual([
      [0, 'answered', null],
      [1, 'refused-by-provider', 'NO_RECORD'],
      [2, 'denied', 'CODE_NOT_ISSUED_TO_REQUESTER'],
    ]);
    expect(new Set(body.results.map((r) => r.serial)).size).toBe(3);
    expect(muroranNode.calls.slice(callsBefore).map((c) => c.path)).toEqual(['/v1/provisions/batch']);
    const accepted = (await eventsOf(body.results[0]!.serial))[0]!;
    expect(accepted.data).toMatchObject({ batch: { batchId: body.batchId, index: 0, size: 3 } });
  });
});

describe('the registry', () => {
  it('lists the agencies a page at a time, in id order: every agency once, `next` only while more follow; a bad cursor or limit is refused', async () => {
    const whole = (await hub.get('/v1/agencies?limit=1000')).json<{ agencies: { agencyId: string }[]; next?: string }>();
    expect(whole.next).toBeUndefined();
    const ids = whole.agencies.map((a) => a.agencyId);
    expect(ids).toEqual([...ids].sort());
    expect(ids.length).toBeGreaterThanOrEqual(3);
    const paged: string[] = [];
    let after: string | undefined;
    for (let pages = 0; pages < ids.length + 1; pages++) {
      const page = (await hub.get(`/v1/agencies?limit=2${after === undefined ? '' : `&after=${after}`}`)).json<{ agencies: { agencyId: string }[]; next?: string }>();
      expect(page.agencies.length).toBeLessThanOrEqual(2);
      paged.push(...page.agencies.map((a) => a.agencyId));
      if (page.next === undefined) break;
      expect(page.next).toBe(page.agencies.at(-1)!.agencyId);
      after = page.next;
    }
    expect(paged).toEqual(ids);
    expectProblem(await hub.get('/v1/agencies?limit=0'), 400, 'VALIDATION_FAILED');
    expectProblem(await hub.get('/v1/agencies?limit=1001'), 400, 'VALIDATION_FAILED');
    expectProblem(await hub.get('/v1/agencies?after=..%2Fx'), 400, 'VALIDATION_FAILED');
  });

  it('takes changes from the operator only; a revoked agency can no longer query or be queried', async () => {
    expectProblem(await hub.post('/v1/agencies', { agencyId: 'x-city', name: 'X', kind: 'municipality', endpoint: 'http://127.0.0.1:9', publicKey: pension.keys.publicKey }, bearer(pension.token)), 403, 'FORBIDDEN');
    const listed = (await hub.get('/v1/agencies')).json<{ agencies: { agencyId: string }[] }>().agencies.map((a) => a.agencyId);
    expect(listed).toEqual(expect.arrayContaining([PENSION, MURORAN_CITY, JASSO]));
    expect((await hub.get('/v1/agencies')).body).not.toContain('credentialDigest');
    const operator = bearer(operatorToken(hub));
    expect((await hub.post(`/v1/agencies/${JASSO}/revocations`, { reason: 'test' }, operator)).statusCode).toBe(201);
    const revoked = expectProblem(await hub.post('/v1/agency-codes', { individualNumber: aoyama.individualNumber, acquisitionNumber: 'J-1' }, bearer(jasso.token)), 401, 'CREDENTIAL_REVOKED');
    // The revoked credential still identifies its agency: the attempt is its refusal event.
    expect((await eventsOf(String(revoked['serial'])))[0]).toMatchObject({ type: 'RequestRefused', data: { agencyId: JASSO, credential: 'revoked', reason: 'CREDENTIAL_REVOKED' } });
    const p = expectProblem(await query(pension, { code: codeA, providerAgencyId: JASSO }), 403, 'PROVIDER_REVOKED');
    expect(p['serial']).toMatch(/^\d{20}$/);
  });
});

describe('provision records (情報提供等記録)', () => {
  it('shows Aoyama-san when, who, from whom, what and why, and nothing of anyone else; agencies see theirs with monthly counts', async () => {
    const mine = await hub.get('/v1/citizens/me/provision-records', bearer(aoyama.citizenSecret));
    expect(mine.statusCode, mine.body).toBe(200);
    const records = mine.json<{ records: { serial: string; kind: string; requester: { agencyId: string; name: string } | null; provider: { agencyId: string; name: string }; procedure: { code: string; name: string }; items: { code: string; name: string }[]; outcome: string; date: string }[] }>().records;
    const answered = records.filter((r) => r.outcome === 'answered');
    expect(answered.length).toBeGreaterThanOrEqual(2);
    expect(answered[0]).toMatchObject({ kind: 'query', requester: { agencyId: PENSION, name: `${PENSION} (test)` }, provider: { agencyId: MURORAN_CITY, name: `${MURORAN_CITY} (test)` }, items: [{ code: 'local-tax', name: '地方税関係情報' }] });
    expect(answered[0]!.procedure).toEqual({ code: expect.any(String), name: expect.any(String) });
    expect(mine.body).not.toContain(codeA);
    expect(mine.body).not.toContain(codeB);
    expect(mine.body).not.toMatch(/subjectId/);
    // The code-of-another-agency attempt named no person: it is not in Aoyama-san's record.
    expect(records.some((r) => r.outcome === 'denied')).toBe(true);

    const other = await issuePerson(hub);
    const theirs = (await hub.get('/v1/citizens/me/provision-records', bearer(other.citizenSecret))).json<{ records: unknown[] }>();
    expect(theirs.records).toEqual([]);
    expectProblem(await hub.get('/v1/citizens/me/provision-records', bearer(pension.token)), 401, 'UNAUTHENTICATED');

    const page = (await hub.get('/v1/agencies/me/provision-records?role=requester&limit=5', bearer(pension.token))).json<{ records: { serial: string }[]; next?: string }>();
    expect(page.records).toHaveLength(5);
    expect(page.next).toEqual(expect.any(String));
    // An agency sees agencies, procedures and items, never the hub's subject id or any code.
    expect(JSON.stringify(page)).not.toMatch(/subjectId/);
    expect(JSON.stringify(page)).not.toContain(codeA);
    const provided = (await hub.get('/v1/agencies/me/provision-records?role=provider', bearer(muroran.token))).json<{ records: { serial: string }[] }>();
    expect(provided.records.map((r) => r.serial)).toEqual(expect.arrayContaining(answered.map((r) => r.serial)));
    const stats = (await hub.get('/v1/agencies/me/statistics', bearer(pension.token))).json<{ counts: { procedure: { code: string }; role: string; status: string; count: number }[] }>();
    expect(stats.counts.find((c) => c.procedure.code === PROCEDURE && c.role === 'requester' && c.status === 'answered')?.count).toBeGreaterThanOrEqual(2);
    expectProblem(await hub.get('/v1/agencies/me/statistics?month=2026-13', bearer(pension.token)), 400, 'VALIDATION_FAILED');
  });
});

describe('inclusion proofs of a query (I10): the stored envelopes for anyone, each party the openings of its own fields', () => {
  it('gives Aoyama-san her subject, each agency its own code, and nobody anything else', async () => {
    const res = await query(pension, { code: codeA });
    const serial = res.json<{ serial: string }>().serial;
    // The tree follows the log off the append path: wait until it covers the query.
    const size = await hub.head();
    for (let i = 0; i < 200 && (await hub.get(`/v1/audit/proofs/inclusion?serial=${serial}&size=${size}`)).statusCode !== 200; i++) await new Promise((r) => setTimeout(r, 25));
    type Proof = { envelope: string; leafHex: string; openings: { field: string; value: unknown; salt: string }[] };
    const proofs = async (headers: Record<string, string> = {}) => (await hub.get(`/v1/audit/proofs/inclusion?serial=${serial}&size=${size}`, headers)).json<{ proofs: Proof[] }>().proofs;
    const opened = (ps: Proof[]) => ps.flatMap((p) => p.openings.map((o) => `${(JSON.parse(p.envelope) as { type: string }).type}.${o.field}`)).sort();
    const anonymous = await proofs();
    expect(anonymous).toHaveLength(4);
    // The envelopes are publishable: everyone gets them, and they verify against the leaves.
    expect(anonymous.every((p) => typeof p.envelope === 'string' && p.leafHex === toHex(leafHash(p.envelope)))).toBe(true);
    expect(opened(anonymous)).toEqual([]);
    expect(opened(await proofs(hub.auditor))).toEqual([]);
    const subjectOf = (await hub.ledger.readSerial(serial as never))[0]!.data as { subjectId: string };
    const mine = await proofs(bearer(aoyama.citizenSecret));
    expect(opened(mine)).toEqual(['ProvisionAnswered.subjectId', 'ProvisionRequested.subjectId', 'QueryAccepted.subjectId']);
    expect(mine.flatMap((p) => p.openings.map((o) => o.value))).toEqual([subjectOf.subjectId, subjectOf.subjectId, subjectOf.subjectId]);
    const requester = await proofs(bearer(pension.token));
    expect(opened(requester)).toEqual(['ProvisionAnswered.answerDigest', 'QueryAccepted.requesterCode']);
    expect(requester.flatMap((p) => p.openings).find((o) => o.field === 'requesterCode')?.value).toBe(codeA);
    const provider = await proofs(bearer(muroran.token));
    expect(opened(provider)).toEqual(['ProvisionAnswered.answerDigest', 'ProvisionRequested.providerCode']);
    expect(provider.flatMap((p) => p.openings).find((o) => o.field === 'providerCode')?.value).toBe(codeB);
    // Nobody gets another party's field.
    expect(JSON.stringify(requester)).not.toContain(codeB);
    expect(JSON.stringify(provider)).not.toContain(codeA);
    for (const ps of [requester, provider]) expect(JSON.stringify(ps)).not.toContain(subjectOf.subjectId);
    // Every opening checks against its envelope's commitment.
    for (const p of [...mine, ...requester, ...provider]) for (const o of p.openings) verifyOpening(JSON.parse(p.envelope) as RecordedEvent, o);
    const stranger = await issuePerson(hub);
    expect(opened(await proofs(bearer(stranger.citizenSecret)))).toEqual([]);
    const outsider = await registerAgency(hub, 'sapporo-city', 'municipality', 'http://127.0.0.1:9');
    expect(opened(await proofs(bearer(outsider.token)))).toEqual([]);
    // A token the hub does not know (here, the revoked agency's) is refused rather than treated as anonymous.
    expectProblem(await hub.get(`/v1/audit/proofs/inclusion?serial=${serial}&size=${size}`, bearer(jasso.token)), 401, 'UNAUTHENTICATED');
  });
});

describe('I10: nothing in the stored text is equal across two events about one person', () => {
  /**
   * Every string and number in an envelope, the values a reader could match across events, but the
   * answer's size: sizes are kept in clear by design (what an auditor needs), though two answers about one
   * person may have the same length.
   */
  function values(text: string): Set<string> {
    const out = new Set<string>();
    const walk = (v: unknown): void => {
      if (typeof v === 'string' || typeof v === 'number') out.add(String(v));
      else if (Array.isArray(v)) v.forEach(walk);
      else if (typeof v === 'object' && v !== null) {
        for (const [k, x] of Object.entries(v)) {
          if (k === 'answerSize') continue;
          out.add(`key:${k}`);
          walk(x);
        }
      }
    };
    walk(JSON.parse(text));
    return out;
  }
  const envelopes = async (serial: string) => (await hub.store.readSerial(serial as never)).map((e) => JSON.stringify(e));

  it('two queries of one agency about Aoyama-san (same code, idempotency keys) share only what a query about someone else shares too', async () => {
    const other = await issuePerson(hub);
    const otherCode = await acquire(hub, pension, other.individualNumber);
    // Answered too, so that the comparison query has the same shape as Aoyama-san's.
    muroranNode.behaviours.set(await acquire(hub, muroran, other.individualNumber), { answer: { 'local-tax': { fiscalYear: 2026, taxableIncome: 1 } } });
    const serialOf = async (code: string, key: string) => (await query(pension, { code }, { 'idempotency-key': key })).json<{ serial: string }>().serial;
    const [a1, a2, k] = [await serialOf(codeA, 'i10-a1'), await serialOf(codeA, 'i10-a2'), await serialOf(otherCode, 'i10-k')];
    const all = async (serial: string) => new Set((await envelopes(serial)).flatMap((t) => [...values(t)]));
    const [first, second, someoneElse] = [await all(a1), await all(a2), await all(k)];
    const personal = [...first].filter((v) => second.has(v) && !someoneElse.has(v));
    expect(personal).toEqual([]);
    // Not vacuous: the two share public values (agencies, procedure, items, table version).
    expect([...first].filter((v) => second.has(v))).toEqual(expect.arrayContaining([PENSION, MURORAN_CITY, PROCEDURE]));
  });
});

describe('I4: no My Number or resident record code in linkage events, the store file or Redis', () => {
  it('finds none in any linkage event, in the raw SQLite files, or in the mapper\'s Redis keys', async () => {
    const events = await hub.store.readAll({ fromPosition: 0, maxCount: 100_000 });
    const linkage = events.filter((e) => /^(Query|Provision|AgencyCode)/.test(e.type));
    expect(linkage.length).toBeGreaterThan(20);
    const text = JSON.stringify(linkage);
    for (const n of [...numbers, ...residents]) expect(text).not.toContain(n);
    const files = readdirSync(hub.dataDir).filter((f) => f.startsWith('ledger.sqlite')).map((f) => readFileSync(join(hub.dataDir, f)));
    expect(files.length).toBeGreaterThan(0);
    for (const bytes of files) for (const n of [...numbers, ...residents]) expect(bytes.includes(Buffer.from(n))).toBe(false);

    // The mapper's Redis keyspace: every key and value, as bytes.
    const ready = (await hub.get('/health/ready')).json<{ codeMapper: { mode: string } }>();
    expect(ready.codeMapper.mode).toBe('redis');
    const client = createClient({ url: 'redis://127.0.0.1:6379' }).withTypeMapping({ [RESP_TYPES.BLOB_STRING]: Buffer });
    await client.connect();
    try {
      const prefix = hub.config.linkage.redisPrefix!;
      const dump: Buffer[] = [];
      for await (const keys of client.scanIterator({ MATCH: `${prefix}:*`, COUNT: 1000 })) {
        for (const key of keys) {
          dump.push(Buffer.from(String(key)));
          const type = String(await client.type(key));
          if (type === 'string') dump.push((await client.get(key)) as unknown as Buffer);
          if (type === 'hash') for (const [f, v] of Object.entries((await client.hGetAll(key)) as Record<string, unknown>)) dump.push(Buffer.from(f), Buffer.from(v as Buffer));
        }
      }
      expect(dump.length).toBeGreaterThan(2);
      const all = Buffer.concat(dump);
      for (const n of [...numbers, ...residents]) expect(all.includes(Buffer.from(n))).toBe(false);
    } finally {
      await client.close();
    }
  });
});
