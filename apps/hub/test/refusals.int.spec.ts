import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { agencyCodeFromRandomBytes } from '#linkage';
import type { RecordedEvent } from '#ledger';
import { Refusals } from '../src/refusals/refusals.service.js';
import { expectProblem } from './support/problem-assertions.js';
import { JASSO, MURORAN_CITY, PENSION, acquire, bearer, issuePerson, operatorToken, registerAgency, startLinkageHub, type Agency } from './support/linkage-fixture.js';
import { MURORAN, SAPPORO, nextResidentRecordCode, type TestHub } from './support/test-hub.js';

/**
 * I6: every refusal is an event. One test per refusal path: the status, the problem code, exactly one
 * refusal event and nothing else. Callers the hub cannot identify are counted per source and interval.
 */
let hub: TestHub;
let pension: Agency;
let muroran: Agency;
let sapporo: Agency;
let jasso: Agency;
let aoyama: { individualNumber: string; citizenSecret: string; residentRecordCode: string };
let pensionCode: string;

beforeAll(async () => {
  // A long interval: the tests flush the counts of unidentified callers themselves.
  hub = await startLinkageHub({ env: { HUB_UNIDENTIFIED_REFUSALS_INTERVAL_MS: '3600000', HUB_UNIDENTIFIED_REFUSALS_MAX_SOURCES: '3', HUB_UNIDENTIFIED_REFUSALS_PER_SOURCE: '25', HUB_TRUSTED_PROXIES: '192.0.2.10,2001:db8::/32' } });
  pension = await registerAgency(hub, PENSION, 'pension-service', 'http://127.0.0.1:9');
  muroran = await registerAgency(hub, MURORAN_CITY, 'municipality', 'http://127.0.0.1:9');
  jasso = await registerAgency(hub, JASSO, 'jasso', 'http://127.0.0.1:9');
  const operator = bearer(operatorToken(hub));
  const registered = await hub.post('/v1/agencies', { agencyId: 'sapporo-city', name: '札幌市', kind: 'municipality', endpoint: 'http://127.0.0.1:9', publicKey: pension.keys.publicKey, municipalityCode: SAPPORO }, operator);
  expect(registered.statusCode, registered.body).toBe(201);
  sapporo = { agencyId: 'sapporo-city', token: registered.json<{ token: string }>().token, keys: pension.keys } as Agency;
  aoyama = await issuePerson(hub);
  pensionCode = await acquire(hub, pension, aoyama.individualNumber);
  expect((await hub.post(`/v1/agencies/${JASSO}/revocations`, { reason: 'merged' }, operator)).statusCode).toBe(201);
});
afterAll(async () => {
  await hub?.dispose();
});

const flush = () => hub.app.get(Refusals).flush();

/** Runs a request and answers the events it appended. */
async function appendedBy<T>(request: () => Promise<T>): Promise<{ result: T; events: readonly RecordedEvent[] }> {
  await flush();
  const before = await hub.head();
  const result = await request();
  return { result, events: await hub.store.readAll({ fromPosition: before }) };
}

/** Exactly one RequestRefused, ending its own serial, named by the problem. */
function expectOneRefusal(problem: Record<string, unknown>, events: readonly RecordedEvent[], data: Record<string, unknown>): RecordedEvent {
  expect(events.map((e) => e.type)).toEqual(['RequestRefused']);
  const [e] = events;
  expect(e).toMatchObject({ type: 'RequestRefused', terminal: 'denied', serial: problem['serial'], data });
  return e!;
}

const query = (token: string, body: Record<string, unknown>, url = '/v1/queries') =>
  hub.post(url, { providerAgencyId: MURORAN_CITY, procedureCode: 'pension-award-claim', itemCodes: ['local-tax'], ...body }, bearer(token));

describe('requests from callers the hub cannot identify: counted per source and interval, never one event each', () => {
  it('an unknown token, a malformed header or none: 401, nothing appended at once; the interval\'s flush records one event per source with the count', async () => {
    const { events, result } = await appendedBy(async () => {
      const answers = [];
      for (let i = 0; i < 20; i++) answers.push(await hub.inject({ method: 'POST', url: '/v1/queries/bulk', headers: { 'content-type': 'application/json', ...bearer('an-unknown-token-of-nobody-000') }, payload: JSON.stringify({ codes: Array(1000).fill(pensionCode), providerAgencyId: MURORAN_CITY }), remoteAddress: '198.51.100.7' }));
      answers.push(await hub.inject({ method: 'POST', url: '/v1/notices', headers: { 'content-type': 'application/json', authorization: 'Basic x' }, payload: '{}', remoteAddress: '198.51.100.7' }));
      answers.push(await hub.inject({ method: 'POST', url: '/v1/agency-codes', headers: { 'content-type': 'application/json' }, payload: '{}', remoteAddress: '198.51.100.7' }));
      return answers;
    });
    for (const res of result) expectProblem(res, 401, 'UNAUTHENTICATED');
    expect(events).toEqual([]);
    const before = await hub.head();
    await flush();
    const recorded = await hub.store.readAll({ fromPosition: before });
    expect(recorded).toHaveLength(1);
    expect(recorded[0]).toMatchObject({
      type: 'UnauthenticatedRequestsRecorded',
      terminal: 'denied',
      data: { count: 22, sources: 1, reasons: { UNAUTHENTICATED: 22 }, commands: { SubmitBulkQuery: 20, SendNotice: 1, AcquireAgencyCode: 1 } },
    });
    // The source is sealed for the hub (I10); nothing is attributed to an agency.
    const text = JSON.stringify(recorded[0]);
    expect(text).not.toContain('198.51.100.7');
    expect(text).not.toContain(PENSION);
    const [opened] = await hub.ledger.readSerial(recorded[0]!.serial);
    expect(opened!.data).toMatchObject({ source: '198.51.100.7' });
  });

  it('a source past its allowance (25 here) is answered 429 with Retry-After until the interval ends, still counted, still one event; other sources are heard', async () => {
    const flood = '198.51.100.66';
    const send = (remoteAddress: string) => hub.inject({ method: 'POST', url: '/v1/queries', headers: { 'content-type': 'application/json', ...bearer('an-unknown-token-of-nobody-000') }, payload: '{}', remoteAddress });
    const { events } = await appendedBy(async () => {
      for (let i = 0; i < 25; i++) expectProblem(await send(flood), 401, 'UNAUTHENTICATED');
      for (let i = 0; i < 5; i++) {
        const res = await send(flood);
        const problem = expectProblem(res, 429, 'TOO_MANY_UNAUTHENTICATED_REQUESTS');
        // The interval is an hour here: the retry is due within it, in whole seconds.
        expect(Number(res.headers['retry-after'])).toBeGreaterThan(3000);
        expect(Number(res.headers['retry-after'])).toBeLessThanOrEqual(3600);
        expect(problem['retryAfter']).toBe(Number(res.headers['retry-after']));
      }
      // Another source is not held back by this one.
      expectProblem(await send('198.51.100.67'), 401, 'UNAUTHENTICATED');
      // A caller with a credential is never throttled by its address.
      const res = await hub.post('/v1/queries', {}, { ...bearer(pension.token) });
      expect(res.statusCode).toBe(400);
    });
    // The credentialed caller's validation refusal is its own event; the flood appended nothing yet.
    expect(events.map((e) => e.type)).toEqual(['RequestRefused']);
    const before = await hub.head();
    await flush();
    const recorded = await hub.store.readAll({ fromPosition: before });
    const counts = await Promise.all(recorded.map(async (e) => ((await hub.ledger.readSerial(e.serial))[0]!.data as { source?: string; count: number; reasons: Record<string, number> })));
    expect(counts.find((c) => c.source === flood)).toMatchObject({ count: 30, reasons: { UNAUTHENTICATED: 25, TOO_MANY_UNAUTHENTICATED_REQUESTS: 5 } });
    expect(counts.find((c) => c.source === '198.51.100.67')).toMatchObject({ count: 1 });
    // A new interval: the source is heard again.
    expectProblem(await send(flood), 401, 'UNAUTHENTICATED');
    await flush();
  });

  it('behind a trusted proxy (the portal) the source is the client it names in X-Forwarded-For; anyone else\'s header is ignored', async () => {
    const send = (remoteAddress: string, forwardedFor: string) =>
      hub.inject({ method: 'POST', url: '/v1/citizens/sessions', headers: { 'content-type': 'application/json', 'x-forwarded-for': forwardedFor }, payload: '{}', remoteAddress });
    expect((await send('192.0.2.10', '198.51.100.90')).statusCode).toBeGreaterThanOrEqual(400);
    expect((await send('198.51.100.91', '198.51.100.92')).statusCode).toBeGreaterThanOrEqual(400);
    const before = await hub.head();
    await flush();
    const recorded = await hub.store.readAll({ fromPosition: before });
    const sources = await Promise.all(recorded.map(async (e) => ((await hub.ledger.readSerial(e.serial))[0]!.data as { source?: string }).source));
    expect(sources).toContain('198.51.100.90');
    expect(sources).toContain('198.51.100.91');
    expect(sources).not.toContain('192.0.2.10');
    expect(sources).not.toContain('198.51.100.92');
  });

  it('sources beyond the limit of an interval are summed in one more event', async () => {
    for (let i = 0; i < 6; i++) {
      const res = await hub.inject({ method: 'POST', url: '/v1/queries', headers: { 'content-type': 'application/json' }, payload: '{}', remoteAddress: `203.0.113.${i + 1}` });
      expectProblem(res, 401, 'UNAUTHENTICATED');
    }
    const before = await hub.head();
    await flush();
    const recorded = await hub.store.readAll({ fromPosition: before });
    // HUB_UNIDENTIFIED_REFUSALS_MAX_SOURCES is 3 here: three sources one by one, the other three summed.
    expect(recorded.map((e) => (e.data as { sources: number }).sources)).toEqual([1, 1, 1, 3]);
    expect(recorded.map((e) => (e.data as { count: number }).count)).toEqual([1, 1, 1, 3]);
  });
});

describe('requests from callers the hub can identify: one RequestRefused each, attributed to the proven agency only', () => {
  it('a revoked agency\'s credential: 401 CREDENTIAL_REVOKED, recorded as that agency\'s, with the credential revoked', async () => {
    const { result, events } = await appendedBy(() => query(jasso.token, { code: pensionCode }));
    const problem = expectProblem(result, 401, 'CREDENTIAL_REVOKED');
    expectOneRefusal(problem, events, { command: 'SubmitQuery', reason: 'CREDENTIAL_REVOKED', callerKind: 'agency', agencyId: JASSO, credential: 'revoked' });
  });

  it('a valid credential naming another agency, in a bulk of 1,000: 403 CREDENTIAL_MISMATCH, one event, never in the named agency\'s records or statistics', async () => {
    const records = async () => (await hub.get('/v1/agencies/me/provision-records?limit=1000', bearer(pension.token))).json<{ records: unknown[] }>().records.length;
    const stats = async () => (await hub.get('/v1/agencies/me/statistics', bearer(pension.token))).body;
    const [recordsBefore, statsBefore] = [await records(), await stats()];
    const codes = Array.from({ length: 1000 }, () => agencyCodeFromRandomBytes(randomBytes(16)));
    const { result, events } = await appendedBy(() => query(muroran.token, { codes, requesterAgencyId: PENSION }, '/v1/queries/bulk'));
    const problem = expectProblem(result, 403, 'CREDENTIAL_MISMATCH');
    expectOneRefusal(problem, events, { command: 'SubmitBulkQuery', reason: 'CREDENTIAL_MISMATCH', agencyId: MURORAN_CITY, claimedAgencyId: PENSION, credential: 'current' });
    expect(await records()).toBe(recordsBefore);
    expect(await stats()).toBe(statsBefore);
  });

  it('a notice addressed with a code not issued to the sender: 404 UNKNOWN_CODE, the presented code sealed for the hub', async () => {
    const { result, events } = await appendedBy(() => hub.post('/v1/notices', { code: pensionCode, title: 'お知らせ', body: '本文' }, bearer(muroran.token)));
    const problem = expectProblem(result, 404, 'UNKNOWN_CODE');
    const e = expectOneRefusal(problem, events, { command: 'SendNotice', reason: 'UNKNOWN_CODE', agencyId: MURORAN_CITY });
    expect(JSON.stringify(e)).not.toContain(pensionCode);
    const [opened] = await hub.ledger.readSerial(e.serial);
    expect(opened!.data).toMatchObject({ presented: { code: pensionCode } });
  });

  it('an agency code request with an unknown number: 404 UNKNOWN_INDIVIDUAL_NUMBER, the number kept nowhere', async () => {
    const unknown = '123456789018';
    const { result, events } = await appendedBy(() => hub.post('/v1/agency-codes', { individualNumber: unknown, acquisitionNumber: 'JPS-1' }, bearer(pension.token)));
    const problem = expectProblem(result, 404, 'UNKNOWN_INDIVIDUAL_NUMBER');
    const e = expectOneRefusal(problem, events, { command: 'AcquireAgencyCode', reason: 'UNKNOWN_INDIVIDUAL_NUMBER', agencyId: PENSION });
    const [opened] = await hub.ledger.readSerial(e.serial);
    expect(JSON.stringify(opened)).not.toContain(unknown);
  });

  it('numbering another municipality\'s resident: 403 FORBIDDEN', async () => {
    const { result, events } = await appendedBy(() => hub.post('/v1/individual-numbers', { residentRecordCode: nextResidentRecordCode(), municipalityCode: MURORAN }, bearer(sapporo.token)));
    const problem = expectProblem(result, 403, 'FORBIDDEN');
    expectOneRefusal(problem, events, { command: 'IssueIndividualNumber', reason: 'FORBIDDEN', agencyId: 'sapporo-city' });
  });

  it('numbering a resident already numbered: 409 RESIDENT_ALREADY_NUMBERED', async () => {
    const { result, events } = await appendedBy(() => hub.post('/v1/individual-numbers', { residentRecordCode: aoyama.residentRecordCode, municipalityCode: MURORAN }, bearer(operatorToken(hub))));
    const problem = expectProblem(result, 409, 'RESIDENT_ALREADY_NUMBERED');
    const e = expectOneRefusal(problem, events, { command: 'IssueIndividualNumber', reason: 'RESIDENT_ALREADY_NUMBERED', callerKind: 'operator' });
    expect(JSON.stringify(e)).not.toContain(aoyama.residentRecordCode);
  });

  it('a malformed command from an agency: 400 VALIDATION_FAILED, the fields named, never their values', async () => {
    const { result, events } = await appendedBy(() => query(pension.token, { code: 'not-a-code', itemCodes: [] }));
    const problem = expectProblem(result, 400, 'VALIDATION_FAILED');
    const e = expectOneRefusal(problem, events, { command: 'SubmitQuery', reason: 'VALIDATION_FAILED', agencyId: PENSION });
    expect((e.data as { fields: string[] }).fields).toEqual(expect.arrayContaining(['code', 'itemCodes']));
    expect(JSON.stringify(e)).not.toContain('not-a-code');
  });

  it('an operator command from an agency: 403 FORBIDDEN', async () => {
    const { result, events } = await appendedBy(() => hub.post('/v1/corporate-numbers', { name: '株式会社テスト', location: '北海道室蘭市', kind: 'stock-company' }, bearer(pension.token)));
    const problem = expectProblem(result, 403, 'FORBIDDEN');
    expectOneRefusal(problem, events, { command: 'DesignateCorporateNumber', reason: 'FORBIDDEN', agencyId: PENSION });
  });

  it('a query the authorization table does not allow: its own QueryDenied (the domain\'s refusal), not a second event', async () => {
    const { result, events } = await appendedBy(() => query(pension.token, { code: pensionCode, itemCodes: ['no-such-item'] }));
    const problem = expectProblem(result, 403, 'ITEM_NOT_ALLOWED');
    expect(events.map((e) => e.type)).toEqual(['QueryDenied']);
    expect(events[0]!.serial).toBe(problem['serial']);
  });
});
