import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, test } from 'vitest';
import { agencyCodeFromRandomBytes } from '#linkage';
import { sealAnswer, toBase64url } from '#sealed-answer';
import { demoCopies, startTestNode, testSigner, type TestNode } from './support/agency-fixture.js';
import { json, startFakeHub, type FakeHub, type SeenRequest } from './support/fake-hub.js';

// The push receiver (POST /v1/pushes): the hub's signature, de-duplication by pushId in agency.sqlite
// (across a restart), and the fetch by an ordinary lawful query that follows a push when it is on.

const NOW = new Date('2026-12-05T03:00:00.000Z');
const STAFF = 'staff-token-for-mesh-tests';
const AOYAMA = 'P-4410-0000123';
const AOYAMA_CODE = agencyCodeFromRandomBytes(randomBytes(16));
const LOCAL_TAX = { fiscalYear: 2026, taxableIncome: 2980000, municipalTaxAmount: 178800 };
const signer = testSigner();
let serialSeq = 0;
const dirs: string[] = [];

function serial(): string {
  serialSeq++;
  return `2026120503${String(serialSeq).padStart(10, '0')}`;
}

function push(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    pushId: randomUUID(),
    serial: serial(),
    subscriptionId: randomUUID(),
    code: AOYAMA_CODE,
    providerAgencyId: 'muroran-city',
    procedureCode: 'pension-award-claim',
    itemCode: 'local-tax',
    updatedAt: '2026-12-05T02:59:00.000Z',
    issuedAt: NOW.toISOString(),
    ...overrides,
  };
}

async function deliver(node: TestNode, body: unknown, signature: string | null | undefined = undefined, text = JSON.stringify(body)) {
  const res = await node.app.inject({
    method: 'POST',
    url: '/v1/pushes',
    headers: { 'content-type': 'application/json', ...(signature === null ? {} : { 'hub-signature': signature ?? signer.sign(text) }) },
    payload: text,
  });
  return { status: res.statusCode, body: res.json() as Record<string, unknown> };
}

async function staffList(node: TestNode, token: string | null = STAFF) {
  const res = await node.app.inject({ method: 'GET', url: '/v1/pushes', headers: token === null ? {} : { authorization: `Bearer ${token}` } });
  return { status: res.statusCode, body: res.json() as Record<string, unknown> };
}

/** A pension-service node holding Aoyama-san under AOYAMA_CODE, on its own (or a given) data dir. */
async function pensionNode(options: { dataDir?: string; hubUrl?: string; pushFetch?: boolean } = {}): Promise<TestNode> {
  const node = await startTestNode({
    agencyId: 'jpn-pension-service',
    signer,
    staffToken: STAFF,
    now: NOW,
    ...(options.dataDir === undefined ? {} : { dataDir: options.dataDir }),
    ...(options.hubUrl === undefined ? {} : { hubUrl: options.hubUrl }),
    ...(options.pushFetch ? { pushFetch: { attempts: 3, backoffMs: 10 } } : {}),
  });
  if (node.runtime.store.person(AOYAMA)?.agencyCode == null) {
    node.runtime.store.loadCopies(demoCopies('jpn-pension-service'), NOW);
    node.runtime.store.setAgencyCode(AOYAMA, AOYAMA_CODE, NOW.toISOString());
  }
  return node;
}

function dataDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'agency-node-mesh-'));
  dirs.push(dir);
  return dir;
}

afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

describe('POST /v1/pushes: the hub signature', () => {
  let node: TestNode;
  beforeAll(async () => {
    node = await pensionNode();
  });
  afterAll(async () => node.close());

  test('a push signed by the hub is recorded durably and answered {pushId, duplicate: false}, with the person it names', async () => {
    const body = push();
    const res = await deliver(node, body);
    expect(res).toEqual({ status: 200, body: { pushId: body['pushId'], duplicate: false } });
    expect(node.runtime.store.mesh.push(body['pushId'] as string)).toMatchObject({
      pushId: body['pushId'],
      serial: body['serial'],
      subscriptionId: body['subscriptionId'],
      code: AOYAMA_CODE,
      localId: AOYAMA,
      providerAgencyId: 'muroran-city',
      procedureCode: 'pension-award-claim',
      itemCode: 'local-tax',
      updatedAt: body['updatedAt'],
      fetchWanted: false,
      fetch: null,
    });
  });

  test.each([
    ['a missing header', () => null, /header is missing/],
    ['a signature over other bytes', () => signer.sign('{"pushId":"other"}'), /must be "ed25519=/],
    ['a signature by another key', (text: string) => testSigner().sign(text), /must be "ed25519=/],
    ['a malformed header', () => 'ed25519=not-base64url!', /must be "ed25519=/],
    ['another scheme', () => `rsa=${'A'.repeat(86)}`, /must be "ed25519=/],
  ])('%s: 401 HUB_SIGNATURE_INVALID, nothing stored', async (_what, signatureFor, detail) => {
    const body = push();
    const text = JSON.stringify(body);
    const before = node.runtime.store.mesh.counts().pushes;
    const res = await deliver(node, body, signatureFor(text), text);
    expect(res.status).toBe(401);
    expect(res.body).toMatchObject({ code: 'HUB_SIGNATURE_INVALID', detail: expect.stringMatching(detail) });
    expect(node.runtime.store.mesh.counts().pushes).toBe(before);
    expect(node.runtime.store.mesh.push(body['pushId'] as string)).toBeUndefined();
  });

  test('a body changed after signing (one field) is refused: the signature is over the exact bytes', async () => {
    const body = push();
    const sig = signer.sign(JSON.stringify(body));
    const res = await deliver(node, { ...body, itemCode: 'resident-record' }, sig);
    expect(res).toMatchObject({ status: 401, body: { code: 'HUB_SIGNATURE_INVALID' } });
    expect(node.runtime.store.mesh.push(body['pushId'] as string)).toBeUndefined();
  });

  test('a signed push with wrong fields: 400 VALIDATION_FAILED naming each, nothing stored', async () => {
    const before = node.runtime.store.mesh.counts().pushes;
    const res = await deliver(node, push({ serial: '123', code: 'not-a-code', itemCode: 'Local Tax', updatedAt: 'yesterday', subscriptionId: undefined }));
    expect(res.status).toBe(400);
    expect(res.body['code']).toBe('VALIDATION_FAILED');
    expect((res.body['errors'] as { field: string }[]).map((e) => e.field).sort()).toEqual(['/code', '/itemCode', '/serial', '/subscriptionId', '/updatedAt']);
    expect(node.runtime.store.mesh.counts().pushes).toBe(before);
  });

  test('a push that names another subscriber (subscriberAgencyId, optional) is refused: 400 WRONG_SUBSCRIBER, nothing stored; naming this agency is fine', async () => {
    const other = push({ subscriberAgencyId: 'sapporo-city' });
    expect(await deliver(node, other)).toMatchObject({ status: 400, body: { code: 'WRONG_SUBSCRIBER', pushId: other['pushId'] } });
    expect(node.runtime.store.mesh.push(other['pushId'] as string)).toBeUndefined();
    const mine = push({ subscriberAgencyId: 'jpn-pension-service' });
    expect(await deliver(node, mine)).toMatchObject({ status: 200, body: { duplicate: false } });
  });

  test('a signed body that is not an object: 400, nothing stored', async () => {
    expect(await deliver(node, [push()])).toMatchObject({ status: 400, body: { code: 'VALIDATION_FAILED' } });
  });

  test('the same pushId with other content: 409 PUSH_ID_REUSED, the first stands', async () => {
    const body = push();
    expect((await deliver(node, body)).status).toBe(200);
    const res = await deliver(node, { ...body, itemCode: 'resident-record' });
    expect(res).toMatchObject({ status: 409, body: { code: 'PUSH_ID_REUSED', pushId: body['pushId'] } });
    expect(node.runtime.store.mesh.push(body['pushId'] as string)!.itemCode).toBe('local-tax');
  });

  test('a push for a code the node holds no one under is recorded (delivered), without a person, and not fetched', async () => {
    const body = push({ code: agencyCodeFromRandomBytes(randomBytes(16)) });
    expect(await deliver(node, body)).toMatchObject({ status: 200, body: { duplicate: false } });
    expect(node.runtime.store.mesh.push(body['pushId'] as string)).toMatchObject({ localId: null, fetchWanted: false });
  });

  test('the staff list the pushes newest first (staff token required)', async () => {
    expect(await staffList(node, null)).toMatchObject({ status: 401, body: { code: 'STAFF_TOKEN_INVALID' } });
    const list = await staffList(node);
    expect(list.status).toBe(200);
    const pushes = list.body['pushes'] as { id: number }[];
    expect(pushes.length).toBeGreaterThan(2);
    expect(pushes[0]!.id).toBeGreaterThan(pushes[1]!.id);
  });
});

describe('de-duplication by pushId, kept in agency.sqlite', () => {
  test('a redelivery is answered duplicate: true and stored once; after a restart of the node as well', async () => {
    const dir = dataDir();
    const body = push();
    let node = await pensionNode({ dataDir: dir });
    expect((await deliver(node, body)).body).toEqual({ pushId: body['pushId'], duplicate: false });
    // A redelivery by the hub (its answer was lost): the same bytes, or stamped with a new issuedAt.
    expect((await deliver(node, body)).body).toEqual({ pushId: body['pushId'], duplicate: true });
    expect((await deliver(node, { ...body, issuedAt: '2026-12-05T03:00:05.000Z' })).body).toEqual({ pushId: body['pushId'], duplicate: true });
    await node.close();

    node = await pensionNode({ dataDir: dir });
    try {
      expect((await deliver(node, body)).body).toEqual({ pushId: body['pushId'], duplicate: true });
      expect(node.runtime.store.mesh.pushes({ limit: 100 }).filter((p) => p.pushId === body['pushId'])).toHaveLength(1);
      const other = push();
      expect((await deliver(node, other)).body).toEqual({ pushId: other['pushId'], duplicate: false });
      expect(node.runtime.store.mesh.counts().pushes).toBe(2);
    } finally {
      await node.close();
    }
  });

  test('received pushes, their fetches, copy updates and their reports are append-only in the file', async () => {
    const node = await pensionNode();
    try {
      const body = push();
      await deliver(node, body);
      const mesh = node.runtime.store.mesh;
      mesh.recordFetch(body['pushId'] as string, { serial: null, outcome: 'not-sent', reason: 'CODE_NOT_ACQUIRED', items: null, attempts: 1, fetchedAt: NOW.toISOString() });
      mesh.addUpdate({ updateKey: 'u-1', localId: AOYAMA, itemCodes: ['pension-benefit'], updatedAt: NOW.toISOString(), idempotencyKey: 'k-1', requestDigest: 'd', loadedAt: NOW.toISOString() });
      mesh.recordReport(mesh.updates('u-1')[0]!.row, { outcome: 'refused', updateId: null, serial: null, subscribers: null, reason: 'X', reportedAt: NOW.toISOString() });
      const db = (node.runtime.store as unknown as { db: { prepare(sql: string): { run(): unknown } } }).db;
      const columns: Record<string, string> = { pushes: 'item_code', push_fetches: 'reason', copy_updates: 'local_id', update_reports: 'reason' };
      for (const [table, column] of Object.entries(columns)) {
        expect(() => db.prepare(`UPDATE ${table} SET ${column} = ${column}`).run(), table).toThrow(/append-only/);
        expect(() => db.prepare(`DELETE FROM ${table}`).run(), table).toThrow(/append-only/);
      }
    } finally {
      await node.close();
    }
  });
});

describe('the fetch after a push (AGENCY_PUSH_FETCH=on)', () => {
  let hub: FakeHub;
  const answers: { serial: string }[] = [];

  async function answered(req: SeenRequest, items: Record<string, unknown>) {
    const s = serial();
    const plain = new TextEncoder().encode(JSON.stringify({ items }));
    const bytes = await sealAnswer(plain, req.body['answerPublicKey'] as string, s);
    answers.push({ serial: s });
    return { serial: s, queryId: randomUUID(), outcome: 'answered', tableVersion: 2, answer: { data: toBase64url(bytes), encrypted: true, digest: createHash('sha256').update(bytes).digest('hex'), size: bytes.length } };
  }

  beforeAll(async () => {
    hub = await startFakeHub();
  });
  afterAll(async () => hub.close());
  afterEach(() => {
    hub.seen.length = 0;
  });

  test('queries the hub with the push\'s own code, procedure, provider and item, sealed to the node\'s key; stores the value and the record line; counted in the metrics', async () => {
    hub.handle(async (req, res) => json(res, 200, await answered(req, { 'local-tax': LOCAL_TAX })));
    const node = await pensionNode({ hubUrl: hub.url, pushFetch: true });
    try {
      const body = push();
      expect((await deliver(node, body)).body).toEqual({ pushId: body['pushId'], duplicate: false });
      await node.runtime.fetcher!.idle();
      expect(hub.seen).toHaveLength(1);
      expect(hub.seen[0]).toMatchObject({
        method: 'POST',
        path: '/v1/queries',
        body: { code: AOYAMA_CODE, providerAgencyId: 'muroran-city', procedureCode: 'pension-award-claim', itemCodes: ['local-tax'], answerPublicKey: node.runtime.keys.publicKey },
      });
      const stored = node.runtime.store.mesh.push(body['pushId'] as string)!;
      expect(stored.fetch).toMatchObject({ outcome: 'answered', serial: answers.at(-1)!.serial, items: { 'local-tax': LOCAL_TAX }, attempts: 1 });
      expect(node.runtime.store.recordFor('requested', answers.at(-1)!.serial)).toMatchObject({ outcome: 'answered', counterpartAgencyId: 'muroran-city', localId: AOYAMA, encrypted: true });
      // A redelivery fetches nothing again.
      expect((await deliver(node, body)).body).toEqual({ pushId: body['pushId'], duplicate: true });
      await node.runtime.fetcher!.idle();
      expect(hub.seen).toHaveLength(1);
      // Counted by outcome in the node's metrics (a refused push too).
      expect((await deliver(node, push(), null)).status).toBe(401);
      const metrics = (await node.app.inject({ method: 'GET', url: '/metrics' })).body;
      expect(metrics).toMatch(/^linkage_agency_pushes_received_total\{outcome="new"\} 1$/m);
      expect(metrics).toMatch(/^linkage_agency_pushes_received_total\{outcome="duplicate"\} 1$/m);
      expect(metrics).toMatch(/^linkage_agency_pushes_received_total\{outcome="rejected"\} 1$/m);
      expect(metrics).toMatch(/^linkage_agency_push_fetches_total\{outcome="answered"\} 1$/m);
    } finally {
      await node.close();
    }
  });

  test('the hub or the provider unavailable: tried again with backoff, then answered', async () => {
    let calls = 0;
    hub.handle(async (req, res) => {
      calls++;
      if (calls < 3) return json(res, 502, { code: 'PROVIDER_UNREACHABLE', title: 'x', detail: 'down', serial: serial() });
      json(res, 200, await answered(req, { 'local-tax': LOCAL_TAX }));
    });
    const node = await pensionNode({ hubUrl: hub.url, pushFetch: true });
    try {
      const body = push();
      await deliver(node, body);
      await node.runtime.fetcher!.idle();
      expect(calls).toBe(3);
      expect(node.runtime.store.mesh.push(body['pushId'] as string)!.fetch).toMatchObject({ outcome: 'answered', attempts: 3 });
    } finally {
      await node.close();
    }
  });

  test('a denial is final (not tried again) and stored with its code and serial', async () => {
    const s = serial();
    hub.handle((_req, res) => json(res, 403, { code: 'ITEM_NOT_ALLOWED', title: 'x', detail: 'no', serial: s }));
    const node = await pensionNode({ hubUrl: hub.url, pushFetch: true });
    try {
      const body = push();
      await deliver(node, body);
      await node.runtime.fetcher!.idle();
      expect(hub.seen).toHaveLength(1);
      expect(node.runtime.store.mesh.push(body['pushId'] as string)!.fetch).toMatchObject({ outcome: 'denied', reason: 'ITEM_NOT_ALLOWED', serial: s, items: null });
    } finally {
      await node.close();
    }
  });

  test('a fetch still pending when the node stops is made at its next start', async () => {
    const dir = dataDir();
    hub.handle((_req, res) => json(res, 503, { code: 'NOT_LEADER', title: 'x', detail: 'standby' }));
    let node = await startTestNode({ agencyId: 'jpn-pension-service', signer, staffToken: STAFF, now: NOW, dataDir: dir, hubUrl: hub.url, pushFetch: { attempts: 100, backoffMs: 60_000 } });
    node.runtime.store.loadCopies(demoCopies('jpn-pension-service'), NOW);
    node.runtime.store.setAgencyCode(AOYAMA, AOYAMA_CODE, NOW.toISOString());
    const body = push();
    await deliver(node, body);
    await new Promise((r) => setTimeout(r, 100));
    await node.close();
    expect(hub.seen.length).toBeGreaterThanOrEqual(1);

    hub.handle(async (req, res) => json(res, 200, await answered(req, { 'local-tax': LOCAL_TAX })));
    node = await pensionNode({ dataDir: dir, hubUrl: hub.url, pushFetch: true });
    try {
      await node.runtime.fetcher!.idle();
      expect(node.runtime.store.mesh.push(body['pushId'] as string)!.fetch).toMatchObject({ outcome: 'answered', items: { 'local-tax': LOCAL_TAX } });
    } finally {
      await node.close();
    }
  });
});
