import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { afterAll, beforeAll, beforeEach, describe, expect, test } from 'vitest';
import { agencyCodeFromRandomBytes, isX25519PublicKey } from '#linkage';
import { sealAnswer, toBase64url } from '#sealed-answer';
import { demoCopies, startTestNode, testSigner, type TestNode } from './support/agency-fixture.js';
import { json, startFakeHub, type FakeHub, type SeenRequest } from './support/fake-hub.js';

const NOW = new Date('2026-11-29T09:00:00.000Z');
const STAFF_TOKEN = 'staff-token-for-tests';
const PENSION_CODE = agencyCodeFromRandomBytes(randomBytes(16));
const LOCAL_TAX = { fiscalYear: 2026, taxableIncome: 3120000, municipalTaxAmount: 187200 };
let hub: FakeHub;
let node: TestNode;
let serialSeq = 0;

function nextSerial(): string {
  serialSeq++;
  return `2026112901${String(serialSeq).padStart(10, '0')}`;
}

/** What the hub relays for an answered query: the provider's bytes, sealed when the query carried a key. */
async function answered(req: SeenRequest, items: Record<string, unknown>, tamper?: (a: { data: string; encrypted: boolean; digest: string; size: number }) => void) {
  const serial = nextSerial();
  const plain = new TextEncoder().encode(JSON.stringify({ items }));
  const key = req.body['answerPublicKey'];
  const bytes = typeof key === 'string' ? await sealAnswer(plain, key, serial) : plain;
  const answer = { data: toBase64url(bytes), encrypted: typeof key === 'string', digest: createHash('sha256').update(bytes).digest('hex'), size: bytes.length };
  tamper?.(answer);
  return { serial, queryId: randomUUID(), outcome: 'answered', tableVersion: 1, answer };
}

async function staff(method: 'GET' | 'POST', url: string, body?: unknown, token: string | null = STAFF_TOKEN) {
  const res = await node.app.inject({
    method,
    url,
    headers: { ...(body === undefined ? {} : { 'content-type': 'application/json' }), ...(token === null ? {} : { authorization: `Bearer ${token}` }) },
    ...(body === undefined ? {} : { payload: JSON.stringify(body) }),
  });
  return { status: res.statusCode, body: res.json() as Record<string, unknown> };
}

const query = (overrides: Record<string, unknown> = {}) =>
  staff('POST', '/v1/queries', { localId: 'P-4410-0000123', providerAgencyId: 'muroran-city', procedureCode: 'pension-award-claim', itemCodes: ['local-tax'], ...overrides });

beforeAll(async () => {
  hub = await startFakeHub();
  node = await startTestNode({ agencyId: 'jpn-pension-service', signer: testSigner(), hubUrl: hub.url, staffToken: STAFF_TOKEN, now: NOW });
  node.runtime.store.loadCopies(demoCopies('jpn-pension-service'), NOW);
  node.runtime.store.setAgencyCode('P-4410-0000123', PENSION_CODE, NOW.toISOString());
});
afterAll(async () => {
  await node.close();
  await hub.close();
});
beforeEach(() => {
  hub.seen.length = 0;
});

describe('POST /v1/queries', () => {
  test('asks the hub with its own code and answer key, opens the sealed answer, and records the exchange', async () => {
    hub.handle(async (req, res) => json(res, 200, await answered(req, { 'local-tax': LOCAL_TAX })));
    const res = await query();
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ outcome: 'answered', tableVersion: 1, items: { 'local-tax': LOCAL_TAX } });
    expect(hub.seen).toHaveLength(1);
    const sent = hub.seen[0]!;
    expect(sent.path).toBe('/v1/queries');
    expect(sent.headers['authorization']).toBe('Bearer test-agency-token');
    expect(sent.headers['idempotency-key']).toMatch(/^[0-9a-f-]{36}$/);
    expect(sent.body).toEqual({ code: PENSION_CODE, providerAgencyId: 'muroran-city', procedureCode: 'pension-award-claim', itemCodes: ['local-tax'], answerPublicKey: node.runtime.keys.publicKey });
    expect(isX25519PublicKey(sent.body['answerPublicKey'])).toBe(true);
    expect(node.runtime.store.recordFor('requested', res.body['serial'] as string)).toMatchObject({
      role: 'requested',
      queryId: res.body['queryId'],
      counterpartAgencyId: 'muroran-city',
      localId: 'P-4410-0000123',
      outcome: 'answered',
      encrypted: true,
    });
  });

  test('encrypt: false sends no answer key and takes the plaintext answer', async () => {
    hub.handle(async (req, res) => json(res, 200, await answered(req, { 'local-tax': LOCAL_TAX })));
    const res = await query({ encrypt: false });
    expect(res.body).toMatchObject({ outcome: 'answered', items: { 'local-tax': LOCAL_TAX } });
    expect(hub.seen[0]!.body).not.toHaveProperty('answerPublicKey');
  });

  test('a refusal by the provider is returned with its reason and recorded', async () => {
    const serial = nextSerial();
    hub.handle((_req, res) => json(res, 200, { serial, queryId: 'q-refused', outcome: 'refused-by-provider', reason: 'AUTOMATIC_ANSWER_RESTRICTED' }));
    const res = await query();
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ serial, queryId: 'q-refused', outcome: 'refused-by-provider', reason: 'AUTOMATIC_ANSWER_RESTRICTED' });
    expect(node.runtime.store.recordFor('requested', serial)).toMatchObject({ outcome: 'refused-by-provider', reason: 'AUTOMATIC_ANSWER_RESTRICTED' });
  });

  test('a 403 denial by the hub is passed on with its code and serial, and recorded', async () => {
    const serial = nextSerial();
    hub.handle((_req, res) => json(res, 403, { type: 'x', title: 'The query is not allowed', status: 403, code: 'ITEM_NOT_ALLOWED', detail: 'pension-award-claim may not ask for resident-record', serial }));
    const res = await query({ itemCodes: ['resident-record'] });
    expect(res.status).toBe(403);
    expect(res.body).toMatchObject({ code: 'ITEM_NOT_ALLOWED', serial, title: 'The query is not allowed', detail: 'pension-award-claim may not ask for resident-record' });
    expect(node.runtime.store.recordFor('requested', serial)).toMatchObject({ outcome: 'denied', reason: 'ITEM_NOT_ALLOWED', itemCodes: ['resident-record'] });
  });

  test('a 504 failure (provider timeout) is passed on with its code and serial, and recorded as failed', async () => {
    const serial = nextSerial();
    hub.handle((_req, res) => json(res, 504, { code: 'PROVIDER_TIMEOUT', title: 'The provider did not answer in time', detail: 'no answer within 5000 ms', serial }));
    const res = await query();
    expect(res.status).toBe(504);
    expect(res.body).toMatchObject({ code: 'PROVIDER_TIMEOUT', serial });
    expect(node.runtime.store.recordFor('requested', serial)).toMatchObject({ outcome: 'failed', reason: 'PROVIDER_TIMEOUT' });
  });

  test.each([
    ['a changed byte', (a: { data: string }) => void (a.data = flipFirst(a.data))],
    ['a wrong size', (a: { size: number }) => void (a.size += 1)],
    ['a wrong digest', (a: { digest: string }) => void (a.digest = '0'.repeat(64))],
  ])('detects %s in the relayed answer: 502 ANSWER_DIGEST_MISMATCH with the serial, recorded as failed, no items', async (_what, tamper) => {
    let serial = '';
    hub.handle(async (req, res) => {
      const body = await answered(req, { 'local-tax': LOCAL_TAX }, tamper as never);
      serial = body.serial;
      json(res, 200, body);
    });
    const res = await query();
    expect(res.status).toBe(502);
    expect(res.body).toMatchObject({ code: 'ANSWER_DIGEST_MISMATCH', serial });
    expect(res.body).not.toHaveProperty('items');
    expect(node.runtime.store.recordFor('requested', serial)).toMatchObject({ outcome: 'failed', reason: 'ANSWER_DIGEST_MISMATCH' });
  });

  test('an idempotent replay without the bytes (the first reply was lost) is 502 ANSWER_LOST with the serial, recorded as failed', async () => {
    let serial = '';
    hub.handle(async (req, res) => {
      const body = await answered(req, { 'local-tax': LOCAL_TAX });
      serial = body.serial;
      json(res, 200, { ...body, answer: { ...body.answer, data: undefined } });
    });
    const res = await query();
    expect(res.status).toBe(502);
    expect(res.body).toMatchObject({ code: 'ANSWER_LOST', serial });
    expect(node.runtime.store.recordFor('requested', serial)).toMatchObject({ outcome: 'failed', reason: 'ANSWER_LOST' });
  });

  test('an answer sealed to another key (digest intact) cannot be opened: 502 ANSWER_DECRYPTION_FAILED', async () => {
    let serial = '';
    hub.handle(async (req, res) => {
      const body = await answered({ ...req, body: { ...req.body, answerPublicKey: (await import('#sealed-answer')).toBase64url(randomBytes(32)) } }, { 'local-tax': LOCAL_TAX });
      serial = body.serial;
      json(res, 200, body);
    });
    const res = await query();
    expect(res.status).toBe(502);
    expect(res.body).toMatchObject({ code: 'ANSWER_DECRYPTION_FAILED', serial });
  });

  test('a network error is retried with the same idempotency key', async () => {
    let calls = 0;
    hub.handle(async (req, res) => {
      calls++;
      if (calls === 1) {
        res.socket?.destroy();
        return;
      }
      json(res, 200, await answered(req, { 'local-tax': LOCAL_TAX }));
    });
    const res = await query();
    expect(res.status).toBe(200);
    expect(hub.seen).toHaveLength(2);
    expect(hub.seen[1]!.headers['idempotency-key']).toBe(hub.seen[0]!.headers['idempotency-key']);
    const again = await query();
    expect(again.status).toBe(200);
    expect(hub.seen[2]!.headers['idempotency-key']).not.toBe(hub.seen[0]!.headers['idempotency-key']);
  });

  test('PERSON_NOT_FOUND and CODE_NOT_ACQUIRED are answered without asking the hub', async () => {
    const unknown = await query({ localId: 'P-0000-9999999' });
    expect(unknown).toMatchObject({ status: 404, body: { code: 'PERSON_NOT_FOUND' } });
    const noCode = await query({ localId: 'P-4410-0000456' });
    expect(noCode).toMatchObject({ status: 409, body: { code: 'CODE_NOT_ACQUIRED' } });
    expect(hub.seen).toHaveLength(0);
  });

  test('the staff token is required when configured', async () => {
    expect(await staff('POST', '/v1/queries', {}, null)).toMatchObject({ status: 401, body: { code: 'STAFF_TOKEN_INVALID' } });
    expect(await staff('GET', '/v1/provision-records', undefined, 'wrong')).toMatchObject({ status: 401, body: { code: 'STAFF_TOKEN_INVALID' } });
    expect(hub.seen).toHaveLength(0);
  });

  test('a body that is not a valid query is refused field by field', async () => {
    const res = await staff('POST', '/v1/queries', { localId: '123456789018', providerAgencyId: 'Muroran', procedureCode: 'x', itemCodes: [], extra: 1 });
    expect(res.status).toBe(400);
    expect((res.body['errors'] as { field: string }[]).map((e) => e.field).sort()).toEqual(['extra', 'itemCodes', 'localId', 'providerAgencyId']);
  });
});

describe('POST /v1/queries/bulk', () => {
  test('one hub call for the persons with codes; results mapped back to local ids, answers opened, local failures not sent', async () => {
    const second = agencyCodeFromRandomBytes(randomBytes(16));
    node.runtime.store.loadCopies([{ localId: 'P-BULK-1', items: {} }], NOW);
    node.runtime.store.setAgencyCode('P-BULK-1', second, NOW.toISOString());
    hub.handle(async (req, res) => {
      const codes = req.body['codes'] as string[];
      const first = await answered(req, { 'local-tax': LOCAL_TAX });
      json(res, 200, {
        batchId: 'batch-1',
        results: [
          { index: 1, serial: nextSerial(), queryId: 'q-2', outcome: 'refused-by-provider', reason: 'NO_RECORD' },
          { index: 0, ...first },
        ].slice(0, codes.length),
      });
    });
    const res = await staff('POST', '/v1/queries/bulk', {
      localIds: ['P-4410-0000123', 'P-0000-9999999', 'P-BULK-1'],
      providerAgencyId: 'muroran-city',
      procedureCode: 'pension-award-claim',
      itemCodes: ['local-tax'],
    });
    expect(res.status).toBe(200);
    expect(hub.seen[0]!.body).toMatchObject({ codes: [PENSION_CODE, second], answerPublicKey: node.runtime.keys.publicKey });
    expect(res.body['batchId']).toBe('batch-1');
    expect(res.body['results']).toEqual([
      expect.objectContaining({ index: 0, localId: 'P-4410-0000123', outcome: 'answered', items: { 'local-tax': LOCAL_TAX } }),
      { index: 1, localId: 'P-0000-9999999', outcome: 'not-sent', reason: 'PERSON_NOT_FOUND' },
      expect.objectContaining({ index: 2, localId: 'P-BULK-1', queryId: 'q-2', outcome: 'refused-by-provider', reason: 'NO_RECORD' }),
    ]);
  });
});

describe('POST /v1/agency-codes', () => {
  test('forwards the individual number once, stores only the code; the number is nowhere in the data dir', async () => {
    const code = agencyCodeFromRandomBytes(randomBytes(16));
    hub.handle((_req, res) => json(res, 201, { code, serial: nextSerial(), acquiredAt: NOW.toISOString(), reacquired: false }));
    const res = await staff('POST', '/v1/agency-codes', { localId: 'P-4410-0000456', individualNumber: '123456789018', acquisitionNumber: 'ACQ-2026-0001' });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ localId: 'P-4410-0000456', code, reacquired: false });
    expect(hub.seen[0]!.body).toEqual({ individualNumber: '123456789018', acquisitionNumber: 'ACQ-2026-0001' });
    expect(node.runtime.store.person('P-4410-0000456')).toMatchObject({ agencyCode: code });
    const { readdirSync, readFileSync, statSync } = await import('node:fs');
    const { join } = await import('node:path');
    const files = (dir: string): string[] => readdirSync(dir).flatMap((f) => (statSync(join(dir, f)).isDirectory() ? files(join(dir, f)) : [join(dir, f)]));
    for (const file of files(node.dataDir)) expect(readFileSync(file).includes(Buffer.from('123456789018')), file).toBe(false);
  });

  test('a wrong check digit is refused before the hub is asked, without echoing the number', async () => {
    const res = await staff('POST', '/v1/agency-codes', { localId: 'P-4410-0000456', individualNumber: '123456789012', acquisitionNumber: 'ACQ-1' });
    expect(res).toMatchObject({ status: 422, body: { code: 'CHECK_DIGIT_MISMATCH' } });
    expect(JSON.stringify(res.body)).not.toContain('123456789012');
    expect(hub.seen).toHaveLength(0);
  });
});

describe('POST /v1/notices', () => {
  test('sends the notice under the agency\'s own code, never a local id; the hub\'s refusal is passed on', async () => {
    const sent = { noticeId: '0193a1b2-0000-7000-8000-000000000001', serial: nextSerial(), sentAt: NOW.toISOString() };
    hub.handle((_req, res) => json(res, 201, sent));
    const res = await staff('POST', '/v1/notices', { localId: 'P-4410-0000123', title: 'ねんきん定期便', body: '見込額のお知らせ' });
    expect(res).toMatchObject({ status: 201, body: { localId: 'P-4410-0000123', ...sent } });
    expect(hub.seen[0]).toMatchObject({ method: 'POST', path: '/v1/notices', body: { code: PENSION_CODE, title: 'ねんきん定期便', body: '見込額のお知らせ' } });

    hub.handle((_req, res) => json(res, 404, { code: 'UNKNOWN_CODE', title: 'No person holds this code at the calling agency', detail: 'no person holds this code' }));
    const refused = await staff('POST', '/v1/notices', { localId: 'P-4410-0000123', title: 't', body: 'b' });
    expect(refused).toMatchObject({ status: 404, body: { code: 'UNKNOWN_CODE' } });
  });

  test('a person the node does not hold is refused before the hub is asked', async () => {
    const res = await staff('POST', '/v1/notices', { localId: 'P-0000-9999999', title: 't', body: 'b' });
    expect(res).toMatchObject({ status: 404, body: { code: 'PERSON_NOT_FOUND' } });
    expect(hub.seen).toHaveLength(0);
  });
});

describe('GET /v1/provision-records', () => {
  test('newest first, with paging', async () => {
    const first = await staff('GET', '/v1/provision-records?limit=2');
    expect(first.status).toBe(200);
    const records = first.body['records'] as { id: number }[];
    expect(records).toHaveLength(2);
    expect(records[0]!.id).toBeGreaterThan(records[1]!.id);
    const next = await staff('GET', `/v1/provision-records?limit=2&before=${String(first.body['nextBefore'])}`);
    expect((next.body['records'] as { id: number }[])[0]!.id).toBeLessThan(records[1]!.id);
    expect(await staff('GET', '/v1/provision-records?limit=0')).toMatchObject({ status: 400, body: { code: 'VALIDATION_FAILED' } });
  });
});

function flipFirst(data: string): string {
  const c = data[5] === 'A' ? 'B' : 'A';
  return data.slice(0, 5) + c + data.slice(6);
}
