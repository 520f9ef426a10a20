import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PROJECTIONS_FILE } from '#projections';
import { FakeProvider, MURORAN_CITY, PENSION, acquire, bearer, issuePerson, registerAgency, startLinkageHub, type Agency } from '../../hub/test/support/linkage-fixture.js';
import type { TestHub } from '../../hub/test/support/test-hub.js';

/**
 * replay against a hub that keeps writing: the ledger (events, tree tiles, checkpoints) and the
 * projection files change while the auditor reads them, in another process.
 */
let hub: TestHub;
const provider = new FakeProvider();
let pension: Agency;
let muroran: Agency;
const codes: { pension: string; muroran: string }[] = [];

beforeAll(async () => {
  hub = await startLinkageHub({ env: { HUB_CHECKPOINT_EVERY_EVENTS: '16' } });
  await provider.start(hub);
  pension = await registerAgency(hub, PENSION, 'pension-service', 'http://127.0.0.1:9');
  muroran = await registerAgency(hub, MURORAN_CITY, 'municipality', provider.endpoint);
  for (let i = 0; i < 3; i++) await person();
});

afterAll(async () => {
  await provider.stop();
  await hub?.dispose();
});

async function person(): Promise<void> {
  const p = await issuePerson(hub);
  const c = { pension: await acquire(hub, pension, p.individualNumber), muroran: await acquire(hub, muroran, p.individualNumber) };
  provider.behaviours.set(c.muroran, { answer: { 'local-tax': { fiscalYear: 2026 } } });
  codes.push(c);
}

/** Appends in a loop until stopped: queries (provision records), notices, designations (the registry), numbering. */
function load(): { stop: () => Promise<number> } {
  let stopped = false;
  let rounds = 0;
  const running = (async () => {
    while (!stopped) {
      const c = codes[rounds % codes.length]!;
      const query = await hub.post('/v1/queries', { code: c.pension, providerAgencyId: MURORAN_CITY, procedureCode: 'pension-award-claim', itemCodes: ['local-tax'] }, bearer(pension.token));
      expect(query.statusCode, query.body).toBe(200);
      await hub.post('/v1/notices', { code: c.muroran, title: '住民税のお知らせ', body: `第${rounds}回` }, bearer(muroran.token));
      await hub.post('/v1/corporate-numbers', { name: `株式会社再生${rounds}`, location: '北海道室蘭市幸町1番2号', kind: 'stock-company' }, hub.operator);
      if (rounds % 5 === 0) await person();
      rounds += 1;
    }
  })();
  return {
    stop: async () => {
      stopped = true;
      await running;
      return rounds;
    },
  };
}

const run = promisify(execFile);
const replay = () =>
  run(process.execPath, ['--conditions=source', '--import', 'tsx', join(import.meta.dirname, '../src/main.ts'), 'replay', '--db', hub.config.ledgerPath, '--key-file', join(hub.config.keysDir, 'sealing.key.json'), '--json']).then(
    ({ stdout }) => ({ code: 0, stdout }),
    (e: { code: number; stdout: string; stderr: string }) => ({ code: e.code, stdout: e.stdout || e.stderr }),
  );

describe('auditor replay against a running hub', () => {
  it('compares each file at one consistent snapshot: no difference, run after run, while the hub writes', async () => {
    const writer = load();
    try {
      for (let i = 0; i < 5; i++) {
        const before = await hub.head();
        const result = await replay();
        const after = await hub.head();
        expect(result.code, result.stdout).toBe(0);
        const report = JSON.parse(result.stdout) as { ok: boolean; projections: { projection: string; ok: boolean; skipped?: string }[] };
        expect(report.projections.map((p) => [p.projection, p.ok, p.skipped ?? null])).toEqual([
          ['merkle-tree', true, null],
          ['provision-records', true, null],
          ['corporate-registry', true, null],
          ['notice-inbox', true, null],
        ]);
        // The hub wrote while this replay read: otherwise the run proves nothing about a live log.
        expect(after).toBeGreaterThan(before);
      }
    } finally {
      expect(await writer.stop()).toBeGreaterThan(5);
    }
  });

  it('still reports a record altered in the live file, while the hub writes', async () => {
    const writer = load();
    try {
      const db = new Database(join(hub.config.dataDir, PROJECTIONS_FILE));
      db.pragma('busy_timeout = 5000');
      const serial = db.prepare('SELECT serial FROM provision_records ORDER BY serial LIMIT 1').pluck().get() as string;
      db.prepare(`UPDATE provision_records SET provider_name = '別の市' WHERE serial = ?`).run(serial);
      db.close();
      const result = await replay();
      expect(result.code, result.stdout).toBe(1);
      const report = JSON.parse(result.stdout) as { ok: boolean; projections: { projection: string; ok: boolean; differingRecords?: number; firstDifference?: { serial: string; fields: string[] } }[] };
      expect(report.projections.map((p) => [p.projection, p.ok])).toEqual([
        ['merkle-tree', true],
        ['provision-records', false],
        ['corporate-registry', true],
        ['notice-inbox', true],
      ]);
      expect(report.projections[1]).toMatchObject({ differingRecords: 1, firstDifference: { serial, fields: ['provider'] } });
    } finally {
      await writer.stop();
    }
  });
});
