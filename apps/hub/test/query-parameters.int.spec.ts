import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PROBLEM_CATALOG } from '../src/http/problem-catalog.js';
import { MURORAN_CITY, bearer, issuePerson, registerAgency, type Agency } from './support/linkage-fixture.js';
import { expectProblem } from './support/problem-assertions.js';
import { startTestHub, type TestHub, expectNothingButRefusals } from './support/test-hub.js';

/** Paging and date parameters of every GET route: a wrong one is a 400 naming it, never a 500. */

let hub: TestHub;
let muroran: Agency;
let citizen: { citizenSecret: string };

beforeAll(async () => {
  hub = await startTestHub();
  muroran = await registerAgency(hub, MURORAN_CITY, 'municipality', 'http://127.0.0.1:9');
  citizen = await issuePerson(hub);
});
afterAll(async () => {
  await hub?.dispose();
});

/** The credential each GET route answers (the parameters are judged before it is, but the test should not rely on that). */
function credentialFor(path: string): Record<string, string> {
  if (path.startsWith('/v1/agencies/me/')) return bearer(muroran.token);
  if (path.startsWith('/v1/citizens/me/')) return bearer(citizen.citizenSecret);
  if (path === '/v1/events' || path === '/v1/audit/entries') return hub.auditor;
  return {};
}

async function refused(url: string, field: string, message?: RegExp): Promise<void> {
  const before = await hub.head();
  const path = url.split('?')[0]!;
  const problem = expectProblem(await hub.get(url, credentialFor(path)), 400, 'VALIDATION_FAILED');
  expect(problem['errors'], url).toEqual([{ field, message: message === undefined ? expect.any(String) : expect.stringMatching(message) }]);
  await expectNothingButRefusals(hub, before);
}

describe('GET /v1/agencies/me/provision-records and /statistics', () => {
  it('refuses an impossible date, a repeated parameter and an undecodable cursor, naming the parameter', async () => {
    const records = '/v1/agencies/me/provision-records';
    await refused(`${records}?to=2026-13-45T99:99:99Z`, 'to', /^has month 13; months are 01 to 12$/);
    await refused(`${records}?from=2026-02-29T00:00:00Z`, 'from', /^has day 29; 2026-02 has days 01 to 28$/);
    await refused(`${records}?from=2026-04-01T24:00:00%2B09:00`, 'from', /^has time 24:00:00/);
    await refused(`${records}?to=2026-04-01T00:00:00%2B24:00`, 'to', /^has offset \+24:00/);
    await refused(`${records}?to=yesterday`, 'to', /^must be an RFC 3339 date and time with an offset/);
    await refused(`${records}?after=a&after=b`, 'after', /^must be given once; it was given 2 times$/);
    await refused(`${records}?after=zzzzzzzz`, 'after', /^must be the `next` value of the previous page, unchanged$/);
    await refused(`${records}?limit=1001`, 'limit', /^must be an integer from 1 to 1000$/);
    await refused(`${records}?limit=1e3`, 'limit');
    await refused(`${records}?role=auditor`, 'role');
    await refused(`${records}?bogus=1`, 'bogus', /^is not a known field$/);
    await refused('/v1/agencies/me/statistics?month=2026-13', 'month', /^must be a month as YYYY-MM/);
    await refused('/v1/agencies/me/statistics?month=2026-01&month=2026-02', 'month', /given 2 times/);
  });

  it('still answers real instants (leap day, offsets, fractions) and its own cursor', async () => {
    const ok = await hub.get('/v1/agencies/me/provision-records?from=2024-02-29T23:59:59.999%2B09:00&to=2099-12-31T00:00:00Z&limit=1&after=1767225600000.20260101010000000001', bearer(muroran.token));
    expect(ok.statusCode, ok.body).toBe(200);
    expect(ok.json()).toEqual({ records: [] });
  });
});

describe('every query parameter of every GET route', () => {
  it('is refused given twice, or holding a NUL, or named __proto__ or constructor: 400 naming it, nothing appended', async () => {
    const doc = (await hub.get('/docs/json')).json<{ paths: Record<string, Record<string, { parameters?: { name: string; in: string; required?: boolean }[] }>> }>();
    const pathValues: Record<string, string> = { size: '1', number: '3430001012345', agencyId: MURORAN_CITY };
    // Valid values of the required parameters, so that only the one under test is wrong.
    const validValues: Record<string, string> = { from: '0', to: '0' };
    const checked: string[] = [];
    for (const [template, operations] of Object.entries(doc.paths)) {
      const get = operations['get'];
      if (get === undefined) continue;
      const path = template.replace(/\{(\w+)\}/g, (_m, name: string) => pathValues[name]!);
      const query = (get.parameters ?? []).filter((p) => p.in === 'query');
      const others = (name: string) => query.filter((p) => p.required === true && p.name !== name).map((p) => `&${p.name}=${validValues[p.name]!}`).join('');
      for (const { name } of query) {
        await refused(`${path}?${name}=1&${name}=2${others(name)}`, name, /^must be given once; it was given 2 times$/);
        await refused(`${path}?${name}=%00${others(name)}`, name);
        checked.push(`${path}?${name}`);
      }
      await refused(`${path}?__proto__=1${others('')}`, '__proto__', /^is not a parameter of any route; remove it$/);
      await refused(`${path}?constructor=1${others('')}`, 'constructor');
    }
    expect(checked).toEqual(
      expect.arrayContaining([
        ...['role', 'from', 'to', 'limit', 'after'].map((n) => `/v1/agencies/me/provision-records?${n}`),
        '/v1/agencies/me/statistics?month',
        '/v1/citizens/me/notices?limit',
        '/v1/citizens/me/notices?before',
        ...['from', 'to', 'agencyId', 'limit', 'after'].map((n) => `/v1/citizens/me/provision-records?${n}`),
        ...['from', 'to', 'agencyId'].map((n) => `/v1/citizens/me/provision-records.csv?${n}`),
        '/v1/citizens/me/statistics?from',
        '/v1/citizens/me/statistics?to',
        ...['name', 'location', 'kind', 'limit', 'after'].map((n) => `/v1/corporate-numbers?${n}`),
        ...['name', 'location', 'kind'].map((n) => `/v1/corporate-numbers.csv?${n}`),
        '/v1/events?from',
        '/v1/events?limit',
        ...['position', 'serial', 'size'].map((n) => `/v1/audit/proofs/inclusion?${n}`),
        '/v1/audit/proofs/consistency?from',
        '/v1/audit/proofs/consistency?to',
        '/v1/audit/entries?from',
        '/v1/audit/entries?limit',
        '/v1/audit/checkpoint?format',
        '/v1/audit/checkpoints/1?format',
      ]),
    );
  });
});

describe('generated query strings on every GET route', () => {
  it('never answer 5xx; every refusal is problem+json with a catalog code; nothing is appended', async () => {
    const doc = (await hub.get('/docs/json')).json<{ paths: Record<string, Record<string, { parameters?: { name: string; in: string }[] }>> }>();
    const routes = Object.entries(doc.paths).flatMap(([template, ops]) =>
      ops['get'] === undefined ? [] : [{ template, query: (ops['get'].parameters ?? []).filter((p) => p.in === 'query').map((p) => p.name) }],
    );
    const text = fc.oneof(
      fc.string({ maxLength: 30 }),
      fc.constantFrom('', '0', '-1', '1e3', '9007199254740993', '99999999999999999999', '2026-02-29T00:00:00Z', '2024-02-29T24:00:00Z', '1767225600000.20260101010000000001', '-0.0', 'NaN', '%00', '%ZZ', '%E2%80%8B', '%ED%A0%80', 'a'.repeat(3000)),
    );
    const head = await hub.head();
    for (const { template, query } of routes) {
      const path = template.replace(/\{(\w+)\}/g, (_m, name: string) => ({ size: '1', number: '3430001012345', agencyId: MURORAN_CITY })[name]!);
      await fc.assert(
        fc.asyncProperty(fc.dictionary(fc.constantFrom(...query, 'x'), text, { maxKeys: 4 }), async (params) => {
          const qs = Object.entries(params).map(([k, v]) => `${k}=${/%/.test(v) ? v : encodeURIComponent(v)}`).join('&');
          const res = await hub.get(`${path}?${qs}`, credentialFor(path));
          const what = `GET ${path}?${qs} → ${res.statusCode} ${res.body.slice(0, 200)}`;
          expect(res.statusCode, what).toBeLessThan(500);
          if (res.statusCode >= 300) {
            expect(res.headers['content-type'], what).toMatch(/^application\/problem\+json/);
            expect(Object.keys(PROBLEM_CATALOG), what).toContain(res.json<{ code: string }>().code);
          }
        }),
        { numRuns: 40 },
      );
    }
    await expectNothingButRefusals(hub, head);
  });
});
