import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { validateMyNumber, type MyNumber } from '#numbering';
import { NumberGenerator } from '../src/numbering/number-generator.js';
import { expectProblem } from './support/problem-assertions.js';
import { MURORAN, SAPPORO, nextResidentRecordCode, startTestHub, unlistedMunicipality, type TestHub } from './support/test-hub.js';

const ISSUE = '/v1/individual-numbers';
const CHANGE = '/v1/individual-numbers/changes';

describe('individual numbers over HTTP', () => {
  let hub: TestHub;
  /** Every body the hub answered in this suite, to check that no subject id ever leaves it. */
  const bodies: string[] = [];

  beforeAll(async () => {
    hub = await startTestHub();
  });
  afterAll(async () => {
    await hub.dispose();
  });

  async function post(url: string, body: unknown, headers: Record<string, string> = {}) {
    const res = await hub.post(url, body, { ...hub.operator, ...headers });
    bodies.push(res.body);
    return res;
  }

  async function issue(residentRecordCode = nextResidentRecordCode(), headers: Record<string, string> = {}) {
    const res = await post(ISSUE, { residentRecordCode, municipalityCode: MURORAN }, headers);
    expect(res.statusCode).toBe(201);
    return { residentRecordCode, res, body: res.json<{ serial: string; individualNumber: string; citizenSecret: string; issuedAt: string }>() };
  }

  describe('POST /v1/individual-numbers', () => {
    it('issues a valid, fresh number with a serial and appends one terminal event that holds no plaintext', async () => {
      const before = await hub.head();
      const { body, residentRecordCode, res } = await issue();
      expect(res.headers['content-type']).toMatch(/^application\/json/);
      expect(body).toEqual({
        serial: expect.stringMatching(/^\d{8}01\d{10}$/),
        individualNumber: expect.any(String),
        citizenSecret: expect.stringMatching(/^[A-Za-z0-9_-]{43}$/),
        issuedAt: expect.any(String),
      });
      expect(validateMyNumber(body.individualNumber).ok).toBe(true);
      expect(await hub.head()).toBe(before + 1);
      const [event] = await hub.store.readSerial(body.serial as never);
      expect(event).toMatchObject({
        type: 'IndividualNumberIssued',
        terminal: 'completed',
        serial: body.serial,
        claims: [`individual-number:${hub.vault.digest('individual-number', body.individualNumber)}`],
        streamId: `person-numbering-${hub.vault.digest('resident-record-code', residentRecordCode)}`,
        metadata: { actor: 'operator:hub', correlationId: res.headers['x-request-id'] },
        schemaVersion: 2,
        data: { municipalityCode: MURORAN, issuedAt: body.issuedAt },
      });
      const stored = JSON.stringify(event);
      const credentialDigest = createHash('sha256').update(body.citizenSecret).digest('hex');
      // As stored (I10): no number, no resident record code, no secret nor its digest, no subject id.
      for (const secret of [body.individualNumber, residentRecordCode, body.citizenSecret, credentialDigest]) expect(stored).not.toContain(secret);
      const [opened] = await hub.ledger.readSerial(body.serial as never);
      expect(opened!.data).toMatchObject({
        identifiers: { individualNumber: body.individualNumber, residentRecordCode, citizenSecret: body.citizenSecret },
        citizenCredentialDigest: credentialDigest,
        subjectId: expect.stringMatching(/^[0-9a-f-]{36}$/),
      });
      expect(stored).not.toContain((opened!.data as { subjectId: string }).subjectId);
    });

    it('gives two residents two different numbers', async () => {
      const a = await issue();
      const b = await issue();
      expect(a.body.individualNumber).not.toBe(b.body.individualNumber);
      expect(a.body.serial < b.body.serial).toBe(true);
    });

    it('echoes the caller\'s X-Correlation-Id but stores only the hub\'s own request id (I10: nothing a caller sends reaches the log as given)', async () => {
      const { body, res } = await issue(undefined, { 'x-correlation-id': 'corr-issue-1' });
      expect(res.headers['x-correlation-id']).toBe('corr-issue-1');
      const [event] = await hub.store.readSerial(body.serial as never);
      expect(event!.metadata.correlationId).toBe(res.headers['x-request-id']);
      expect(JSON.stringify(event)).not.toContain('corr-issue-1');
    });

    it('refuses a second issuance for the same resident: 409 RESIDENT_ALREADY_NUMBERED, nothing appended', async () => {
      const { residentRecordCode } = await issue();
      const before = await hub.head();
      const res = await post(ISSUE, { residentRecordCode, municipalityCode: SAPPORO });
      const problem = expectProblem(res, 409, 'RESIDENT_ALREADY_NUMBERED');
      expect(problem['detail']).toMatch(/changes/);
      expect(await hub.head()).toBe(before);
    });

    it('refuses a municipality that is not in the list in force: 422 UNKNOWN_MUNICIPALITY, nothing appended', async () => {
      const before = await hub.head();
      const res = await post(ISSUE, { residentRecordCode: nextResidentRecordCode(), municipalityCode: unlistedMunicipality() });
      expect(expectProblem(res, 422, 'UNKNOWN_MUNICIPALITY')['detail']).toMatch(/not in the municipality list/);
      expect(await hub.head()).toBe(before);
    });

    it('refuses a municipality code with a wrong check digit: 422 CHECK_DIGIT_MISMATCH naming the field and the expected digit', async () => {
      const before = await hub.head();
      const wrong = `01205${(0 + 1) % 10}`; // 012050 is right
      const res = await post(ISSUE, { residentRecordCode: nextResidentRecordCode(), municipalityCode: wrong });
      expect(expectProblem(res, 422, 'CHECK_DIGIT_MISMATCH')).toMatchObject({
        expected: 0,
        actual: 1,
        detail: 'municipalityCode: local government code check digit is 1, expected 0',
        errors: [{ field: 'municipalityCode', message: 'local government code check digit is 1, expected 0' }],
      });
      expect(await hub.head()).toBe(before);
    });

    it('lists every wrong field, refuses unknown fields, and never echoes the resident record code', async () => {
      const before = await hub.head();
      const res = await post(ISSUE, { residentRecordCode: '１２３４５６７８９０１', extra: true });
      const problem = expectProblem(res, 400, 'VALIDATION_FAILED');
      expect(problem['errors']).toEqual(
        expect.arrayContaining([
          { field: 'residentRecordCode', message: expect.stringMatching(/character 1 is not one/) },
          { field: 'municipalityCode', message: expect.any(String) },
          { field: 'extra', message: 'is not a known field' },
        ]),
      );
      expect(res.body).not.toContain('１２３４５６７８９０１');
      expect(await hub.head()).toBe(before);
    });
  });

  describe('POST /v1/individual-numbers/changes', () => {
    it('changes the number: a new valid number, the old one revoked, and the person\'s stream continued', async () => {
      const issued = await issue();
      const before = await hub.head();
      const res = await post(CHANGE, { residentRecordCode: issued.residentRecordCode, municipalityCode: MURORAN, reason: 'leak' });
      expect(res.statusCode).toBe(201);
      const body = res.json<{ serial: string; individualNumber: string; previousNumberRevoked: boolean; changedAt: string }>();
      expect(body).toEqual({ serial: expect.any(String), individualNumber: expect.any(String), previousNumberRevoked: true, changedAt: expect.any(String) });
      expect(body.individualNumber).not.toBe(issued.body.individualNumber);
      expect(validateMyNumber(body.individualNumber).ok).toBe(true);
      expect(await hub.head()).toBe(before + 1);
      const [event] = await hub.store.readSerial(body.serial as never);
      expect(event).toMatchObject({
        type: 'IndividualNumberChanged',
        terminal: 'completed',
        streamRevision: 1,
        data: { reason: 'leak', previousNumberDigest: hub.vault.digest('individual-number', issued.body.individualNumber) },
      });
    });

    it('refuses a resident without a number: 409 RESIDENT_NOT_NUMBERED, nothing appended', async () => {
      const before = await hub.head();
      const res = await post(CHANGE, { residentRecordCode: nextResidentRecordCode(), municipalityCode: MURORAN, reason: 'request' });
      expectProblem(res, 409, 'RESIDENT_NOT_NUMBERED');
      expect(await hub.head()).toBe(before);
    });

    it('refuses an unknown reason (400) and an unlisted municipality (422)', async () => {
      const { residentRecordCode } = await issue();
      const before = await hub.head();
      const reason = await post(CHANGE, { residentRecordCode, municipalityCode: MURORAN, reason: 'whim' });
      expect(expectProblem(reason, 400, 'VALIDATION_FAILED')['errors']).toEqual([{ field: 'reason', message: 'must be one of leak, request, other' }]);
      expectProblem(await post(CHANGE, { residentRecordCode, municipalityCode: unlistedMunicipality(), reason: 'other' }), 422, 'UNKNOWN_MUNICIPALITY');
      expect(await hub.head()).toBe(before);
    });
  });

  describe('Idempotency-Key', () => {
    it('answers a retried issuance with the original outcome and status, appending nothing', async () => {
      const residentRecordCode = nextResidentRecordCode();
      const first = await issue(residentRecordCode, { 'idempotency-key': 'issue-1' });
      const before = await hub.head();
      const retry = await post(ISSUE, { municipalityCode: MURORAN, residentRecordCode }, { 'idempotency-key': 'issue-1' });
      expect(retry.statusCode).toBe(201);
      expect(retry.json()).toEqual(first.body);
      expect(retry.headers['idempotent-replayed']).toBe('true');
      expect(first.res.headers['idempotent-replayed']).toBeUndefined();
      expect(await hub.head()).toBe(before);
    });

    it('answers racing retries with one issuance', async () => {
      const residentRecordCode = nextResidentRecordCode();
      const before = await hub.head();
      const answers = await Promise.all([1, 2, 3].map(() => post(ISSUE, { residentRecordCode, municipalityCode: MURORAN }, { 'idempotency-key': 'race-1' })));
      expect(answers.map((a) => a.statusCode)).toEqual([201, 201, 201]);
      expect(new Set(answers.map((a) => a.body)).size).toBe(1);
      expect(await hub.head()).toBe(before + 1);
    });

    it('refuses the same key with another body: 409 IDEMPOTENCY_KEY_REUSED, nothing appended', async () => {
      await issue(undefined, { 'idempotency-key': 'issue-2' });
      const before = await hub.head();
      const res = await post(ISSUE, { residentRecordCode: nextResidentRecordCode(), municipalityCode: MURORAN }, { 'idempotency-key': 'issue-2' });
      expectProblem(res, 409, 'IDEMPOTENCY_KEY_REUSED');
      expect(await hub.head()).toBe(before);
    });

    it('scopes keys by actor: a designation (operator:nta) may use the key a numbering (operator:hub) used', async () => {
      await issue(undefined, { 'idempotency-key': 'shared-key' });
      const other = await post('/v1/corporate-numbers', { name: '株式会社鍵', location: '北海道室蘭市', kind: 'stock-company' }, { 'idempotency-key': 'shared-key' });
      expect(other.statusCode).toBe(201);
      expect(other.headers['idempotent-replayed']).toBeUndefined();
    });

    it('takes numbering commands from the operator only: no token 401, another principal\'s 403, nothing appended', async () => {
      const before = await hub.head();
      const body = { residentRecordCode: nextResidentRecordCode(), municipalityCode: MURORAN };
      expectProblem(await hub.post(ISSUE, body), 401, 'UNAUTHENTICATED');
      expectProblem(await hub.post(ISSUE, body, hub.auditor), 403, 'FORBIDDEN');
      expectProblem(await hub.post(CHANGE, { ...body, reason: 'leak' }, hub.auditor), 403, 'FORBIDDEN');
      expect(await hub.head()).toBe(before);
    });

    it('answers a retried change with the original new number, and refuses the key for another command', async () => {
      const { residentRecordCode } = await issue();
      const change = { residentRecordCode, municipalityCode: MURORAN, reason: 'request' };
      const first = await post(CHANGE, change, { 'idempotency-key': 'change-1' });
      expect(first.statusCode).toBe(201);
      const before = await hub.head();
      const retry = await post(CHANGE, change, { 'idempotency-key': 'change-1' });
      expect(retry.statusCode).toBe(201);
      expect(retry.json()).toEqual(first.json());
      expect(await hub.head()).toBe(before);
      expectProblem(await post(ISSUE, { residentRecordCode, municipalityCode: MURORAN }, { 'idempotency-key': 'change-1' }), 409, 'IDEMPOTENCY_KEY_REUSED');
      expect(await hub.head()).toBe(before);
    });

    it('refuses a malformed key (400, naming the header) before doing anything', async () => {
      const before = await hub.head();
      const res = await post(ISSUE, { residentRecordCode: nextResidentRecordCode(), municipalityCode: MURORAN }, { 'idempotency-key': 'k'.repeat(201) });
      expect(expectProblem(res, 400, 'VALIDATION_FAILED')['errors']).toEqual([{ field: 'Idempotency-Key', message: 'must be 1-200 printable ASCII characters, sent once' }]);
      expect(await hub.head()).toBe(before);
    });
  });

  it('never sends a subject id out (all answers of this suite, errors included)', async () => {
    const subjects = (await hub.ledger.readAll())
      .map((e) => (e.data as { subjectId?: string }).subjectId)
      .filter((s): s is string => typeof s === 'string');
    expect(subjects.length).toBeGreaterThan(10);
    expect(bodies.length).toBeGreaterThan(20);
    for (const subject of new Set(subjects)) {
      for (const body of bodies) expect(body).not.toContain(subject);
    }
  });
});

describe('individual numbers: a drawn number that is already held', () => {
  let hub: TestHub;
  const draws: MyNumber[] = [];
  const real = new NumberGenerator();
  const first = real.individualNumber();
  let second = real.individualNumber();
  while (second === first) second = real.individualNumber();

  beforeAll(async () => {
    // The first two draws return the same number: the second issuance hits the claim and must draw again.
    const scripted = [first, first, second, second, first];
    hub = await startTestHub({
      numbers: {
        individualNumber: () => {
          const n = scripted.shift() ?? real.individualNumber();
          draws.push(n);
          return n;
        },
      },
    });
  });
  afterAll(async () => {
    await hub.dispose();
  });

  it('draws again on CLAIM_CONFLICT (issuance) and on NUMBER_UNCHANGED / CLAIM_CONFLICT (change)', async () => {
    const a = await hub.post(ISSUE, { residentRecordCode: nextResidentRecordCode(), municipalityCode: MURORAN }, hub.operator);
    const residentB = nextResidentRecordCode();
    const b = await hub.post(ISSUE, { residentRecordCode: residentB, municipalityCode: MURORAN }, hub.operator);
    expect([a.statusCode, b.statusCode]).toEqual([201, 201]);
    expect(a.json<{ individualNumber: string }>().individualNumber).toBe(first);
    expect(b.json<{ individualNumber: string }>().individualNumber).toBe(second);
    expect(draws).toEqual([first, first, second]);
    // B holds `second`: drawing it is NUMBER_UNCHANGED, drawing `first` is held by A: both drawn again.
    const change = await hub.post(CHANGE, { residentRecordCode: residentB, municipalityCode: MURORAN, reason: 'leak' }, hub.operator);
    expect(change.statusCode).toBe(201);
    const changed = change.json<{ individualNumber: string }>().individualNumber;
    expect([first, second]).not.toContain(changed);
    expect(draws.slice(3, 5)).toEqual([second, first]);
    expect(await hub.head()).toBe(3);
  });
});
