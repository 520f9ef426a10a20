import { status as GrpcStatus } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LINKAGE_SERVICE } from '../src/grpc/proto-files.js';
import { expectGrpcProblem, startGrpcTestHub, type GrpcServiceClient, type GrpcTestHub } from './support/grpc-client.js';
import { MURORAN_CITY, PENSION, acquire, bearer, issuePerson, registerAgency, type Agency } from './support/linkage-fixture.js';
import { expectProblem } from './support/problem-assertions.js';
import type { TestHub } from './support/test-hub.js';

/** Linkage requests the edge refuses before anything is appended, over HTTP and gRPC alike. */

let g: GrpcTestHub;
let hub: TestHub;
let linkage: GrpcServiceClient;
let pension: Agency;
let individualNumber: string;
const codes: string[] = [];

beforeAll(async () => {
  g = await startGrpcTestHub({ env: { HUB_AUTHORIZATION_TABLE_FILE: '' } });
  hub = g.hub;
  linkage = g.client(LINKAGE_SERVICE);
  pension = await registerAgency(hub, PENSION, 'pension-service', 'http://127.0.0.1:9');
  await registerAgency(hub, MURORAN_CITY, 'municipality', 'http://127.0.0.1:9');
  individualNumber = (await issuePerson(hub)).individualNumber;
  for (let i = 0; i < 2; i++) codes.push(await acquire(hub, pension, (await issuePerson(hub)).individualNumber));
});
afterAll(async () => {
  await g?.dispose();
});

const QUERY = { providerAgencyId: MURORAN_CITY, procedureCode: 'pension-award-claim', itemCodes: ['local-tax'] };

/** `number` with its check digit (at `index`) replaced by the next digit. */
function wrongCheckDigit(number: string, index: number): { value: string; expected: number; actual: number } {
  const expected = Number(number[index]);
  const actual = (expected + 1) % 10;
  return { value: number.slice(0, index) + String(actual) + number.slice(index + 1), expected, actual };
}

async function unchanged(run: () => Promise<void>): Promise<void> {
  const before = await hub.head();
  await run();
  expect(await hub.head()).toBe(before);
}

describe('a wrong check digit is 422 CHECK_DIGIT_MISMATCH, as the OpenAPI document says', () => {
  it('in POST /v1/agency-codes individualNumber: the digits, the field, never the number; nothing appended', async () => {
    const wrong = wrongCheckDigit(individualNumber, 11);
    await unchanged(async () => {
      const res = await hub.post('/v1/agency-codes', { individualNumber: wrong.value, acquisitionNumber: 'JPS-CD-1' }, bearer(pension.token));
      expect(expectProblem(res, 422, 'CHECK_DIGIT_MISMATCH')).toMatchObject({
        expected: wrong.expected,
        actual: wrong.actual,
        detail: `individualNumber: individual number check digit is ${wrong.actual}, expected ${wrong.expected}`,
        errors: [{ field: 'individualNumber', message: `individual number check digit is ${wrong.actual}, expected ${wrong.expected}` }],
      });
      expect(res.body).not.toContain(wrong.value);
      // With another field wrong as well, it is one 400 listing both.
      const both = await hub.post('/v1/agency-codes', { individualNumber: wrong.value, acquisitionNumber: 7 }, bearer(pension.token));
      expect((expectProblem(both, 400, 'VALIDATION_FAILED')['errors'] as { field: string }[]).map((e) => e.field)).toEqual(['individualNumber', 'acquisitionNumber']);
    });
  });

  it('in POST /v1/agencies municipalityCode', async () => {
    await unchanged(async () => {
      const res = await hub.post('/v1/agencies', { agencyId: 'sapporo-city', name: '札幌市', kind: 'municipality', endpoint: 'http://127.0.0.1:9', publicKey: pension.keys.publicKey, municipalityCode: '011003' }, hub.operator);
      expect(expectProblem(res, 422, 'CHECK_DIGIT_MISMATCH')).toMatchObject({ expected: 2, actual: 3, errors: [{ field: 'municipalityCode', message: expect.any(String) }] });
    });
  });

  it('over gRPC: INVALID_ARGUMENT with CHECK_DIGIT_MISMATCH in the trailers, the field as the .proto names it', async () => {
    const wrong = wrongCheckDigit(individualNumber, 11);
    await unchanged(async () => {
      const { problem } = await expectGrpcProblem(
        linkage.call('AcquireAgencyCode', { individualNumber: wrong.value, acquisitionNumber: 'JPS-CD-2' }, bearer(pension.token)),
        GrpcStatus.INVALID_ARGUMENT,
        'CHECK_DIGIT_MISMATCH',
      );
      expect(problem).toMatchObject({ expected: wrong.expected, actual: wrong.actual, errors: [{ field: 'individual_number', message: expect.stringMatching(/check digit/) }] });
    });
  });
});

describe('tableVersion', () => {
  it('out of range (1e308, 0, -0, 1.5, "1") is a 400 naming the request\'s field, not an internal one', async () => {
    await unchanged(async () => {
      for (const tableVersion of [1e308, 0, -0, 1.5, '1', 4_294_967_296]) {
        for (const [url, body] of [['/v1/queries', { code: codes[0], ...QUERY, tableVersion }], ['/v1/queries/bulk', { codes, ...QUERY, tableVersion }]] as const) {
          const problem = expectProblem(await hub.post(url, body, bearer(pension.token)), 400, 'VALIDATION_FAILED');
          expect(problem['errors'], `${url} ${String(tableVersion)}`).toEqual([
            { field: 'tableVersion', message: 'must be an integer from 1 to 4294967295: the version of the authorization table the query relies on' },
          ]);
          expect(JSON.stringify(problem)).not.toContain('requestedTableVersion');
        }
      }
    });
  });
});

describe('POST /v1/queries/bulk lists each person once', () => {
  it('a code listed more than once is a 400 naming the repeated positions, before any serial is allocated', async () => {
    await unchanged(async () => {
      const [a, b] = codes as [string, string];
      const res = await hub.post('/v1/queries/bulk', { codes: [a, b, a, a, b], ...QUERY }, bearer(pension.token));
      expect(expectProblem(res, 400, 'VALIDATION_FAILED')['errors']).toEqual([
        { field: 'codes', message: 'must list each value once: codes[2] repeats codes[0], codes[3] repeats codes[0], codes[4] repeats codes[1]; remove the repeats' },
      ]);
      const fifty = await hub.post('/v1/queries/bulk', { codes: Array.from({ length: 50 }, () => a), ...QUERY }, bearer(pension.token));
      expect(expectProblem(fifty, 400, 'VALIDATION_FAILED')['errors']).toEqual([{ field: 'codes', message: expect.stringMatching(/^must list each value once: codes\[1\] repeats codes\[0\], .*codes\[10\] repeats codes\[0\], and 39 more; remove the repeats$/) }]);
      const items = await hub.post('/v1/queries', { code: a, ...QUERY, itemCodes: ['local-tax', 'local-tax'] }, bearer(pension.token));
      expect(expectProblem(items, 400, 'VALIDATION_FAILED')['errors']).toEqual([{ field: 'itemCodes', message: expect.stringContaining('itemCodes[1] repeats itemCodes[0]') }]);
    });
  });

  it('over gRPC too', async () => {
    await unchanged(async () => {
      const { problem } = await expectGrpcProblem(linkage.call('BulkQuery', { codes: [codes[0], codes[0]], ...QUERY }, bearer(pension.token)), GrpcStatus.INVALID_ARGUMENT, 'VALIDATION_FAILED');
      expect(problem['errors']).toEqual([{ field: 'codes', message: expect.stringContaining('codes[1] repeats codes[0]') }]);
    });
  });
});
