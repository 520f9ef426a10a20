import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bearer, issuePerson, registerAgency } from './support/linkage-fixture.js';
import { expectProblem } from './support/problem-assertions.js';
import { MURORAN, nextResidentRecordCode, startTestHub, type TestHub, expectNothingButRefusals } from './support/test-hub.js';

const ISSUE = '/v1/individual-numbers';

describe('the HTTP edge', () => {
  let hub: TestHub;
  beforeAll(async () => {
    hub = await startTestHub({ env: { HUB_BODY_LIMIT_BYTES: '2048' } });
  });
  afterAll(async () => {
    await hub.dispose();
  });

  async function refusedWithoutEffect(request: () => Promise<import('light-my-request').Response>, status: number, code: string) {
    const before = await hub.head();
    const res = await request();
    const problem = expectProblem(res, status, code);
    await expectNothingButRefusals(hub, before);
    return problem;
  }

  describe('problem+json for what never reaches a handler', () => {
    it('400 MALFORMED_JSON for a body that is not JSON', async () => {
      const problem = await refusedWithoutEffect(
        () => hub.inject({ method: 'POST', url: ISSUE, headers: { 'content-type': 'application/json' }, payload: '{"residentRecordCode": ' }),
        400,
        'MALFORMED_JSON',
      );
      expect(problem['instance']).toBe(ISSUE);
    });

    it('400 MALFORMED_JSON for an empty JSON body', async () => {
      await refusedWithoutEffect(() => hub.inject({ method: 'POST', url: ISSUE, headers: { 'content-type': 'application/json' }, payload: '' }), 400, 'MALFORMED_JSON');
    });

    it('400 FORBIDDEN_KEY naming every __proto__, constructor or prototype key of well-formed JSON, however it is spelt', async () => {
      const payload = '{"__proto__":{"x":1},"residentRecordCode":"12345678901","a":[{"constructor":{"prototype":{}}}]}';
      const problem = await refusedWithoutEffect(() => hub.inject({ method: 'POST', url: ISSUE, headers: { 'content-type': 'application/json', ...hub.operator }, payload }), 400, 'FORBIDDEN_KEY');
      expect(problem['errors']).toEqual([
        { field: '__proto__', message: 'is a key the hub refuses (it could change what objects inherit); remove "__proto__"' },
        { field: 'a[0].constructor', message: expect.stringContaining('remove "constructor"') },
        { field: 'a[0].constructor.prototype', message: expect.stringContaining('remove "prototype"') },
      ]);
      expect(problem['detail']).toBe(
        'the body holds the keys __proto__, a[0].constructor, a[0].constructor.prototype; __proto__, constructor and prototype are refused anywhere in a body: remove them',
      );
      const escaped = await refusedWithoutEffect(
        () => hub.inject({ method: 'POST', url: ISSUE, headers: { 'content-type': 'application/json', ...hub.operator }, payload: '{"\\u005f_proto__":{"isAdmin":true}}' }),
        400,
        'FORBIDDEN_KEY',
      );
      expect(escaped['errors']).toEqual([expect.objectContaining({ field: '__proto__' })]);
    });

    it('400 VALIDATION_FAILED for JSON nested deeper than any request, before anything walks it', async () => {
      const deep = `{"residentRecordCode":${'['.repeat(20_000)}${']'.repeat(20_000)}}`;
      const res = await hub.inject({ method: 'POST', url: ISSUE, headers: { 'content-type': 'application/json', ...hub.operator }, payload: deep });
      expect(res.statusCode).toBe(413); // over this hub's 2 KiB limit; the same body under a larger limit:
      const big = await startTestHub({ env: { HUB_BODY_LIMIT_BYTES: '65536' } });
      try {
        const problem = expectProblem(await big.inject({ method: 'POST', url: ISSUE, headers: { 'content-type': 'application/json', ...big.operator }, payload: deep }), 400, 'VALIDATION_FAILED');
        expect(problem['errors']).toEqual([{ field: `residentRecordCode${'[0]'.repeat(31)}`, message: expect.stringMatching(/^nests deeper than 32 levels/) }]);
        await expectNothingButRefusals(big, 0);
      } finally {
        await big.dispose();
      }
    });

    it('400 VALIDATION_FAILED for JSON that is not an object', async () => {
      const problem = await refusedWithoutEffect(() => hub.post(ISSUE, ['12345678901', MURORAN], hub.operator), 400, 'VALIDATION_FAILED');
      expect(problem['errors']).toEqual([{ field: '(body)', message: 'the request body must be a JSON object' }]);
    });

    it('413 PAYLOAD_TOO_LARGE for a body over HUB_BODY_LIMIT_BYTES', async () => {
      const problem = await refusedWithoutEffect(
        () => hub.post(ISSUE, { residentRecordCode: nextResidentRecordCode(), municipalityCode: MURORAN, padding: 'x'.repeat(4096) }, hub.operator),
        413,
        'PAYLOAD_TOO_LARGE',
      );
      expect(problem['detail']).toBe('the request body exceeds the limit of 2048 bytes');
    });

    it('415 UNSUPPORTED_MEDIA_TYPE for a body that is not application/json', async () => {
      for (const contentType of ['text/plain', 'application/x-www-form-urlencoded', 'application/xml']) {
        const problem = await refusedWithoutEffect(
          () => hub.inject({ method: 'POST', url: ISSUE, headers: { 'content-type': contentType }, payload: 'residentRecordCode=1' }),
          415,
          'UNSUPPORTED_MEDIA_TYPE',
        );
        expect(problem['detail']).toContain(contentType);
      }
    });

    it('accepts application/json with a charset parameter', async () => {
      const res = await hub.inject({
        method: 'POST',
        url: ISSUE,
        headers: { 'content-type': 'application/json; charset=utf-8', ...hub.operator },
        payload: JSON.stringify({ residentRecordCode: nextResidentRecordCode(), municipalityCode: MURORAN }),
      });
      expect(res.statusCode).toBe(201);
    });

    it('404 NOT_FOUND for an unknown route, 405 METHOD_NOT_ALLOWED for a known path with another method', async () => {
      expect(expectProblem(await hub.get('/v1/nothing-here?x=1'), 404, 'NOT_FOUND')).toMatchObject({ instance: '/v1/nothing-here', detail: 'no route for GET /v1/nothing-here' });
      await refusedWithoutEffect(() => hub.inject({ method: 'DELETE', url: ISSUE }), 405, 'METHOD_NOT_ALLOWED');
    });

    it('400 for an X-Correlation-Id that is not 1-200 visible ASCII characters, answered with a fresh one', async () => {
      const res = await hub.get('/health/live', { 'x-correlation-id': 'has space' });
      expect(expectProblem(res, 400, 'VALIDATION_FAILED')['errors']).toEqual([{ field: 'X-Correlation-Id', message: expect.any(String) }]);
      expect(res.headers['x-correlation-id']).toMatch(/^[0-9a-f-]{36}$/);
    });
  });

  describe('correlation ids', () => {
    it('echoes the caller\'s id (or the hub\'s), and gives the hub\'s own request id, on successes and problems alike', async () => {
      const uuid = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
      const given = await hub.get('/health/live', { 'x-correlation-id': 'abc-123' });
      expect(given.headers['x-correlation-id']).toBe('abc-123');
      expect(given.headers['x-request-id']).toMatch(uuid);
      const fresh = await hub.get('/health/live');
      expect(fresh.headers['x-correlation-id']).toMatch(uuid);
      expect(fresh.headers['x-request-id']).toBe(fresh.headers['x-correlation-id']);
      const problem = await hub.get('/nope', { 'x-correlation-id': 'corr-404' });
      expect(problem.headers['x-correlation-id']).toBe('corr-404');
      // Problems, logs and events quote the hub's id: what a caller sends never reaches them as given (I10).
      expect(problem.json()).toMatchObject({ correlationId: problem.headers['x-request-id'] });
    });
  });

  describe('GET /v1/events', () => {
    it('pages through the log as stored, with nextPosition and head', async () => {
      for (let i = 0; i < 3; i++) await hub.post(ISSUE, { residentRecordCode: nextResidentRecordCode(), municipalityCode: MURORAN }, hub.operator);
      const head = await hub.head();
      const all = await hub.store.readAll();
      const page1 = await hub.get('/v1/events?from=0&limit=2', hub.auditor);
      expect(page1.statusCode).toBe(200);
      expect(page1.json()).toEqual({ events: JSON.parse(JSON.stringify(all.slice(0, 2))), nextPosition: 2, head });
      const page2 = page1.json<{ nextPosition: number }>();
      const rest = (await hub.get(`/v1/events?from=${page2.nextPosition}&limit=1000`, hub.auditor)).json<{ events: { position: number }[]; nextPosition: number }>();
      expect(rest.events.map((e) => e.position)).toEqual(all.slice(2).map((e) => e.position));
      expect(rest.nextPosition).toBe(head);
      expect((await hub.get(`/v1/events?from=${head + 10}`, hub.auditor)).json()).toEqual({ events: [], nextPosition: head + 10, head });
      expect((await hub.get('/v1/events', hub.auditor)).json<{ events: unknown[] }>().events).toHaveLength(Math.min(head, 100));
    });

    it('answers the raw log to the auditor only: 401 without a token or with one nobody holds, 403 for another principal', async () => {
      // A principal registered a moment ago is known: 403, not 401.
      const agency = await registerAgency(hub, 'raw-log-reader', 'municipality', 'http://127.0.0.1:9');
      const citizen = await issuePerson(hub);
      for (const url of ['/v1/events', '/v1/audit/entries']) {
        expectProblem(await hub.get(url), 401, 'UNAUTHENTICATED');
        expectProblem(await hub.get(url, bearer('not-the-auditor-token-0000000')), 401, 'UNAUTHENTICATED');
        for (const known of [hub.operator, bearer(agency.token), bearer(citizen.citizenSecret)]) {
          expect(expectProblem(await hub.get(url, known), 403, 'FORBIDDEN')['detail'], url).toBe('only the auditor may read raw events; present the token of keys/auditor.token.json');
        }
        expect((await hub.get(url, hub.auditor)).statusCode).toBe(200);
      }
    });

    it('refuses a bad position or limit with 400 naming the parameter', async () => {
      for (const [query, field] of [['limit=0', 'limit'], ['limit=1001', 'limit'], ['from=-1', 'from'], ['from=abc', 'from'], ['bogus=1', 'bogus']] as const) {
        const problem = expectProblem(await hub.get(`/v1/events?${query}`, hub.auditor), 400, 'VALIDATION_FAILED');
        expect(problem['errors']).toEqual([expect.objectContaining({ field })]);
      }
    });
  });

  describe('health', () => {
    it('live answers 200; ready reports the head, open serials and recovery', async () => {
      expect((await hub.get('/health/live')).json()).toEqual({ status: 'live' });
      const ready = await hub.get('/health/ready');
      expect(ready.statusCode).toBe(200);
      expect(ready.json()).toEqual({
        status: 'ready',
        head: await hub.head(),
        openSerials: 0,
        voidedAtStartup: 0,
        codeMapper: { mode: 'store' },
        // No Redis: the rate limits are this hub's own.
        rateLimits: { mode: 'local', shared: false, fallbacks: 0 },
        // The log was empty when the hub started and checked it.
        selfCheck: { status: 'passed', verifiedThrough: 0, run: 'start', runId: expect.any(String), checked: 0, total: 0 },
        // The embedded SQLite hub is the only writer of its log.
        role: 'leader',
      });
    });
  });

  describe('OpenAPI', () => {
    it('serves Swagger UI at /docs and documents every route with its DTOs and problem answers at /docs/json', async () => {
      const ui = await hub.get('/docs');
      expect(ui.statusCode).toBe(200);
      expect(ui.headers['content-type']).toMatch(/text\/html/);
      const doc = (await hub.get('/docs/json')).json<{
        paths: Record<string, Record<string, { responses: Record<string, { content?: Record<string, unknown> }>; parameters?: { name: string }[] }>>;
        components: { schemas: Record<string, unknown> };
      }>();
      expect(Object.keys(doc.paths).sort()).toEqual(
        [
          '/health/live',
          '/health/ready',
          '/v1/agencies',
          '/v1/agencies/{agencyId}',
          '/v1/agencies/{agencyId}/credential-rotations',
          '/v1/agencies/{agencyId}/certificates',
          '/v1/agencies/{agencyId}/certificates/{fingerprint}/revocations',
          '/v1/agencies/{agencyId}/revocations',
          '/v1/agency-codes',
          '/v1/agencies/me/provision-records',
          '/v1/agencies/me/statistics',
          '/v1/citizens/me/provision-records',
          '/v1/citizens/me/notices',
          '/v1/citizens/me/notices/{noticeId}/read',
          '/v1/citizens/me/provision-records.csv',
          '/v1/citizens/me/self-information-requests',
          '/v1/citizens/me/self-information/options',
          '/v1/citizens/me/statistics',
          '/v1/citizens/enrolment-secrets',
          '/v1/citizens/me/passkeys',
          '/v1/citizens/me/passkeys/{passkeyId}',
          '/v1/citizens/me/session',
          '/v1/citizens/passkeys',
          '/v1/citizens/passkeys/registration-options',
          '/v1/citizens/sessions',
          '/v1/citizens/sessions/options',
          '/v1/notices',
          '/v1/notice-batches',
          '/v1/notice-batches/{batchId}',
          '/v1/subscriptions',
          '/v1/subscriptions/{subscriptionId}',
          '/v1/citizens/me/subscriptions',
          '/v1/updates',
          '/v1/pushes',
          '/v1/citizens/me/push-records',
          '/v1/agencies/me/push-records',
          '/v1/hub/keys',
          '/v1/key-rotations/provision-signing',
          '/v1/key-rotations/code',
          '/v1/key-rotations/operator-credential',
          '/v1/key-rotations/auditor-credential',
          '/v1/key-rotations/key-encryption',
          '/v1/key-rotations/tls-ca',
          '/v1/authorization-tables',
          '/v1/authorization-tables/validations',
          '/v1/authorization-tables/{version}/withdrawal',
          '/v1/queries',
          '/v1/queries/bulk',
          '/v1/corporate-numbers',
          '/v1/corporate-numbers.csv',
          '/v1/corporate-numbers/{number}',
          '/v1/corporate-numbers/{number}/changes',
          '/v1/corporate-numbers/{number}/closures',
          '/v1/events',
          '/v1/individual-numbers',
          '/v1/individual-numbers/changes',
          '/v1/retention-sweeps',
          '/v1/erasures',
          ...['/checkpoint', '/checkpoints/{size}', '/verifier-key', '/verifier-keys', '/checkpoint-key-rotations', '/proofs/inclusion', '/proofs/consistency', '/entries', '/self-checks', '/self-checks/{id}'].map((p) => `/v1/audit${p}`),
        ].sort(),
      );
      const issue = doc.paths['/v1/individual-numbers']!['post']!;
      expect(Object.keys(issue.responses).sort()).toEqual(['201', '400', '401', '403', '408', '409', '413', '415', '422', '429', '500', '503']);
      expect(issue.responses['409']!.content).toHaveProperty(['application/problem+json']);
      expect(issue.parameters?.map((p) => p.name)).toEqual(expect.arrayContaining(['Idempotency-Key', 'X-Correlation-Id']));
      expect(Object.keys(doc.paths['/v1/corporate-numbers/{number}']!['get']!.responses).sort()).toEqual(['200', '400', '404', '422', '429', '500', '503']);
      expect(doc.paths['/v1/corporate-numbers']!['get']!.parameters?.map((p) => p.name).sort()).toEqual(['after', 'kind', 'limit', 'location', 'name']);
      expect(doc.paths['/v1/corporate-numbers.csv']!['get']!.responses['200']!.content).toHaveProperty(['text/csv']);
      expect(Object.keys(doc.components.schemas)).toEqual(
        expect.arrayContaining([
          'IssueIndividualNumberRequest',
          'IssuedIndividualNumberResponse',
          'ChangeIndividualNumberRequest',
          'ChangedIndividualNumberResponse',
          'DesignateCorporateNumberRequest',
          'DesignatedCorporateNumberResponse',
          'CorporateNumberResponse',
          'CorporatePageResponse',
          'CorporationResponse',
          'EventsPageResponse',
          'ProblemDto',
        ]),
      );
    });
  });
});

describe('unexpected errors', () => {
  let hub: TestHub;
  beforeAll(async () => {
    hub = await startTestHub({
      numbers: {
        individualNumber: () => {
          throw new Error('random source exploded at /srv/hub/secret-path');
        },
      },
    });
  });
  afterAll(async () => {
    await hub.dispose();
  });

  it('answers 500 INTERNAL without details, logs the error with the correlation id, and appends nothing', async () => {
    const res = await hub.post(ISSUE, { residentRecordCode: nextResidentRecordCode(), municipalityCode: MURORAN }, { ...hub.operator, 'x-correlation-id': 'corr-500' });
    const problem = expectProblem(res, 500, 'INTERNAL');
    const id = String(res.headers['x-request-id']);
    expect(problem['detail']).toBe(`an internal error occurred; quote correlation id ${id} when reporting it`);
    expect(res.body).not.toContain('exploded');
    expect(res.body).not.toContain('secret-path');
    expect(hub.logger.lines).toContainEqual({ level: 'error', message: expect.stringMatching(new RegExp(`\\[${id}\\].*random source exploded`, 's')) });
    expect(JSON.stringify(hub.logger.lines)).not.toContain('corr-500');
    await expectNothingButRefusals(hub, 0);
  });
});
