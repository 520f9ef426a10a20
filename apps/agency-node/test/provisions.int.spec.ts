import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { agencyCodeFromRandomBytes, isAgencyCode } from '#linkage';
import { fromBase64url, generateAnswerKeyPair, openAnswer } from '#sealed-answer';
import { demoCopies, startTestNode, testSigner, type TestNode } from './support/agency-fixture.js';

const NOW = new Date('2026-11-29T09:00:00.000Z');
const signer = testSigner();
let node: TestNode;
let serialSeq = 0;
const codes = { aoyama: newCode(), spouse: newCode(), restricted: newCode(), child: newCode(), unknown: newCode() };

function newCode(): string {
  return agencyCodeFromRandomBytes(randomBytes(16));
}

function nextSerial(): string {
  serialSeq++;
  return `2026112901${String(serialSeq).padStart(10, '0')}`;
}

function provisionRequest(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    protocol: 'linkage-ledger/provision/v1',
    serial: nextSerial(),
    queryId: randomUUID(),
    requesterAgencyId: 'jpn-pension-service',
    requesterKind: 'pension-service',
    providerAgencyId: 'muroran-city',
    code: codes.aoyama,
    procedureCode: 'pension-award-claim',
    itemCodes: ['local-tax'],
    requestedAt: NOW.toISOString(),
    ...overrides,
  };
}

async function post(path: string, body: unknown, signature?: string) {
  const text = JSON.stringify(body);
  const res = await node.app.inject({
    method: 'POST',
    url: path,
    headers: { 'content-type': 'application/json', 'hub-signature': signature ?? signer.sign(text) },
    payload: text,
  });
  return { status: res.statusCode, body: res.json() as Record<string, unknown>, contentType: res.headers['content-type'] };
}

function providedRecords() {
  return node.runtime.store.records({ limit: 1000, role: 'provided' });
}

beforeAll(async () => {
  node = await startTestNode({ agencyId: 'muroran-city', signer, now: NOW });
  const store = node.runtime.store;
  store.loadCopies(demoCopies('muroran-city'), NOW);
  store.setAgencyCode('M-000123', codes.aoyama, NOW.toISOString());
  store.setAgencyCode('M-000124', codes.spouse, NOW.toISOString());
  store.setAgencyCode('M-000125', codes.restricted, NOW.toISOString());
  store.setAgencyCode('M-000126', codes.child, NOW.toISOString());
  expect(Object.values(codes).every(isAgencyCode)).toBe(true);
});
afterAll(async () => node.close());

describe('POST /v1/provisions (signed by the hub)', () => {
  test('answers Aoyama-san\'s local tax information in plaintext when no answer key is given, exactly the items asked, and records it', async () => {
    const req = provisionRequest();
    const res = await post('/v1/provisions', req);
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ status: 'answered', encrypted: false });
    const bytes = fromBase64url(res.body['answer'] as string)!;
    expect(JSON.parse(Buffer.from(bytes).toString('utf8'))).toEqual({
      items: { 'local-tax': { fiscalYear: 2026, taxableIncome: 3120000, municipalTaxAmount: 187200, prefecturalTaxAmount: 124800, dependents: 1 } },
    });
    const record = node.runtime.store.recordFor('provided', req['serial'] as string);
    expect(record).toMatchObject({
      role: 'provided',
      queryId: req['queryId'],
      counterpartAgencyId: 'jpn-pension-service',
      procedureCode: 'pension-award-claim',
      itemCodes: ['local-tax'],
      localId: 'M-000123',
      outcome: 'answered',
      reason: null,
      answerDigest: createHash('sha256').update(bytes).digest('hex'),
      answerSize: bytes.length,
      encrypted: false,
      recordedAt: NOW.toISOString(),
    });
  });

  test('seals the answer to answerPublicKey; it opens with the recipient\'s private key under the serial', async () => {
    const recipient = await generateAnswerKeyPair();
    const req = provisionRequest({ itemCodes: ['resident-record', 'local-tax'], answerPublicKey: recipient.publicKey });
    const res = await post('/v1/provisions', req);
    expect(res.body).toMatchObject({ status: 'answered', encrypted: true });
    const sealed = fromBase64url(res.body['answer'] as string)!;
    const opened = JSON.parse(Buffer.from(await openAnswer(sealed, recipient.privateKey, req['serial'] as string)).toString('utf8')) as { items: Record<string, unknown> };
    expect(Object.keys(opened.items)).toEqual(['resident-record', 'local-tax']);
    expect(opened.items['resident-record']).toMatchObject({ relationshipToHead: '世帯主' });
    await expect(openAnswer(sealed, recipient.privateKey, nextSerial())).rejects.toThrow(expect.objectContaining({ code: 'ANSWER_DECRYPTION_FAILED' }));
    expect(node.runtime.store.recordFor('provided', req['serial'] as string)).toMatchObject({ encrypted: true, answerSize: sealed.length });
  });

  test.each([
    ['an unknown code', { code: codes.unknown }, 'NO_RECORD'],
    ['a person without a copy of the item', { code: codes.child, itemCodes: ['local-tax'] }, 'NO_RECORD'],
    ['an item the agency holds for no one', { itemCodes: ['local-tax', 'pension-benefit'] }, 'NOT_HELD'],
    ['a person flagged 自動応答不可', { code: codes.restricted }, 'AUTOMATIC_ANSWER_RESTRICTED'],
  ])('refuses %s with %s, and records the refusal', async (_what, overrides, reason) => {
    const req = provisionRequest(overrides);
    const res = await post('/v1/provisions', req);
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ status: 'refused', reason });
    expect(node.runtime.store.recordFor('provided', req['serial'] as string)).toMatchObject({ outcome: 'refused', reason, answerDigest: null });
  });

  test('the same serial again gets the same (sealed) answer, and is recorded once', async () => {
    const recipient = await generateAnswerKeyPair();
    const req = provisionRequest({ answerPublicKey: recipient.publicKey });
    const before = providedRecords().length;
    const [a, b] = await Promise.all([post('/v1/provisions', req), post('/v1/provisions', req)]);
    const c = await post('/v1/provisions', { ...req, requestedAt: new Date(NOW.getTime() + 1000).toISOString() });
    expect(a.body).toEqual(b.body);
    expect(c.body).toEqual(a.body);
    expect(providedRecords().length).toBe(before + 1);
  });

  test('the same serial with another request is refused with 409 SERIAL_REUSED', async () => {
    const req = provisionRequest();
    expect((await post('/v1/provisions', req)).status).toBe(200);
    const res = await post('/v1/provisions', { ...req, itemCodes: ['resident-record'] });
    expect(res.status).toBe(409);
    expect(res.body).toMatchObject({ code: 'SERIAL_REUSED', serial: req['serial'] });
  });

  test('a bad signature is refused with 401 HUB_SIGNATURE_INVALID and nothing is recorded', async () => {
    const before = providedRecords().length;
    const req = provisionRequest();
    const text = JSON.stringify(req);
    const other = testSigner();
    const cases = [other.sign(text), signer.sign(`${text} `), undefined, 'ed25519=abc', `ed25519=${'A'.repeat(86)}`];
    for (const signature of cases) {
      const res = await node.app.inject({
        method: 'POST',
        url: '/v1/provisions',
        headers: { 'content-type': 'application/json', ...(signature === undefined ? {} : { 'hub-signature': signature }) },
        payload: text,
      });
      expect(res.statusCode).toBe(401);
      expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
      expect(res.json()).toMatchObject({ code: 'HUB_SIGNATURE_INVALID', status: 401 });
    }
    // The body bytes are what is signed: the same JSON re-serialised with other spacing does not verify.
    const spaced = JSON.stringify(req, null, 1);
    const res = await node.app.inject({ method: 'POST', url: '/v1/provisions', headers: { 'content-type': 'application/json', 'hub-signature': signer.sign(text) }, payload: spaced });
    expect(res.statusCode).toBe(401);
    expect(providedRecords().length).toBe(before);
    expect(node.runtime.store.recordFor('provided', req['serial'] as string)).toBeUndefined();
  });

  test.each([
    ['more than 300 s old', -301_000],
    ['more than 300 s in the future', 301_000],
  ])('a request %s is refused with 400 STALE_REQUEST and not recorded', async (_what, offset) => {
    const req = provisionRequest({ requestedAt: new Date(NOW.getTime() + offset).toISOString() });
    const res = await post('/v1/provisions', req);
    expect(res.status).toBe(400);
    expect(res.body).toMatchObject({ code: 'STALE_REQUEST', serial: req['serial'] });
    expect(node.runtime.store.recordFor('provided', req['serial'] as string)).toBeUndefined();
  });

  test('a request within 300 s is fresh', async () => {
    const res = await post('/v1/provisions', provisionRequest({ requestedAt: new Date(NOW.getTime() - 299_000).toISOString() }));
    expect(res.status).toBe(200);
  });

  test.each([
    ['a missing field', (r: Record<string, unknown>) => ({ ...r, code: undefined })],
    ['an unknown field', (r: Record<string, unknown>) => ({ ...r, myNumber: '123456789018' })],
    ['another protocol', (r: Record<string, unknown>) => ({ ...r, protocol: 'linkage-ledger/provision/v2' })],
    ['a malformed code', (r: Record<string, unknown>) => ({ ...r, code: 'not-a-code' })],
    ['no items', (r: Record<string, unknown>) => ({ ...r, itemCodes: [] })],
    ['a malformed answer key', (r: Record<string, unknown>) => ({ ...r, answerPublicKey: 'abc' })],
  ])('a signed body with %s is refused with 400 VALIDATION_FAILED against the schema', async (_what, change) => {
    const res = await post('/v1/provisions', change(provisionRequest()));
    expect(res.status).toBe(400);
    expect(res.body).toMatchObject({ code: 'VALIDATION_FAILED' });
    expect(res.body['errors']).toEqual(expect.arrayContaining([expect.objectContaining({ field: expect.any(String), message: expect.any(String) })]));
  });

  test('a request for another provider is refused with 400 WRONG_PROVIDER and not recorded', async () => {
    const req = provisionRequest({ providerAgencyId: 'sapporo-city' });
    const res = await post('/v1/provisions', req);
    expect(res.status).toBe(400);
    expect(res.body).toMatchObject({ code: 'WRONG_PROVIDER' });
    expect(node.runtime.store.recordFor('provided', req['serial'] as string)).toBeUndefined();
  });
});

describe('POST /v1/provisions/batch', () => {
  test('answers each request in order, one response per request, each recorded', async () => {
    const recipient = await generateAnswerKeyPair();
    const requests = [
      provisionRequest({ answerPublicKey: recipient.publicKey }),
      provisionRequest({ code: codes.unknown }),
      provisionRequest({ code: codes.spouse, itemCodes: ['resident-record'] }),
      provisionRequest({ code: codes.restricted }),
    ].map(({ protocol: _p, ...r }) => r);
    const res = await post('/v1/provisions/batch', { protocol: 'linkage-ledger/provision/v1', requests });
    expect(res.status).toBe(200);
    const responses = res.body['responses'] as Record<string, unknown>[];
    expect(responses.map((r) => r['status'] === 'refused' ? r['reason'] : r['status'])).toEqual(['answered', 'NO_RECORD', 'answered', 'AUTOMATIC_ANSWER_RESTRICTED']);
    expect(responses[0]).toMatchObject({ encrypted: true });
    expect(responses[2]).toMatchObject({ encrypted: false });
    const opened = await openAnswer(fromBase64url(responses[0]!['answer'] as string)!, recipient.privateKey, requests[0]!['serial'] as string);
    expect(JSON.parse(Buffer.from(opened).toString('utf8'))).toMatchObject({ items: { 'local-tax': { taxableIncome: 3120000 } } });
    for (const r of requests) expect(node.runtime.store.recordFor('provided', r['serial'] as string)).toBeDefined();
  });

  test('writes the records of distinct serials together (one durable write after another would make a batch as slow as its size)', async () => {
    const store = node.runtime.store;
    const original = store.recordDurably.bind(store);
    let inFlight = 0;
    let most = 0;
    store.recordDurably = async (r) => {
      inFlight += 1;
      most = Math.max(most, inFlight);
      try {
        return await original(r);
      } finally {
        inFlight -= 1;
      }
    };
    try {
      const requests = [provisionRequest(), provisionRequest({ code: codes.unknown }), provisionRequest(), provisionRequest({ code: codes.spouse, itemCodes: ['resident-record'] })].map(({ protocol: _p, ...r }) => r);
      const res = await post('/v1/provisions/batch', { protocol: 'linkage-ledger/provision/v1', requests });
      expect(res.status).toBe(200);
      expect((res.body['responses'] as Record<string, unknown>[]).map((r) => r['status'])).toEqual(['answered', 'refused', 'answered', 'answered']);
      expect(most).toBe(requests.length);
      for (const r of requests) expect(store.recordFor('provided', r['serial'] as string)).toBeDefined();
    } finally {
      store.recordDurably = original;
    }
  });

  test('answers a serial repeated inside a batch after its first request, with the first answer', async () => {
    const first = (({ protocol: _p, ...r }) => r)(provisionRequest());
    const res = await post('/v1/provisions/batch', { protocol: 'linkage-ledger/provision/v1', requests: [first, { ...first }] });
    expect(res.status).toBe(200);
    const [a, b] = res.body['responses'] as Record<string, unknown>[];
    expect(a).toMatchObject({ status: 'answered' });
    expect(b).toEqual(a);
  });

  test('one stale request refuses the whole batch, and nothing of it is recorded', async () => {
    const requests = [provisionRequest(), provisionRequest({ requestedAt: '2026-11-29T08:00:00.000Z' })];
    const res = await post('/v1/provisions/batch', { protocol: 'linkage-ledger/provision/v1', requests });
    expect(res.status).toBe(400);
    expect(res.body).toMatchObject({ code: 'STALE_REQUEST' });
    for (const r of requests) expect(node.runtime.store.recordFor('provided', r['serial'] as string)).toBeUndefined();
  });

  test('a batch with a bad signature is refused with 401 and nothing is recorded', async () => {
    const requests = [provisionRequest()];
    const res = await post('/v1/provisions/batch', { protocol: 'linkage-ledger/provision/v1', requests }, testSigner().sign('{}'));
    expect(res.status).toBe(401);
    expect(node.runtime.store.recordFor('provided', requests[0]!['serial'] as string)).toBeUndefined();
  });
});

describe('the agency store', () => {
  test('the provision record is append-only: UPDATE and DELETE are refused by the database', () => {
    const db = (node.runtime.store as unknown as { db: { prepare(sql: string): { run(): unknown } } }).db;
    expect(() => db.prepare("UPDATE provision_records SET outcome = 'answered'").run()).toThrow(/append-only/);
    expect(() => db.prepare('DELETE FROM provision_records').run()).toThrow(/append-only/);
  });

  test('copies are keyed by local id: an 11- or 12-digit id (a resident record code or an individual number) is refused', () => {
    expect(() => node.runtime.store.loadCopies([{ localId: '123456789018', items: { 'local-tax': 1 } }], NOW)).toThrow(/never an 11- or 12-digit/);
    expect(() => node.runtime.store.loadCopies([{ localId: '31415926535', items: {} }], NOW)).toThrow(/never an 11- or 12-digit/);
  });
});

describe('a person\'s own self-information request (requesterKind "citizen", 自己情報表示)', () => {
  const citizen = (overrides: Record<string, unknown> = {}) => {
    const { requesterAgencyId: _omitted, ...rest } = provisionRequest({ requesterKind: 'citizen', procedureCode: 'self-information', ...overrides });
    void _omitted;
    return rest;
  };

  test('answers from the copy of the item, sealed to the key the browser made (only it opens the answer), and records the person as counterpart', async () => {
    const browser = await generateAnswerKeyPair();
    const req = citizen({ answerPublicKey: browser.publicKey });
    const res = await post('/v1/provisions', req);
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    expect(res.body).toMatchObject({ status: 'answered', encrypted: true });
    const sealed = fromBase64url(res.body['answer'] as string)!;
    const plain = JSON.parse(Buffer.from(await openAnswer(sealed, browser.privateKey, req['serial'] as string)).toString('utf8'));
    expect(plain).toEqual({ items: { 'local-tax': demoCopies('muroran-city')[0]!.items['local-tax'] } });
    expect(node.runtime.store.recordFor('provided', req['serial'] as string)).toMatchObject({ role: 'provided', counterpartAgencyId: 'citizen:self', procedureCode: 'self-information', outcome: 'answered', encrypted: true });
  });

  test('refuses one without an answer key, one that names a requesting agency, or another procedure (400, nothing recorded)', async () => {
    const browser = await generateAnswerKeyPair();
    const before = providedRecords().length;
    for (const req of [citizen(), { ...citizen({ answerPublicKey: browser.publicKey }), requesterAgencyId: 'jpn-pension-service' }, citizen({ answerPublicKey: browser.publicKey, procedureCode: 'pension-award-claim' })]) {
      const res = await post('/v1/provisions', req);
      expect(res.status, JSON.stringify(req)).toBe(400);
      expect(res.body).toMatchObject({ code: 'VALIDATION_FAILED' });
    }
    // An agency's request still needs its requesterAgencyId.
    const { requesterAgencyId: _gone, ...anonymous } = provisionRequest();
    void _gone;
    expect((await post('/v1/provisions', anonymous)).body).toMatchObject({ code: 'VALIDATION_FAILED' });
    expect(providedRecords().length).toBe(before);
  });
});
