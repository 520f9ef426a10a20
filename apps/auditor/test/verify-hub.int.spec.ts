import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { leafHash, toHex } from '#audit-log';
import { TreeFollower } from '../../hub/src/audit/tree-follower.service.js';
import { FakeProvider, MURORAN_CITY, PENSION, acquire, bearer, issuePerson, registerAgency, startLinkageHub } from '../../hub/test/support/linkage-fixture.js';
import type { TestHub } from '../../hub/test/support/test-hub.js';
import { verifyLog } from '../src/verify/verify-log.js';
import { tamper } from './support/ledger-fixture.js';

/** A live hub over HTTP with lawful queries answered and several checkpoints signed. */
let hub: TestHub;
let url: string;
let verifierKey: string;
const provider = new FakeProvider();

beforeAll(async () => {
  hub = await startLinkageHub({ env: { HUB_CHECKPOINT_EVERY_EVENTS: '7' } });
  await provider.start(hub);
  const pension = await registerAgency(hub, PENSION, 'pension-service', 'http://127.0.0.1:9');
  const muroran = await registerAgency(hub, MURORAN_CITY, 'municipality', provider.endpoint);
  for (let i = 0; i < 4; i++) {
    const person = await issuePerson(hub);
    const code = await acquire(hub, pension, person.individualNumber);
    provider.behaviours.set(await acquire(hub, muroran, person.individualNumber), { answer: { 'local-tax': { fiscalYear: 2026 } } });
    const res = await hub.post('/v1/queries', { code, providerAgencyId: MURORAN_CITY, procedureCode: 'pension-award-claim', itemCodes: ['local-tax'] }, bearer(pension.token));
    expect(res.statusCode, res.body).toBe(200);
  }
  // Something after the last query, so that a checkpoint covers every event of it.
  for (let i = 0; i < 8; i++) await hub.post('/v1/corporate-numbers', { name: `株式会社監査${i}`, location: '北海道室蘭市幸町1番2号', kind: 'stock-company' }, hub.operator);
  await hub.app.get(TreeFollower).catchUp();
  await hub.app.listen({ host: '127.0.0.1', port: 0 });
  url = await hub.app.getUrl();
  verifierKey = (await hub.get('/v1/audit/verifier-key')).body.trim();
});

afterAll(async () => {
  await provider.stop();
  await hub?.dispose();
});

const verify = () => verifyLog({ source: { kind: 'hub', url, token: hub.auditor['authorization']!.slice(7) }, verifierKey, threads: 1 });

/** Changes one character of the stored envelope at `position` in place (the hub's tree untouched); returns both texts. */
function alter(position: number): { before: string; after: string; serial: string; restore: () => void } {
  const db = tamper(hub.config.ledgerPath);
  try {
    const row = db.prepare('SELECT serial, envelope FROM events WHERE position = ?').get(position) as { serial: string; envelope: string };
    const at = row.envelope.indexOf('"eventId":"') + 11;
    const after = `${row.envelope.slice(0, at)}${row.envelope[at] === 'f' ? 'e' : 'f'}${row.envelope.slice(at + 1)}`;
    db.prepare('UPDATE events SET envelope = ? WHERE position = ?').run(after, position);
    return {
      before: row.envelope,
      after,
      serial: row.serial,
      restore: () => {
        const again = tamper(hub.config.ledgerPath);
        again.prepare('UPDATE events SET envelope = ? WHERE position = ?').run(row.envelope, position);
        again.close();
      },
    };
  } finally {
    db.close();
  }
}

function positionOf(type: string, nth = 0): number {
  const db = tamper(hub.config.ledgerPath);
  const rows = db.prepare(`SELECT position FROM events WHERE envelope LIKE ? ORDER BY position`).pluck().all(`%"type":"${type}"}`) as number[];
  db.close();
  return rows[nth]!;
}

describe('verify --hub on a live hub', () => {
  it('verifies every leaf, checkpoint and accepted query of an untouched log', async () => {
    const report = await verify();
    expect(report).toMatchObject({ ok: true, findingCount: 0, openSerials: [] });
    expect(report.checkpoints.verified).toBeGreaterThanOrEqual(3);
  });

  it.each([
    ['a QueryAccepted', 'QueryAccepted', 1],
    ['a ProvisionRequested', 'ProvisionRequested', 2],
    ['the first event of the log', 'AuthorizationTablePublished', 0],
  ])('names exactly the event whose stored bytes changed under the hub, and its signed leaf hash: %s', async (_, type, nth) => {
    const position = positionOf(type, nth);
    const changed = alter(position);
    try {
      const report = await verify();
      expect(report.ok).toBe(false);
      expect(report.firstFailure).toMatchObject({ code: 'LEAF_MISMATCH', position, serial: changed.serial, expected: toHex(leafHash(changed.before)), calculated: toHex(leafHash(changed.after)) });
      expect(report.findings).toContainEqual(expect.objectContaining({ code: 'CHECKPOINT_ROOT_MISMATCH' }));
    } finally {
      changed.restore();
    }
    expect((await verify()).ok).toBe(true);
  });
});
