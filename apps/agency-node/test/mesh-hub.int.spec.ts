import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { pushStreamId } from '#linkage';
import { startTestHub, type TestHub } from '../../hub/test/support/test-hub.js';
import { loadOrCreateAnswerKeys } from '../src/keys/answer-keys.js';
import { demoCopies, startTestNode, type TestNode } from './support/agency-fixture.js';

// The public service mesh end to end with the real hub (listening on a loopback port) and two real
// intermediate servers: Muroran City reports an update of Aoyama-san's local tax; the pension service,
// subscribed, is pushed (signed by the hub), fetches the new value by a lawful query, and her records
// show the push and the fetch.

const MURORAN = 'muroran-city';
const PENSION = 'jpn-pension-service';
const AOYAMA_M = 'M-000123';
const AOYAMA_P = 'P-4410-0000123';
const STAFF = 'staff-token-for-mesh-e2e';
const NEW_TAX = { fiscalYear: 2026, taxableIncome: 2980000, municipalTaxAmount: 178800, prefecturalTaxAmount: 119200, dependents: 1 };

let hub: TestHub;
let hubUrl: string;
const nodes: Record<string, TestNode> = {};
const dirs: string[] = [];
let aoyama: { individualNumber: string; citizenSecret: string };

async function staff(node: TestNode, method: 'GET' | 'POST' | 'DELETE', url: string, body?: unknown) {
  const res = await node.app.inject({
    method,
    url,
    headers: { authorization: `Bearer ${STAFF}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    ...(body === undefined ? {} : { payload: JSON.stringify(body) }),
  });
  return { status: res.statusCode, body: res.json() as Record<string, unknown> };
}

/** Registers the agency with the node's own answer key, then starts the node with the token the hub issued, listening on a free port. */
async function startAgency(agencyId: string, kind: string, extra: Record<string, unknown>, pushFetch: boolean): Promise<TestNode> {
  const dataDir = mkdtempSync(join(tmpdir(), `agency-node-mesh-${agencyId}-`));
  dirs.push(dataDir);
  const keys = await loadOrCreateAnswerKeys(join(dataDir, 'keys'));
  const registered = await hub.post('/v1/agencies', { agencyId, name: agencyId === MURORAN ? '室蘭市' : '日本年金機構', kind, endpoint: 'http://127.0.0.1:9', publicKey: keys.publicKey, ...extra }, hub.operator);
  expect(registered.statusCode, registered.body).toBe(201);
  const provisionKey = (await hub.get('/v1/hub/keys')).json<{ provisionSigningKey: string }>().provisionSigningKey;
  const node = await startTestNode({
    agencyId,
    signer: { publicKey: provisionKey, sign: () => '' },
    hubUrl,
    hubToken: registered.json<{ token: string }>().token,
    staffToken: STAFF,
    dataDir,
    ...(pushFetch ? { pushFetch: { attempts: 3, backoffMs: 50 } } : {}),
  });
  await node.app.listen({ port: 0, host: '127.0.0.1' });
  const patched = await hub.inject({ method: 'PATCH', url: `/v1/agencies/${agencyId}`, headers: { ...hub.operator, 'content-type': 'application/json' }, payload: JSON.stringify({ endpoint: await node.app.getUrl() }) });
  expect(patched.statusCode, patched.body).toBe(200);
  node.runtime.store.loadCopies(demoCopies(agencyId as 'muroran-city' | 'jpn-pension-service'), new Date());
  return node;
}

async function until<T>(what: string, probe: () => T | undefined | Promise<T | undefined>, timeoutMs = 15_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

beforeAll(async () => {
  hub = await startTestHub({ env: { HUB_AUTHORIZATION_TABLE_FILE: '', HUB_SELF_DISCLOSURE_TABLE_FILE: '', HUB_PUSH_RETRY_BASE_MS: '100' } });
  await hub.app.listen({ port: 0, host: '127.0.0.1' });
  hubUrl = (await hub.app.getUrl()).replace('[::1]', '127.0.0.1').replace('localhost', '127.0.0.1');
  nodes[MURORAN] = await startAgency(MURORAN, 'municipality', { municipalityCode: '012050' }, false);
  nodes[PENSION] = await startAgency(PENSION, 'pension-service', {}, true);
  const issued = await hub.post('/v1/individual-numbers', { residentRecordCode: '31415926535', municipalityCode: '012050' }, hub.operator);
  expect(issued.statusCode, issued.body).toBe(201);
  aoyama = issued.json<{ individualNumber: string; citizenSecret: string }>();
  await nodes[MURORAN].runtime.requester.acquire({ localId: AOYAMA_M, individualNumber: aoyama.individualNumber, acquisitionNumber: 'MESH-M-1' });
  await nodes[PENSION].runtime.requester.acquire({ localId: AOYAMA_P, individualNumber: aoyama.individualNumber, acquisitionNumber: 'MESH-P-1' });
}, 60_000);

afterAll(async () => {
  for (const node of Object.values(nodes)) await node.close();
  await hub?.dispose();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

describe('Muroran City updates Aoyama-san\'s local tax; the subscribed pension service is pushed and fetches it', () => {
  let subscriptionId: string;

  test('the pension service subscribes through its node (own code), and the hub refuses an item the row of the table does not hold, with its reason and serial', async () => {
    const res = await staff(nodes[PENSION]!, 'POST', '/v1/subscriptions', { localId: AOYAMA_P, providerAgencyId: MURORAN, procedureCode: 'pension-award-claim', itemCodes: ['local-tax'] });
    expect(res.status, JSON.stringify(res.body)).toBe(201);
    expect(res.body).toMatchObject({ localId: AOYAMA_P, status: 'active', subscriptionId: expect.any(String), serial: expect.stringMatching(/^\d{20}$/) });
    subscriptionId = res.body['subscriptionId'] as string;

    const listed = await staff(nodes[PENSION]!, 'GET', '/v1/subscriptions');
    expect(listed.status).toBe(200);
    expect(listed.body['subscriptions']).toEqual([expect.objectContaining({ subscriptionId, localId: AOYAMA_P, providerAgencyId: MURORAN, itemCodes: ['local-tax'], status: 'active' })]);

    const refused = await staff(nodes[PENSION]!, 'POST', '/v1/subscriptions', { localId: AOYAMA_P, providerAgencyId: MURORAN, procedureCode: 'pension-award-claim', itemCodes: ['livelihood-protection'] });
    expect(refused.status).toBe(403);
    // Not an item of the row at all: refused as a query would be, recorded under its own serial.
    expect(refused.body).toMatchObject({ code: 'ITEM_NOT_ALLOWED', serial: expect.stringMatching(/^\d{20}$/) });
    expect((await hub.store.readSerial(refused.body['serial'] as never)).length).toBe(1);
  });

  test('the update is stored at Muroran and reported; the hub pushes to the pension node, which records it once and fetches the new value', async () => {
    const updated = await staff(nodes[MURORAN]!, 'POST', '/v1/updates', { updateId: 'muroran-tax-2026-12', changes: [{ localId: AOYAMA_M, items: { 'local-tax': NEW_TAX } }] });
    expect(updated.status, JSON.stringify(updated.body)).toBe(200);
    expect(updated.body['results']).toEqual([expect.objectContaining({ localId: AOYAMA_M, itemCodes: ['local-tax'], outcome: 'reported', subscribers: 1, serial: expect.stringMatching(/^\d{20}$/) })]);

    const pension = nodes[PENSION]!;
    const received = await until('the push and its fetch', () => {
      const [push] = pension.runtime.store.mesh.pushes({ limit: 10 });
      return push?.fetch ? push : undefined;
    });
    expect(received).toMatchObject({ subscriptionId, localId: AOYAMA_P, providerAgencyId: MURORAN, procedureCode: 'pension-award-claim', itemCode: 'local-tax', fetchWanted: true });
    expect(received.fetch).toMatchObject({ outcome: 'answered', items: { 'local-tax': NEW_TAX }, serial: expect.stringMatching(/^\d{20}$/) });
    // The fetch is an ordinary query: in the pension node's record, and Muroran answered it from the new copy.
    expect(pension.runtime.store.recordFor('requested', received.fetch!.serial!)).toMatchObject({ outcome: 'answered', counterpartAgencyId: MURORAN, localId: AOYAMA_P, encrypted: true });
    expect(nodes[MURORAN]!.runtime.store.recordFor('provided', received.fetch!.serial!)).toMatchObject({ outcome: 'answered', counterpartAgencyId: PENSION, localId: AOYAMA_M });
    // The hub's push ends delivered, the receiver's answer (not a duplicate) recorded with it.
    const events = await until('PushDelivered', async () => {
      const stream = await hub.store.readStream(pushStreamId(received.pushId));
      return stream.length > 1 ? stream : undefined;
    });
    expect(events.map((e) => e.type)).toEqual(['PushIssued', 'PushDelivered']);
    expect(events[0]!.serial).toBe(received.serial);

    // Repeating the command sends nothing again: one push in all.
    const again = await staff(nodes[MURORAN]!, 'POST', '/v1/updates', { updateId: 'muroran-tax-2026-12', changes: [{ localId: AOYAMA_M, items: { 'local-tax': NEW_TAX } }] });
    expect(again.body).toEqual(updated.body);
    await new Promise((r) => setTimeout(r, 300));
    expect(pension.runtime.store.mesh.counts().pushes).toBe(1);
  });

  test('Aoyama-san\'s records show the push (delivered) and the fetch (a query of the pension service to Muroran City)', async () => {
    const auth = { authorization: `Bearer ${aoyama.citizenSecret}` };
    const [push] = nodes[PENSION]!.runtime.store.mesh.pushes({ limit: 1 });
    const pushes = await until('the push in her record', async () => {
      const res = await hub.get('/v1/citizens/me/push-records', auth);
      const body = res.json<{ pushes?: { serial: string; status: string }[] }>();
      return body.pushes?.find((p) => p.serial === push!.serial && p.status === 'delivered') ? body.pushes : undefined;
    });
    expect(pushes.find((p) => p.serial === push!.serial)).toMatchObject({
      subscriber: { agencyId: PENSION, name: '日本年金機構' },
      provider: { agencyId: MURORAN, name: '室蘭市' },
      procedureCode: 'pension-award-claim',
      itemCode: 'local-tax',
      status: 'delivered',
    });
    const records = await until('the fetch in her provision record', async () => {
      const body = (await hub.get('/v1/citizens/me/provision-records', auth)).json<{ records?: { serial: string }[] }>();
      return body.records?.some((r) => r.serial === push!.fetch!.serial) ? body.records : undefined;
    });
    expect(records.find((r) => r.serial === push!.fetch!.serial)).toMatchObject({ requester: { agencyId: PENSION }, provider: { agencyId: MURORAN } });
  });

  test('cancelled through the node, the subscription gets no further push', async () => {
    const cancelled = await staff(nodes[PENSION]!, 'DELETE', `/v1/subscriptions/${subscriptionId}`);
    expect(cancelled).toMatchObject({ status: 200, body: { subscriptionId, status: 'cancelled' } });
    const updated = await staff(nodes[MURORAN]!, 'POST', '/v1/updates', { changes: [{ localId: AOYAMA_M, items: { 'local-tax': { ...NEW_TAX, dependents: 2 } } }] });
    expect(updated.body['results']).toEqual([expect.objectContaining({ outcome: 'reported', subscribers: 0 })]);
  });
});
