import fc from 'fast-check';
import type { Response } from 'light-my-request';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PROBLEM_CATALOG } from '../src/http/problem-catalog.js';
import { FakeProvider, MURORAN_CITY, PENSION, acquire, bearer, issuePerson, registerAgency, type Agency } from './support/linkage-fixture.js';
import { REFUSAL_EVENT_TYPES } from './support/refusal-events.js';
import { startTestHub, type TestHub } from './support/test-hub.js';

/**
 * Every write endpoint of the hub's own OpenAPI document (/docs/json), fed generated bodies: random
 * JSON, objects of the schema's property names with wrong types, huge, invisible-only and ill-formed
 * strings, deep nesting, prototype keys, out-of-range numbers, non-JSON; with the endpoint's credential,
 * another one, or none. For every answer: never a 5xx; every non-2xx is problem+json with a code of the
 * catalog; and a refused request appended at most one event, a refusal. (Some generated requests are
 * valid, e.g. a template with one optional field changed: those may succeed and append what they do.)
 * Seeded: a failure prints fast-check's seed and path; replay with FUZZ_SEED and FUZZ_PATH. FUZZ_RUNS
 * sets the runs per endpoint (250: about 10 s on two cores).
 */

const ENV = process.env;
const RUNS = Number(ENV['FUZZ_RUNS'] ?? 250);
const SEED = ENV['FUZZ_SEED'] === undefined ? undefined : Number(ENV['FUZZ_SEED']);
const PATH = ENV['FUZZ_PATH'];

let hub: TestHub;
const provider = new FakeProvider();
let pension: Agency;
let citizenSecret: string;
let individualNumber: string;
let code: string;

interface Operation {
  readonly method: string;
  readonly path: string;
  readonly properties: Readonly<Record<string, { type?: string; example?: unknown }>>;
}
let operations: Operation[] = [];

beforeAll(async () => {
  // The unidentified callers' count is flushed once a day here, not every minute: a flush landing inside a
  // request of a long run would be a second event of that request.
  hub = await startTestHub({ env: { HUB_AUTHORIZATION_TABLE_FILE: '', HUB_SELF_DISCLOSURE_TABLE_FILE: '', HUB_CHECKPOINT_EVERY_EVENTS: '1000000000', HUB_PROVIDER_TIMEOUT_MS: '500', HUB_UNIDENTIFIED_REFUSALS_INTERVAL_MS: '86400000' } });
  await provider.start(hub);
  pension = await registerAgency(hub, PENSION, 'pension-service', 'http://127.0.0.1:9');
  const muroran = await registerAgency(hub, MURORAN_CITY, 'municipality', provider.endpoint);
  await registerAgency(hub, 'fuzz-target', 'jasso', provider.endpoint);
  const person = await issuePerson(hub);
  individualNumber = person.individualNumber;
  citizenSecret = person.citizenSecret;
  code = await acquire(hub, pension, individualNumber);
  // Muroran answers the person's own self-information request (a provider's refusal would be a 502, not a fault of the hub).
  provider.behaviours.set(await acquire(hub, muroran, individualNumber), { answer: { 'local-tax': { fiscalYear: 2026 } } });

  const doc = (await hub.get('/docs/json')).json<{
    paths: Record<string, Record<string, { requestBody?: { content?: Record<string, { schema?: { $ref?: string } }> } }>>;
    components: { schemas: Record<string, { properties?: Record<string, { type?: string; example?: unknown }> }> };
  }>();
  operations = Object.entries(doc.paths).flatMap(([path, ops]) =>
    Object.entries(ops)
      .filter(([method]) => ['post', 'put', 'patch', 'delete'].includes(method))
      .map(([method, op]) => {
        const ref = op.requestBody?.content?.['application/json']?.schema?.$ref;
        const schema = ref === undefined ? undefined : doc.components.schemas[ref.split('/').pop()!];
        return { method: method.toUpperCase(), path, properties: schema?.properties ?? {} };
      }),
  );
  // The credential rotations last: each replaces the operator's or auditor's token the other endpoints are fed.
  operations.sort((a, b) => Number(a.path.endsWith('-credential')) - Number(b.path.endsWith('-credential')));
});
afterAll(async () => {
  await provider.stop();
  await hub?.dispose();
});

/** Plausible values where the document gives no example, so that mutations reach the rules behind the DTOs. */
function plausible(name: string): unknown {
  const values: Record<string, unknown> = {
    code,
    codes: [code],
    individualNumber,
    acquisitionNumber: 'FUZZ-1',
    publicKey: pension.keys.publicKey,
    answerPublicKey: pension.keys.publicKey,
    title: '件名',
    body: '本文',
    reason: 'leak',
  };
  return values[name];
}

const nastyString = fc.oneof(
  fc.string({ unit: 'binary', maxLength: 40 }),
  fc.constantFrom('', ' ', '\u3000', '\u200b\u200b', '\u2060\ufeff', '\u3164\uffa0', '\u0301', '\ud800', 'a\udfff', '\u0000', 'a\nb', '\u2028', '㍿'.repeat(60), '1e308', 'NaN', '-0', 'Infinity', '__proto__', '%ZZ', '../..', '0'.repeat(12), '9'.repeat(13)),
  fc.tuple(fc.constantFrom('a', 'あ', '\u200b', '𠮷', '\\'), fc.integer({ min: 100, max: 40_000 })).map(([c, n]) => c.repeat(n)),
);
const nastyNumber = fc.oneof(fc.constantFrom(1e308, -0, 0, -1, 1.5, 2 ** 53 + 1, 4_294_967_296, Number.MAX_VALUE, Number.MIN_VALUE), fc.double({ noNaN: true, noDefaultInfinity: true }), fc.integer());
const { nasty } = fc.letrec((tie) => ({
  nasty: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    nastyString,
    nastyNumber,
    fc.boolean(),
    fc.constant(null),
    fc.array(tie('nasty'), { maxLength: 4 }),
    fc.dictionary(fc.string({ maxLength: 8 }), tie('nasty'), { maxKeys: 3 }),
  ),
}));

/** A body as sent: raw text (so that 1e400, escaped lone surrogates and prototype keys arrive as written) and its content type. */
interface Body {
  readonly payload: string | undefined;
  readonly contentType: string | undefined;
}

function bodies(op: Operation): fc.Arbitrary<Body> {
  const names = Object.keys(op.properties);
  const template = Object.fromEntries(names.map((n) => [n, op.properties[n]!.example ?? plausible(n)]).filter(([, v]) => v !== undefined));
  const json = (value: unknown): Body => ({ payload: JSON.stringify(value), contentType: 'application/json' });
  const fromSchema = names.length === 0 ? fc.dictionary(fc.string({ maxLength: 8 }), nasty, { maxKeys: 3 }) : fc.record(Object.fromEntries(names.map((n) => [n, nasty])), { requiredKeys: [] });
  const mutated = fc.tuple(fc.constantFrom(...(names.length > 0 ? names : ['x'])), fc.oneof(nasty, fc.constant(undefined))).map(([name, value]) => {
    const body: Record<string, unknown> = { ...template };
    if (value === undefined) delete body[name];
    else body[name] = value;
    return body;
  });
  const structured = fc.oneof(fc.jsonValue(), fromSchema, mutated, fc.constant(template));
  return fc.oneof(
    { arbitrary: structured.map(json), weight: 6 },
    // Keys that reach an object's prototype, at the top or nested, plainly or escaped.
    {
      arbitrary: fc.tuple(mutated, fc.constantFrom('"__proto__"', '"constructor"', '"prototype"', '"\\u005f_proto__"'), fc.boolean()).map(([body, key, nested]) => {
        const inner = `${key}:{"isAdmin":true,"prototype":{"polluted":1}}`;
        const text = JSON.stringify(body);
        return { payload: nested ? `{"x":{${inner}},${text.slice(1)}` : `{${inner}${text.length > 2 ? ',' : ''}${text.slice(1)}`, contentType: 'application/json' };
      }),
      weight: 2,
    },
    // Deep nesting inside a field.
    { arbitrary: fc.tuple(fc.constantFrom(...(names.length > 0 ? names : ['x'])), fc.integer({ min: 20, max: 30_000 }), fc.boolean()).map(([name, depth, arrays]) => ({ payload: `{"${name}":${(arrays ? '[' : '{"a":').repeat(depth)}1${(arrays ? ']' : '}').repeat(depth)}}`, contentType: 'application/json' })), weight: 1 },
    // Numbers JSON.stringify never writes, and text that is not JSON.
    {
      arbitrary: fc.tuple(fc.constantFrom(...(names.length > 0 ? names : ['x'])), fc.constantFrom('1e400', '-1e400', '-0', '1E+308', '0.0000000000000000000001', '123456789012345678901234567890', 'NaN', 'Infinity', '"\\ud800"', '"\\udfff\\ud800"', '"\\u0000"')).map(([name, raw]) => ({ payload: `{"${name}":${raw}}`, contentType: 'application/json' })),
      weight: 1,
    },
    { arbitrary: fc.constantFrom('', '{', '{"a":', 'null', '[]', '"x"', '1', 'true', '{"a":1}}', '\ufeff{}', '{"a":1,"a":2}').map((payload) => ({ payload, contentType: 'application/json' })), weight: 1 },
    { arbitrary: fc.tuple(structured, fc.constantFrom('text/plain', 'application/x-www-form-urlencoded', 'application/json; charset=latin1', 'multipart/form-data; boundary=x', undefined)).map(([v, contentType]) => ({ payload: JSON.stringify(v), contentType })), weight: 1 },
    { arbitrary: fc.constant({ payload: undefined, contentType: undefined }), weight: 1 },
  );
}

/** The principal an endpoint is for, and everyone else (none, an unknown token, the other principals). */
function credentials(op: Operation): fc.Arbitrary<{ who: string; headers: Record<string, string> }> {
  const agencyEndpoint = /^\/v1\/(agency-codes|queries|notices)/.test(op.path);
  // The citizens' own endpoints (passkeys, sessions) are the citizen's; issuing an enrolment secret is the operator's.
  const citizenEndpoint = /^\/v1\/citizens\/(?!enrolment-secrets)/.test(op.path);
  const right = agencyEndpoint ? { who: 'agency', headers: bearer(pension.token) } : citizenEndpoint ? { who: 'citizen', headers: bearer(citizenSecret) } : { who: 'operator', headers: hub.operator };
  return fc.oneof(
    { arbitrary: fc.constant(right), weight: 4 },
    {
      arbitrary: fc.constantFrom(
        { who: 'none', headers: {} },
        { who: 'unknown token', headers: bearer('an-unknown-token-of-nobody-000') },
        { who: 'malformed authorization', headers: { authorization: 'Basic dXNlcjpwYXNz' } },
        { who: 'auditor', headers: hub.auditor },
        { who: 'citizen', headers: bearer(citizenSecret) },
        agencyEndpoint || citizenEndpoint ? { who: 'operator', headers: hub.operator } : { who: 'agency', headers: bearer(pension.token) },
      ),
      weight: 2,
    },
  );
}

/** Path parameters: the spare agency, one that does not exist, or anything. */
const pathValue = fc.oneof(
  fc.constantFrom('fuzz-target', 'no-such-agency', '%ZZ', '..', 'a'.repeat(150), '%00', 'UPPER', '-x-'),
  fc.string({ maxLength: 20 }).map((s) => encodeURIComponent(s)),
);

async function judge(op: Operation, url: string, body: Body, headers: Record<string, string>): Promise<void> {
  const before = await hub.head();
  const res: Response = await hub.inject({
    method: op.method as 'POST',
    url,
    headers: { ...(body.contentType === undefined ? {} : { 'content-type': body.contentType }), ...headers },
    ...(body.payload === undefined ? {} : { payload: body.payload }),
  });
  const after = await hub.head();
  // Exactly this request's events: every event of a request, its refusal's included, carries the request's
  // id (X-Request-Id); the hub's background work (a notice fan-out, pushes, the sweep) carries ids of its own.
  const requestId = res.headers['x-request-id'];
  const appended = after > before ? (await hub.store.readAll({ fromPosition: before, maxCount: after - before })).filter((e) => e.metadata.correlationId === requestId).map((e) => e.type) : [];
  const what = `${op.method} ${url} → ${res.statusCode} ${res.body.slice(0, 300)}; appended ${JSON.stringify(appended)}`;
  expect(res.statusCode, what).toBeLessThan(500);
  if (res.statusCode >= 300) {
    expect(res.headers['content-type'], what).toMatch(/^application\/problem\+json/);
    const problem = res.json<{ code?: unknown; status?: unknown }>();
    expect(Object.keys(PROBLEM_CATALOG), what).toContain(problem.code);
    expect(problem.status, what).toBe(res.statusCode);
    expect(appended.length, what).toBeLessThanOrEqual(1);
    for (const type of appended) expect(REFUSAL_EVENT_TYPES, what).toContain(type);
  }
}

describe('every write endpoint of the OpenAPI document, fed generated requests', () => {
  it('finds the write endpoints', () => {
    expect(operations.map((o) => `${o.method} ${o.path}`).sort()).toEqual(
      [
        'PATCH /v1/agencies/{agencyId}',
        'POST /v1/agencies',
        'POST /v1/agencies/{agencyId}/credential-rotations',
        'POST /v1/agencies/{agencyId}/certificates',
        'POST /v1/agencies/{agencyId}/certificates/{fingerprint}/revocations',
        'POST /v1/agencies/{agencyId}/revocations',
        'POST /v1/agency-codes',
        'POST /v1/authorization-tables',
        'POST /v1/authorization-tables/validations',
        'POST /v1/authorization-tables/{version}/withdrawal',
        'POST /v1/audit/self-checks',
        'POST /v1/audit/checkpoint-key-rotations',
        'POST /v1/key-rotations/provision-signing',
        'POST /v1/key-rotations/code',
        'POST /v1/key-rotations/operator-credential',
        'POST /v1/key-rotations/auditor-credential',
        'POST /v1/key-rotations/key-encryption',
        'POST /v1/key-rotations/tls-ca',
        'POST /v1/citizens/me/notices/{noticeId}/read',
        'POST /v1/citizens/me/self-information-requests',
        'DELETE /v1/citizens/me/passkeys/{passkeyId}',
        'DELETE /v1/citizens/me/session',
        'POST /v1/citizens/enrolment-secrets',
        'POST /v1/citizens/passkeys',
        'POST /v1/citizens/passkeys/registration-options',
        'POST /v1/citizens/sessions',
        'POST /v1/citizens/sessions/options',
        'POST /v1/corporate-numbers',
        'POST /v1/corporate-numbers/{number}/changes',
        'POST /v1/corporate-numbers/{number}/closures',
        'POST /v1/erasures',
        'POST /v1/individual-numbers',
        'POST /v1/individual-numbers/changes',
        'POST /v1/notices',
        'POST /v1/notice-batches',
        'POST /v1/queries',
        'POST /v1/queries/bulk',
        'POST /v1/retention-sweeps',
        'POST /v1/subscriptions',
        'DELETE /v1/subscriptions/{subscriptionId}',
        'POST /v1/updates',
      ].sort(),
    );
  });

  it('never answers 5xx, answers every refusal as problem+json with a catalog code, and appends at most one refusal event', async () => {
    for (const op of operations) {
      const url = (segment: string) => op.path.replace(/\{[^}]+\}/g, segment);
      await fc.assert(
        fc.asyncProperty(bodies(op), credentials(op), pathValue, fc.option(fc.string({ unit: 'binary-ascii', maxLength: 30 }), { nil: undefined }), async (body, who, segment, idempotencyKey) => {
          await judge(op, url(segment), body, { ...who.headers, ...(idempotencyKey === undefined ? {} : { 'idempotency-key': idempotencyKey }) });
        }),
        { numRuns: RUNS, ...(SEED === undefined ? {} : { seed: SEED }), ...(PATH === undefined ? {} : { path: PATH }), endOnFailure: true },
      );
    }
  }, 300_000);
});
