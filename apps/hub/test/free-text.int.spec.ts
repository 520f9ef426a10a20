import { status as GrpcStatus } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LINKAGE_SERVICE } from '../src/grpc/proto-files.js';
import { expectGrpcProblem, startGrpcTestHub, type GrpcServiceClient, type GrpcTestHub } from './support/grpc-client.js';
import { MURORAN_CITY, PENSION, acquire, bearer, issuePerson, registerAgency, type Agency } from './support/linkage-fixture.js';
import { expectProblem } from './support/problem-assertions.js';
import type { TestHub } from './support/test-hub.js';

/** One shared rule (libs/text) on every free-text field, over HTTP and gRPC: refused at the edge, nothing appended. */

let g: GrpcTestHub;
let hub: TestHub;
let linkage: GrpcServiceClient;
let muroran: Agency;
let muroranCode: string;

beforeAll(async () => {
  g = await startGrpcTestHub();
  hub = g.hub;
  linkage = g.client(LINKAGE_SERVICE);
  muroran = await registerAgency(hub, MURORAN_CITY, 'municipality', 'http://127.0.0.1:9');
  await registerAgency(hub, PENSION, 'pension-service', 'http://127.0.0.1:9');
  muroranCode = await acquire(hub, muroran, (await issuePerson(hub)).individualNumber);
});
afterAll(async () => {
  await g?.dispose();
});

const INVISIBLE = /^must not be empty or only white space or invisible characters \(zero-width, format or filler characters\); give visible text$/;
const BAD_TEXT: readonly [string, (max: number) => string, RegExp][] = [
  ['only zero-width spaces', () => '\u200b\u200b\u200b', INVISIBLE],
  ['only a word joiner and a BOM', () => '\u2060\ufeff', INVISIBLE],
  ['only Hangul fillers', () => '\u3164\uffa0', INVISIBLE],
  ['only ideographic spaces', () => '\u3000\u3000', INVISIBLE],
  ['a lone surrogate', () => '室蘭\ud800', /^must be well-formed Unicode: character 3 is an unpaired UTF-16 surrogate \(U\+D800\); send the text as valid UTF-8$/],
  ['a control character', () => '室蘭\u0007市', /^must not contain control characters.*; remove U\+0007$/],
  ['one character too many', (max) => 'あ'.repeat(max + 1), /^is \d+ characters long; at most \d+ are allowed$/],
];

/** Each free-text field: how to send it, and its limit. */
const FIELDS: readonly { name: string; max: number; inQuery?: true; send: (text: string) => Promise<import('light-my-request').Response> }[] = [
  { name: 'name', max: 200, send: (name) => hub.post('/v1/corporate-numbers', { name, location: '北海道室蘭市', kind: 'stock-company' }, hub.operator) },
  { name: 'location', max: 200, send: (location) => hub.post('/v1/corporate-numbers', { name: '株式会社室蘭', location, kind: 'stock-company' }, hub.operator) },
  { name: 'name', max: 200, inQuery: true, send: (name) => hub.get(`/v1/corporate-numbers?name=${encodeURIComponent(name)}`) },
  { name: 'location', max: 200, inQuery: true, send: (location) => hub.get(`/v1/corporate-numbers.csv?location=${encodeURIComponent(location)}`) },
  {
    name: 'name',
    max: 200,
    send: (name) => hub.post('/v1/agencies', { agencyId: 'new-agency', name, kind: 'municipality', endpoint: 'http://127.0.0.1:9', publicKey: muroran.keys.publicKey }, hub.operator),
  },
  { name: 'name', max: 200, send: (name) => hub.inject({ method: 'PATCH', url: `/v1/agencies/${PENSION}`, headers: { 'content-type': 'application/json', ...hub.operator }, payload: JSON.stringify({ name }) }) },
  { name: 'reason', max: 200, send: (reason) => hub.post(`/v1/agencies/${PENSION}/revocations`, { reason }, hub.operator) },
  { name: 'title', max: 100, send: (title) => hub.post('/v1/notices', { code: muroranCode, title, body: '本文' }, bearer(muroran.token)) },
  { name: 'body', max: 4000, send: (body) => hub.post('/v1/notices', { code: muroranCode, title: '件名', body }, bearer(muroran.token)) },
];

describe('free text over HTTP', () => {
  it.each(FIELDS.map((f, i) => [`${i}: ${f.name}`, f] as const))('refuses text with nothing visible, an unpaired surrogate, a control character or too long: %s', async (_label, field) => {
    const before = await hub.head();
    for (const [what, text, message] of BAD_TEXT) {
      // A URL carries UTF-8, which cannot hold a surrogate at all.
      if (field.inQuery && what === 'a lone surrogate') continue;
      const res = await field.send(text(field.max));
      const problem = expectProblem(res, 400, 'VALIDATION_FAILED');
      expect(problem['errors'], what).toEqual([{ field: field.name, message: expect.stringMatching(message) }]);
      expect(problem['detail']).toMatch(new RegExp(`^${field.name}: `));
    }
    expect(await hub.head()).toBe(before);
  });

  it('keeps the text as given (the rule judges its NFKC form), and takes line breaks in a notice body only', async () => {
    const res = await hub.post('/v1/corporate-numbers', { name: 'ＡＢＣ商事株式会社', location: '北海道室蘭市\u3000幸町', kind: 'stock-company' }, hub.operator);
    expect(res.statusCode, res.body).toBe(201);
    const designated = await hub.get(`/v1/corporate-numbers/${res.json<{ corporateNumber: string }>().corporateNumber}`);
    expect(designated.json()).toMatchObject({ name: 'ＡＢＣ商事株式会社', location: '北海道室蘭市\u3000幸町' });
    expect((await hub.post('/v1/notices', { code: muroranCode, title: '件名', body: '一行目\r\n二行目\n三行目' }, bearer(muroran.token))).statusCode).toBe(201);
    const title = await hub.post('/v1/notices', { code: muroranCode, title: '一行目\n二行目', body: '本文' }, bearer(muroran.token));
    expect(expectProblem(title, 400, 'VALIDATION_FAILED')['errors']).toEqual([{ field: 'title', message: 'must not contain control characters or line breaks; remove U+000A' }]);
  });
});

describe('free text over gRPC: the same DTO rule, INVALID_ARGUMENT with the problem in the trailers', () => {
  it('refuses a corporate name, an agency name and a notice title with nothing visible; appends nothing', async () => {
    const before = await hub.head();
    const corporate = await expectGrpcProblem(g.numbering.call('DesignateCorporateNumber', { name: '\u200b', location: '北海道室蘭市', kind: 'stock-company' }), GrpcStatus.INVALID_ARGUMENT, 'VALIDATION_FAILED');
    expect(corporate.problem['errors']).toEqual([{ field: 'name', message: expect.stringMatching(INVISIBLE) }]);
    const agency = await expectGrpcProblem(
      linkage.call('RegisterAgency', { agencyId: 'grpc-agency', name: '\u3164', kind: 'municipality', endpoint: 'http://127.0.0.1:9', publicKey: muroran.keys.publicKey }, hub.operator),
      GrpcStatus.INVALID_ARGUMENT,
      'VALIDATION_FAILED',
    );
    expect(agency.problem['errors']).toEqual([{ field: 'name', message: expect.stringMatching(INVISIBLE) }]);
    const notice = await expectGrpcProblem(linkage.call('SendNotice', { code: muroranCode, title: '\u2060', body: '本文' }, bearer(muroran.token)), GrpcStatus.INVALID_ARGUMENT, 'VALIDATION_FAILED');
    expect(notice.problem['errors']).toEqual([{ field: 'title', message: expect.stringMatching(INVISIBLE) }]);
    expect(await hub.head()).toBe(before);
  });
});
