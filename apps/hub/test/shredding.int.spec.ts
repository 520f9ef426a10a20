import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RecordedEvent } from '#ledger';
import { verifyOpening, type Opening } from '#sealing';
import { replayProvisionRecords } from '../../auditor/src/replay/replay-provision-records.js';
import { verifyLog } from '../../auditor/src/verify/verify-log.js';
import { readKey as readKeyOf } from './support/read-key.js';
import { expectProblem } from './support/problem-assertions.js';
import { FakeProvider, MURORAN_CITY, PENSION, acquire, bearer, issuePerson, operatorToken, registerAgency, startLinkageHub, type Agency } from './support/linkage-fixture.js';
import type { TestHub } from './support/test-hub.js';

/**
 * Crypto-shredding (I10): an erasure destroys one person's key, a retention sweep the keys of the years
 * past seven; their fields no longer open, everybody else's do, every proof still verifies, and a rebuild
 * skips what was shredded and says so.
 */
let now = new Date('2018-06-01T00:00:00.000Z');
let hub: TestHub;
let pension: Agency;
let muroran: Agency;
const muroranNode = new FakeProvider();
type Person = { individualNumber: string; citizenSecret: string; residentRecordCode: string; code: string };
let aoyama: Person;
let kato: Person;

async function person(): Promise<Person> {
  const p = await issuePerson(hub);
  const code = await acquire(hub, pension, p.individualNumber);
  await acquire(hub, muroran, p.individualNumber);
  return { ...p, code };
}

const query = async (p: Person) => {
  const res = await hub.post('/v1/queries', { code: p.code, providerAgencyId: MURORAN_CITY, procedureCode: 'pension-award-claim', itemCodes: ['local-tax'] }, bearer(pension.token));
  return res;
};

async function proofs(serial: string, token: string): Promise<{ envelope: string; openings: Opening[] }[]> {
  // Against the tree as it is (no checkpoint needed); it follows the log off the append path: wait for it.
  const size = await hub.head();
  for (let i = 0; i < 800; i++) {
    const res = await hub.get(`/v1/audit/proofs/inclusion?serial=${serial}&size=${size}`, bearer(token));
    if (res.statusCode === 200) return res.json<{ proofs: { envelope: string; openings: Opening[] }[] }>().proofs;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`no proof for ${serial}`);
}

beforeAll(async () => {
  hub = await startLinkageHub({ clock: () => now, env: { HUB_CHECKPOINT_EVERY_EVENTS: '5', HUB_AUTHORIZATION_TABLE_FILE: '' } });
  await muroranNode.start(hub);
  pension = await registerAgency(hub, PENSION, 'pension-service', 'http://127.0.0.1:9');
  muroran = await registerAgency(hub, MURORAN_CITY, 'municipality', muroranNode.endpoint);
  aoyama = await person();
  kato = await person();
});
afterAll(async () => {
  await hub?.dispose();
  await muroranNode.stop();
});

describe('erasure: one person\'s key shredded', () => {
  it('her fields no longer open, everybody else\'s do, openings given before still verify, and nothing more is recorded about her', async () => {
    now = new Date('2026-06-01T00:00:00.000Z');
    const hers = (await query(aoyama)).json<{ serial: string }>().serial;
    const his = (await query(kato)).json<{ serial: string }>().serial;
    const before = await proofs(hers, pension.token);
    const given = before.flatMap((p) => p.openings.map((o) => ({ envelope: JSON.parse(p.envelope) as RecordedEvent, opening: o })));
    expect(given.length).toBeGreaterThan(0);

    const erased = await hub.post('/v1/erasures', { individualNumber: aoyama.individualNumber, reason: 'erasure ordered, ref. T-1' }, bearer(operatorToken(hub)));
    expect(erased.statusCode, erased.body).toBe(201);
    const { serial } = erased.json<{ serial: string }>();
    const [event] = await hub.store.readSerial(serial as never);
    expect(event).toMatchObject({ type: 'KeysShredded', terminal: 'completed', data: { scope: 'erasure', reason: 'erasure ordered, ref. T-1' } });
    // The erased person is named only sealed (for the hub to forget her in its projections).
    expect(JSON.stringify(event)).not.toContain(aoyama.individualNumber);

    const opened = await hub.ledger.readSerial(hers as never);
    expect(opened.every((e) => (e.data as { subjectId?: unknown }).subjectId === undefined)).toBe(true);
    expect((opened[0]!.data as { sealed?: unknown }).sealed).toBe('shredded');
    expect((await proofs(hers, pension.token)).flatMap((p) => p.openings)).toEqual([]);
    expect((await proofs(his, pension.token)).flatMap((p) => p.openings).length).toBeGreaterThan(0);
    // Openings given before the erasure still verify: the stored text did not change.
    for (const g of given) verifyOpening(g.envelope, g.opening);

    // She is unknown from now on: her secret, her number and her codes name nobody.
    expectProblem(await hub.get('/v1/citizens/me/provision-records', bearer(aoyama.citizenSecret)), 401, 'UNAUTHENTICATED');
    expectProblem(await hub.post('/v1/agency-codes', { individualNumber: aoyama.individualNumber, acquisitionNumber: 'after' }, bearer(pension.token)), 404, 'UNKNOWN_INDIVIDUAL_NUMBER');
    expectProblem(await query(aoyama), 403, 'CODE_NOT_ISSUED_TO_REQUESTER');
    // Kato's exchanges go on.
    expect((await query(kato)).json()).toMatchObject({ outcome: expect.any(String) });
    const his2 = await hub.get('/v1/citizens/me/provision-records', bearer(kato.citizenSecret));
    expect(his2.json<{ records: unknown[] }>().records.length).toBeGreaterThanOrEqual(2);
  });

  it('the log still verifies; the rebuilt provision records equal the live ones, skipping what was shredded and saying so', async () => {
    const verifierKey = (await hub.get('/v1/audit/verifier-key')).body;
    const report = await verifyLog({ source: { kind: 'db', path: hub.config.ledgerPath }, verifierKey, threads: 1 });
    expect(report.firstFailure).toBeNull();
    expect(report.ok).toBe(true);
    expect(report.checkpoints.verified).toBeGreaterThan(0);
    const { sealer, close } = readKeyOf(hub.dataDir);
    try {
      const diff = await replayProvisionRecords(hub.config.ledgerPath, `${hub.dataDir}/projections.sqlite`, true, sealer);
      expect(diff).toMatchObject({ ok: true, differingRecords: 0 });
      expect(diff.shreddedSkipped).toBeGreaterThan(0);
    } finally {
      close();
    }
  });
});

describe('retention: the keys of the years past seven shredded', () => {
  it('a sweep shreds 2018 in 2027, records itself, and leaves later years and identities', async () => {
    now = new Date('2018-07-01T00:00:00.000Z');
    const old = (await query(kato)).json<{ serial: string }>().serial;
    now = new Date('2027-01-10T00:00:00.000Z');
    const recent = (await query(kato)).json<{ serial: string }>().serial;
    const res = await hub.post('/v1/retention-sweeps', { reason: 'annual sweep' }, bearer(operatorToken(hub)));
    expect(res.statusCode, res.body).toBe(201);
    expect(res.json()).toMatchObject({ scope: 'retention', throughEpoch: 2019, epochs: [2018] });
    expect(((await hub.ledger.readSerial(old as never))[0]!.data as { sealed?: unknown }).sealed).toBe('shredded');
    expect(((await hub.ledger.readSerial(recent as never))[0]!.data as { subjectId?: unknown }).subjectId).toEqual(expect.any(String));
    // His identity (numbers and codes, no year key) is untouched: he still queries and is queried.
    expect((await query(kato)).json()).toMatchObject({ outcome: expect.any(String) });
    const records = (await hub.get('/v1/citizens/me/provision-records', bearer(kato.citizenSecret))).json<{ records: { serial: string }[] }>().records.map((r) => r.serial);
    expect(records).not.toContain(old);
    expect(records).toContain(recent);
  });

  it('a restarted hub re-applies every shredding of its log (a crash between the event and the key ring)', async () => {
    // The key ring file is the hub's; what the log says was shredded stays shredded after a restart.
    await hub.close();
    const again = await startLinkageHub({ dataDir: hub.dataDir, clock: () => now, env: { HUB_REDIS_PREFIX: hub.config.linkage.redisPrefix!, HUB_AUTHORIZATION_TABLE_FILE: '' } });
    try {
      expectProblem(await again.get('/v1/citizens/me/provision-records', bearer(aoyama.citizenSecret)), 401, 'UNAUTHENTICATED');
      expect((await again.get('/v1/citizens/me/provision-records', bearer(kato.citizenSecret))).statusCode).toBe(200);
    } finally {
      await again.close();
    }
  });
});
