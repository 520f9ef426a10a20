import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { corporateNumberFromBase, validateCorporateNumber } from '#numbering';
import { expectProblem } from './support/problem-assertions.js';
import { startTestHub, type TestHub, expectNothingButRefusals } from './support/test-hub.js';

const DESIGNATE = '/v1/corporate-numbers';
const company = { name: '　株式会社室蘭製作所 ', location: '北海道室蘭市幸町1番2号', kind: 'stock-company' };

describe('corporate numbers over HTTP', () => {
  let hub: TestHub;
  beforeAll(async () => {
    hub = await startTestHub();
  });
  /** Designations need the operator's token. */
  const asOperator = (url: string, body: unknown, headers: Record<string, string> = {}) => hub.post(url, body, { ...hub.operator, ...headers });
  afterAll(async () => {
    await hub.dispose();
  });

  describe('POST /v1/corporate-numbers', () => {
    it('designates the number of a registry number (check digit prefixed) as operator:nta', async () => {
      const before = await hub.head();
      const res = await asOperator(DESIGNATE, { ...company, registryNumber: '430001012345' });
      expect(res.statusCode).toBe(201);
      const body = res.json<{ serial: string; corporateNumber: string; designatedAt: string }>();
      expect(body).toEqual({ serial: expect.stringMatching(/^\d{20}$/), corporateNumber: corporateNumberFromBase('430001012345'), designatedAt: expect.any(String) });
      expect(await hub.head()).toBe(before + 1);
      const [event] = await hub.store.readSerial(body.serial as never);
      expect(event).toMatchObject({
        type: 'CorporateNumberDesignated',
        terminal: 'completed',
        metadata: { actor: 'operator:nta' },
        data: { corporateNumber: body.corporateNumber, name: '株式会社室蘭製作所', kind: 'stock-company' },
      });
    });

    it('draws a random base when no registry number is given', async () => {
      const res = await asOperator(DESIGNATE, { ...company, name: '合同会社ランダム', kind: 'llc' });
      expect(res.statusCode).toBe(201);
      expect(validateCorporateNumber(res.json<{ corporateNumber: string }>().corporateNumber).ok).toBe(true);
    });

    it('refuses a registry number already designated: 409, nothing appended', async () => {
      await asOperator(DESIGNATE, { ...company, registryNumber: '430001099999' });
      const before = await hub.head();
      const res = await asOperator(DESIGNATE, { ...company, name: '別の会社', registryNumber: '430001099999' });
      expectProblem(res, 409, 'CORPORATE_NUMBER_ALREADY_DESIGNATED');
      await expectNothingButRefusals(hub, before);
    });

    it('refuses bad fields with one 400 listing each', async () => {
      const before = await hub.head();
      const res = await asOperator(DESIGNATE, { name: ' ', location: 'a\u2028b', kind: 'guild', registryNumber: '12345' });
      expect(expectProblem(res, 400, 'VALIDATION_FAILED')['errors']).toEqual([
        { field: 'name', message: 'must not be empty or only white space or invisible characters (zero-width, format or filler characters); give visible text' },
        { field: 'location', message: 'must not contain control characters or line breaks; remove U+2028' },
        { field: 'kind', message: expect.stringMatching(/^must be one of stock-company, /) },
        { field: 'registryNumber', message: expect.stringMatching(/12 ASCII digits/) },
      ]);
      await expectNothingButRefusals(hub, before);
    });

    it('answers a retry with the same Idempotency-Key with the same (randomly drawn) number', async () => {
      const body = { ...company, name: '株式会社リトライ' };
      const first = await asOperator(DESIGNATE, body, { 'idempotency-key': 'corp-1' });
      expect(first.statusCode).toBe(201);
      const before = await hub.head();
      const retry = await asOperator(DESIGNATE, body, { 'idempotency-key': 'corp-1' });
      expect(retry.statusCode).toBe(201);
      expect(retry.json()).toEqual(first.json());
      await expectNothingButRefusals(hub, before);
      expectProblem(await asOperator(DESIGNATE, { ...body, kind: 'other' }, { 'idempotency-key': 'corp-1' }), 409, 'IDEMPOTENCY_KEY_REUSED');
      await expectNothingButRefusals(hub, before);
    });

    it('answers a retry with a registry number (the designation now exists) with the original outcome', async () => {
      const body = { ...company, registryNumber: '430001055555' };
      const first = await asOperator(DESIGNATE, body, { 'idempotency-key': 'corp-2' });
      const retry = await asOperator(DESIGNATE, body, { 'idempotency-key': 'corp-2' });
      expect([first.statusCode, retry.statusCode]).toEqual([201, 201]);
      expect(retry.json()).toEqual(first.json());
    });
  });

  describe('GET /v1/corporate-numbers/:number', () => {
    it('returns the public record', async () => {
      const designated = (await asOperator(DESIGNATE, { ...company, registryNumber: '430001077777' })).json<{ corporateNumber: string; designatedAt: string }>();
      const res = await hub.get(`/v1/corporate-numbers/${designated.corporateNumber}`);
      expect(res.statusCode).toBe(200);
      expect(res.json()).toEqual({
        corporateNumber: designated.corporateNumber,
        name: '株式会社室蘭製作所',
        location: company.location,
        kind: 'stock-company',
        designatedAt: designated.designatedAt,
        status: 'active',
        closedOn: null,
        closedAt: null,
        closeReason: null,
        history: [],
      });
    });

    it('answers a wrong check digit with 422 CHECK_DIGIT_MISMATCH and the expected and actual digits', async () => {
      const right = corporateNumberFromBase('430001012345');
      const actual = (Number(right[0]) % 9) + 1; // another digit in 1..9
      const res = await hub.get(`/v1/corporate-numbers/${actual}${right.slice(1)}`);
      expect(expectProblem(res, 422, 'CHECK_DIGIT_MISMATCH')).toMatchObject({ expected: Number(right[0]), actual });
    });

    it('answers a valid number that was never designated with 404', async () => {
      expectProblem(await hub.get(`/v1/corporate-numbers/${corporateNumberFromBase('999999999999')}`), 404, 'CORPORATE_NUMBER_NOT_FOUND');
    });

    it('answers a malformed number with 400 naming the parameter', async () => {
      const res = await hub.get('/v1/corporate-numbers/12345');
      expect(expectProblem(res, 400, 'VALIDATION_FAILED')['errors']).toEqual([{ field: 'number', message: 'must be 13 ASCII digits (0-9)' }]);
    });
  });
});
