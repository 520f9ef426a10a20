import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FakeProvider, MURORAN_CITY, PENSION, acquire, bearer, issuePerson, registerAgency, startLinkageHub, type Agency } from './support/linkage-fixture.js';
import type { TestHub } from './support/test-hub.js';

// Single queries to one provider that the hub sends in the same turn of its event loop go as one batch call
// (HUB_PROVIDER_COALESCE, on by default): one signature and one check of it for all, each query still its own
// serial, record and outcome.
const PROCEDURE = 'pension-award-claim';
const LOCAL_TAX = { 'local-tax': { fiscalYear: 2026, taxableIncome: 3_120_000, municipalTax: 187_200 } };

async function network(coalesce: 'on' | 'off', people: number, transport: 'http' | 'grpc' = 'http') {
  const hub = await startLinkageHub({ env: { HUB_PROVIDER_COALESCE: coalesce } });
  const node = new FakeProvider();
  await node.start(hub);
  if (transport === 'grpc') await node.startGrpc();
  const pension = await registerAgency(hub, PENSION, 'pension-service', 'http://127.0.0.1:9');
  const muroran = await registerAgency(hub, MURORAN_CITY, 'municipality', transport === 'grpc' ? node.grpcEndpoint : node.endpoint);
  const codes: string[] = [];
  for (let i = 0; i < people; i++) {
    const person = await issuePerson(hub);
    codes.push(await acquire(hub, pension, person.individualNumber));
    const theirs = await acquire(hub, muroran, person.individualNumber);
    // Every second person has a record at Muroran; the others are refused NO_RECORD.
    if (i % 2 === 0) node.behaviours.set(theirs, { answer: LOCAL_TAX });
  }
  return { hub, node, pension, codes };
}

/** A network for the tests of one describe block, started before them and stopped after. */
function useNetwork(coalesce: 'on' | 'off', people: number, transport: 'http' | 'grpc' = 'http'): () => Awaited<ReturnType<typeof network>> {
  let n: Awaited<ReturnType<typeof network>> | undefined;
  beforeAll(async () => {
    n = await network(coalesce, people, transport);
  });
  afterAll(async () => {
    await n?.node.stop();
    await n?.hub.dispose();
  });
  return () => n!;
}

function query(hub: TestHub, agency: Agency, code: string) {
  return hub.post('/v1/queries', { code, providerAgencyId: MURORAN_CITY, procedureCode: PROCEDURE, itemCodes: ['local-tax'] }, bearer(agency.token));
}

describe('coalesced provision calls (HUB_PROVIDER_COALESCE=on)', () => {
  const net = useNetwork('on', 8);

  it('sends concurrent single queries in fewer calls than queries, each query with its own serial and its own outcome', async () => {
    const n = net();
    const before = n.node.calls.length;
    const replies = await Promise.all(n.codes.map((code) => query(n.hub, n.pension, code)));
    for (const r of replies) expect(r.statusCode, r.body).toBe(200);
    const bodies = replies.map((r) => r.json<{ serial: string; outcome: string; reason?: string }>());
    expect(bodies.map((b) => b.outcome)).toEqual(n.codes.map((_, i) => (i % 2 === 0 ? 'answered' : 'refused-by-provider')));
    expect(new Set(bodies.map((b) => b.serial)).size).toBe(n.codes.length);
    const calls = n.node.calls.slice(before);
    expect(calls.length).toBeLessThan(n.codes.length);
    expect(calls.some((c) => c.path === '/v1/provisions/batch')).toBe(true);
    expect(calls.every((c) => c.signatureValid)).toBe(true);
    // Every serial asked exactly once, and each in the call that asked it.
    const asked = calls.flatMap((c) => (c.path === '/v1/provisions/batch' ? (c.body['requests'] as { serial: string }[]).map((r) => r.serial) : [c.body['serial'] as string]));
    expect(asked.sort()).toEqual(bodies.map((b) => b.serial).sort());
    // The log ends each serial as the provider answered it (I2, I5).
    for (const b of bodies) {
      const types = (await n.hub.store.readSerial(b.serial as never)).map((e) => e.type);
      expect(types).toEqual(b.outcome === 'answered' ? ['QueryAccepted', 'ProvisionRequested', 'ProvisionAnswered', 'QueryCompleted'] : ['QueryAccepted', 'ProvisionRequested', 'ProvisionRefused', 'QueryCompleted']);
    }
  });

  it('asks again one query per call when the provider refuses a batch as a whole, so that no query fails for another', async () => {
    const n = net();
    n.node.batchStatus = 400;
    try {
      const before = n.node.calls.length;
      const replies = await Promise.all(n.codes.map((code) => query(n.hub, n.pension, code)));
      expect(replies.map((r) => r.json<{ outcome: string }>().outcome)).toEqual(n.codes.map((_, i) => (i % 2 === 0 ? 'answered' : 'refused-by-provider')));
      const calls = n.node.calls.slice(before);
      expect(calls.filter((c) => c.path === '/v1/provisions/batch').length).toBeGreaterThan(0);
      expect(calls.filter((c) => c.path === '/v1/provisions')).toHaveLength(n.codes.length);
    } finally {
      n.node.batchStatus = undefined;
    }
  });
});

describe('one call per query (HUB_PROVIDER_COALESCE=off)', () => {
  const net = useNetwork('off', 4);

  it('calls the provider once per query, even for concurrent ones', async () => {
    const n = net();
    const before = n.node.calls.length;
    const replies = await Promise.all(n.codes.map((code) => query(n.hub, n.pension, code)));
    for (const r of replies) expect(r.statusCode, r.body).toBe(200);
    expect(n.node.calls.slice(before).map((c) => c.path)).toEqual(n.codes.map(() => '/v1/provisions'));
  });
});

describe('coalesced provision calls over gRPC', () => {
  const net = useNetwork('on', 6, 'grpc');

  it('sends concurrent queries as ProvideBatch calls, and one query per call once the provider refuses the batch (INVALID_ARGUMENT)', async () => {
    const n = net();
    let before = n.node.calls.length;
    let replies = await Promise.all(n.codes.map((code) => query(n.hub, n.pension, code)));
    expect(replies.map((r) => r.json<{ outcome: string }>().outcome)).toEqual(n.codes.map((_, i) => (i % 2 === 0 ? 'answered' : 'refused-by-provider')));
    expect(n.node.calls.slice(before).some((c) => c.path === '/v1/provisions/batch')).toBe(true);
    expect(n.node.calls.slice(before).length).toBeLessThan(n.codes.length);
    n.node.batchStatus = 400;
    try {
      before = n.node.calls.length;
      replies = await Promise.all(n.codes.map((code) => query(n.hub, n.pension, code)));
      expect(replies.map((r) => r.json<{ outcome: string }>().outcome)).toEqual(n.codes.map((_, i) => (i % 2 === 0 ? 'answered' : 'refused-by-provider')));
      expect(n.node.calls.slice(before).filter((c) => c.path === '/v1/provisions')).toHaveLength(n.codes.length);
    } finally {
      n.node.batchStatus = undefined;
    }
  });
});
