import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { agencyCodeFromRandomBytes } from '#linkage';
import { DEMO_DIR, testSigner } from './support/agency-fixture.js';
import { json, startFakeHub, type FakeHub } from './support/fake-hub.js';
import { runCommand, runNode, startNode } from './support/spawned-node.js';

// The mesh's CLI commands of the built node (update-copies, report-updates, subscribe, subscriptions,
// unsubscribe, pushes) against a stand-in hub, and a push received by the served node.

describe('the built agency node: the public service mesh on the command line', () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'agency-mesh-e2e-'));
  const cwd = mkdtempSync(join(tmpdir(), 'agency-mesh-e2e-cwd-'));
  const signer = testSigner();
  const code = agencyCodeFromRandomBytes(randomBytes(16));
  const subscriptionId = randomUUID();
  let hub: FakeHub;
  let env: Record<string, string>;
  let hubDown = false;

  beforeAll(async () => {
    hub = await startFakeHub();
    hub.handle((req, res) => {
      if (req.path === '/v1/hub/keys') return json(res, 200, { provisionSigningKey: signer.publicKey });
      if (req.path === '/v1/agency-codes') return json(res, 201, { code, serial: '20261205010000000001', acquiredAt: new Date().toISOString(), reacquired: false });
      if (req.path === '/v1/updates') return hubDown ? json(res, 503, { code: 'NOT_LEADER', title: 'x', detail: 'standby' }) : json(res, 202, { updateId: 'u-1', serial: '20261205010000000002', subscribers: 3 });
      if (req.path === '/v1/subscriptions' && req.method === 'POST') return json(res, 201, { subscriptionId, serial: '20261205010000000003', status: 'active', tableVersion: 2, createdAt: '2026-12-05T03:00:00.000Z', expiresAt: '2027-12-05T03:00:00.000Z' });
      if (req.path.startsWith('/v1/subscriptions?')) return json(res, 200, { subscriptions: [{ subscriptionId, code, status: 'active' }] });
      if (req.method === 'DELETE') return json(res, 200, { subscriptionId, serial: '20261205010000000004', status: 'cancelled' });
      json(res, 404, { code: 'NOT_FOUND', title: 'x', detail: 'x' });
    });
    env = { AGENCY_ID: 'muroran-city', AGENCY_DATA_DIR: dataDir, AGENCY_HUB_URL: hub.url, AGENCY_TOKEN: 'e2e-token', AGENCY_LOG_LEVEL: 'log' };
    await runCommand(['load-copies', join(DEMO_DIR, 'muroran-city.copies.json')], env, cwd);
    await runCommand(['acquire', '--local-id', 'M-000123', '--individual-number', '-', '--acquisition-number', 'ACQ-1'], env, cwd, '123456789018\n');
  });
  afterAll(async () => {
    await hub.close();
    rmSync(dataDir, { recursive: true, force: true });
    rmSync(cwd, { recursive: true, force: true });
  });

  test('update-copies stores and reports; pending while the hub is down, then report-updates sends it with the same key', async () => {
    const file = join(cwd, 'changes.json');
    writeFileSync(file, JSON.stringify([{ localId: 'M-000123', items: { 'local-tax': { fiscalYear: 2026, taxableIncome: 2980000 } } }]));
    const first = (await runCommand(['update-copies', file, '--update-id', 'cli-1', '--updated-at', '2026-12-05T03:00:00Z'], env, cwd)) as Record<string, unknown>;
    expect(first).toEqual({ updateId: 'cli-1', updatedAt: '2026-12-05T03:00:00Z', results: [{ localId: 'M-000123', itemCodes: ['local-tax'], outcome: 'reported', hubUpdateId: 'u-1', serial: '20261205010000000002', subscribers: 3 }] });
    const sent = hub.seen.filter((r) => r.path === '/v1/updates');
    expect(sent.map((r) => r.body)).toEqual([{ code, itemCodes: ['local-tax'], updatedAt: '2026-12-05T03:00:00Z' }]);
    expect(sent[0]!.headers['authorization']).toBe('Bearer e2e-token');

    hubDown = true;
    writeFileSync(file, JSON.stringify({ updateId: 'cli-2', changes: [{ localId: 'M-000123', items: { 'local-tax': { fiscalYear: 2026, taxableIncome: 1 } } }] }));
    const pending = (await runCommand(['update-copies', file], env, cwd)) as { results: unknown[] };
    expect(pending.results).toEqual([{ localId: 'M-000123', itemCodes: ['local-tax'], outcome: 'pending', reason: 'NOT_LEADER' }]);
    hubDown = false;
    expect(await runCommand(['report-updates'], env, cwd)).toEqual({ reported: 1, pending: 0 });
    const keys = hub.seen.filter((r) => r.path === '/v1/updates').map((r) => r.headers['idempotency-key']);
    expect(keys).toHaveLength(3);
    expect(keys[2]).toBe(keys[1]);

    const bad = runNode(['update-copies', file, '--update-id', 'cli-1'], env, cwd);
    expect((await bad.exited).code).toBe(1);
    expect(JSON.parse(bad.output())).toMatchObject({ code: 'UPDATE_ID_REUSED', status: 409 });
  });

  test('subscribe, subscriptions, unsubscribe', async () => {
    expect(await runCommand(['subscribe', '--local-id', 'M-000123', '--provider', 'jpn-pension-service', '--procedure', 'child-allowance', '--items', 'pension-enrollment'], env, cwd)).toMatchObject({ subscriptionId, localId: 'M-000123', status: 'active' });
    expect(hub.seen.find((r) => r.path === '/v1/subscriptions' && r.method === 'POST')!.body).toEqual({ code, providerAgencyId: 'jpn-pension-service', procedureCode: 'child-allowance', itemCodes: ['pension-enrollment'] });
    expect(await runCommand(['subscriptions', '--limit', '10'], env, cwd)).toEqual({ subscriptions: [{ subscriptionId, code, status: 'active', localId: 'M-000123' }] });
    expect(await runCommand(['unsubscribe', subscriptionId], env, cwd)).toEqual({ subscriptionId, serial: '20261205010000000004', status: 'cancelled' });
    expect(hub.seen.at(-1)).toMatchObject({ method: 'DELETE', path: `/v1/subscriptions/${subscriptionId}` });
  });

  test('serve takes a signed push once (a forged one refused), and `pushes` lists it', async () => {
    const node = await startNode(env, cwd);
    try {
      const body = JSON.stringify({ pushId: randomUUID(), serial: '20261205010000000009', subscriptionId, code, providerAgencyId: 'jpn-pension-service', procedureCode: 'child-allowance', itemCode: 'pension-enrollment', updatedAt: '2026-12-05T03:00:00Z', issuedAt: '2026-12-05T03:00:01Z' });
      const deliver = (signature: string) => fetch(`${node.baseUrl}/v1/pushes`, { method: 'POST', headers: { 'content-type': 'application/json', 'hub-signature': signature }, body });
      const forged = await deliver(testSigner().sign(body));
      expect(forged.status).toBe(401);
      expect(await (await deliver(signer.sign(body))).json()).toEqual({ pushId: JSON.parse(body).pushId, duplicate: false });
      expect(await (await deliver(signer.sign(body))).json()).toEqual({ pushId: JSON.parse(body).pushId, duplicate: true });
    } finally {
      node.child.kill('SIGTERM');
      await node.exited;
    }
    const listed = (await runCommand(['pushes'], env, cwd)) as { pushes: { localId: string; serial: string; fetch: unknown }[] };
    expect(listed.pushes).toEqual([expect.objectContaining({ localId: 'M-000123', serial: '20261205010000000009', fetch: null })]);
  });
});
