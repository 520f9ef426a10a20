import Database from 'better-sqlite3';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { SqliteEventStore } from '#ledger';
import { catchUp, follow, InMemoryProvisionStore, rebuild, SqliteProvisionStore } from '#projections';
import { provisionStoreContract, richEvents } from './provision-store.contract.js';
import { AOYAMA, MURORAN, NOW, PENSION, richLog, Scenario, standardSetup, subject, subjectRef } from './scenario.js';

const dir = mkdtempSync(join(tmpdir(), 'projections-int-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;
const file = (name: string) => join(dir, `${name}-${++n}.sqlite`);

provisionStoreContract('SqliteProvisionStore', async () => new SqliteProvisionStore({ path: file('contract'), subjectRef }));

describe('SqliteProvisionStore over a real ledger', () => {
  it('holds what the in-memory store holds: same digest, same views', async () => {
    const events = await richEvents();
    const sqlite = new SqliteProvisionStore({ path: file('same'), subjectRef });
    const memory = new InMemoryProvisionStore({ subjectRef });
    await Promise.all([sqlite.apply(events), memory.apply(events)]);
    expect(await sqlite.digest()).toBe(await memory.digest());
    expect(await sqlite.agencyRecords(MURORAN, { limit: 5 })).toEqual(await memory.agencyRecords(MURORAN, { limit: 5 }));
    expect(await sqlite.agencyMonthlyCounts(PENSION)).toEqual(await memory.agencyMonthlyCounts(PENSION));
    await sqlite.close();
  });

  it('follows a live SqliteEventStore, and a rebuild from the log equals the live projection (same digest)', async () => {
    let clock = Date.parse(NOW);
    const ledger = new SqliteEventStore({ path: file('ledger'), nodeId: 1, now: () => new Date((clock += 3)), synchronous: 'NORMAL' });
    const live = new SqliteProvisionStore({ path: file('live'), subjectRef });
    const controller = new AbortController();
    const errors: unknown[] = [];
    const running = follow(ledger, live, { signal: controller.signal, maxBatch: 7, onError: (e) => errors.push(e) });
    await richLog(ledger);
    const head = await ledger.head();
    while ((await live.checkpoint()) < head - 1) await new Promise((r) => setTimeout(r, 10));
    controller.abort();
    await running;
    expect(errors).toEqual([]);

    const fresh = new SqliteProvisionStore({ path: file('rebuilt'), subjectRef });
    expect(await rebuild(ledger, fresh, { pageSize: 5 })).toBe(head - 1);
    expect(await fresh.digest()).toBe(await live.digest());
    expect(await fresh.records()).toEqual(await live.records());
    expect((await live.records()).length).toBe(14);
    // The rebuilt file has the view indexes, and its views answer as the live one's.
    const raw = new Database(fresh['db'].name, { readonly: true });
    const indexes = raw.prepare(`SELECT name FROM sqlite_master WHERE type = 'index' AND name LIKE 'provision_by_%' ORDER BY name`).pluck().all();
    raw.close();
    expect(indexes).toEqual(['provision_by_provider', 'provision_by_push', 'provision_by_requester', 'provision_by_subject']);
    expect(await fresh.agencyMonthlyCounts(MURORAN)).toEqual(await live.agencyMonthlyCounts(MURORAN));
    expect(await fresh.citizenRecords(AOYAMA, { now: NOW })).toEqual(await live.citizenRecords(AOYAMA, { now: NOW }));
    await Promise.all([ledger.close(), live.close(), fresh.close()]);
  });

  it('resumes from its stored checkpoint after a restart, with the agency and table names it had', async () => {
    let clock = Date.parse(NOW);
    const ledgerPath = file('ledger');
    const path = file('resume');
    const ledger = new SqliteEventStore({ path: ledgerPath, nodeId: 1, now: () => new Date((clock += 3)), synchronous: 'NORMAL' });
    const s = new Scenario(ledger);
    await standardSetup(s, '2019-07-01T00:00:00.000Z');
    const first = new SqliteProvisionStore({ path, subjectRef });
    await catchUp(ledger, first);
    const checkpoint = await first.checkpoint();
    await first.close();
    await s.query({ queryId: 'after-restart', requester: PENSION, provider: MURORAN, procedure: 'pre-twenty-disability-pension-income-check', items: ['local-tax'], subjectId: AOYAMA, at: '2026-04-01T00:00:00.000Z' });
    await s.answer('after-restart', '2026-04-01T00:00:01.000Z');
    const reopened = new SqliteProvisionStore({ path, subjectRef });
    expect(await reopened.checkpoint()).toBe(checkpoint);
    await catchUp(ledger, reopened);
    const [row] = await reopened.records();
    expect(row).toMatchObject({ status: 'answered', requester: { name: '日本年金機構' }, provider: { name: '室蘭市' }, items: [{ code: 'local-tax', name: '地方税関係情報' }] });
    await Promise.all([ledger.close(), reopened.close()]);
  });

  it('answers each view from one index range (query plans name the index)', async () => {
    const path = file('plans');
    const store = new SqliteProvisionStore({ path, subjectRef });
    await store.close();
    const db = new Database(path, { readonly: true });
    const plan = (sql: string, ...args: unknown[]) => (db.prepare(`EXPLAIN QUERY PLAN ${sql}`).all(...args) as { detail: string }[]).map((r) => r.detail).join(' | ');
    expect(plan('SELECT * FROM provision_records WHERE subject_id = ? AND requested_ms >= ? AND requested_ms <= ? ORDER BY requested_ms DESC, serial DESC', subject(1), 0, 1)).toMatch(/USING INDEX provision_by_subject/);
    // A citizen's page (cursor and agency filter): one range of the person's index entries, in index order (no sort step).
    const citizenPage = plan(
      'SELECT * FROM provision_records WHERE subject_id = ? AND requested_ms >= ? AND requested_ms < ? AND (requested_ms < ? OR (requested_ms = ? AND serial < ?)) AND (requester_id = ? OR provider_id = ?) ORDER BY requested_ms DESC, serial DESC LIMIT ?',
      subject(1), 0, 1, 1, 1, '0', PENSION, PENSION, 10,
    );
    expect(citizenPage).toMatch(/SEARCH provision_records USING INDEX provision_by_subject \(subject_id=\? AND requested_ms>\? AND requested_ms<\?\)/);
    expect(citizenPage).not.toMatch(/TEMP B-TREE|SCAN/);
    expect(plan('SELECT * FROM provision_records WHERE provider_id = ? AND requested_ms < ? ORDER BY requested_ms DESC, serial DESC LIMIT 10', MURORAN, 1)).toMatch(/USING INDEX provision_by_provider/);
    expect(plan('SELECT * FROM provision_records WHERE requester_id = ? AND requested_ms >= ? AND requested_ms < ?', PENSION, 0, 1)).toMatch(/USING INDEX provision_by_requester/);
    db.close();
  });

  it('pages a citizen with the very statements it runs: one range of the subject index, in index order, no sort, no scan', async () => {
    const path = file('citizen-plans');
    const store = new SqliteProvisionStore({ path, subjectRef });
    const statements = (store as unknown as { stmt: { citizen: { source: string }[][]; citizenMonths: { source: string } } }).stmt;
    const db = new Database(path, { readonly: true });
    const plan = (sql: string, args: unknown[]) => (db.prepare(`EXPLAIN QUERY PLAN ${sql}`).all(...args) as { detail: string }[]).map((r) => r.detail).join(' | ');
    const variants: [string, unknown[]][] = [
      [statements.citizen[0]![0]!.source, [subject(1), 0, 1, 10]],
      [statements.citizen[1]![0]!.source, [subject(1), 0, 1, 1, 1, '0', 10]],
      [statements.citizen[0]![1]!.source, [subject(1), 0, 1, PENSION, PENSION, 10]],
      [statements.citizen[1]![1]!.source, [subject(1), 0, 1, 1, 1, '0', PENSION, PENSION, 10]],
      [statements.citizenMonths.source, [subject(1), 0, 1]],
    ];
    for (const [sql, args] of variants) {
      const p = plan(sql, args);
      expect(p, sql).toMatch(/^SEARCH provision_records USING INDEX provision_by_subject \(subject_id=\? AND requested_ms>\? AND requested_ms<\?\)$/);
    }
    db.close();
    await store.close();
  });

  it('keeps no subject id in its file: rows are filed by the reference', async () => {
    const path = file('no-subject');
    const store = new SqliteProvisionStore({ path, subjectRef });
    await store.apply(await richEvents());
    expect((await store.citizenRecords(AOYAMA, { now: NOW })).records.length).toBeGreaterThan(0);
    await store.close();
    const db = new Database(path, { readonly: true });
    const subjects = db.prepare('SELECT DISTINCT subject_id FROM provision_records WHERE subject_id IS NOT NULL').pluck().all() as string[];
    db.close();
    expect(subjects.length).toBeGreaterThan(0);
    expect(subjects).toContain(subjectRef(AOYAMA));
    expect(subjects).not.toContain(AOYAMA);
  });

  it('opens an existing file read-only, refuses a file of another layout read-only, and rebuilds it when writable', async () => {
    const path = file('layout');
    const store = new SqliteProvisionStore({ path, subjectRef });
    await store.close();
    const ro = new SqliteProvisionStore({ path, readonly: true, subjectRef });
    expect(await ro.checkpoint()).toBe(-1);
    await ro.close();
    await expect(ro.checkpoint()).rejects.toThrow(expect.objectContaining({ code: 'PROJECTION_CLOSED' }));
    const db = new Database(path);
    db.prepare(`UPDATE projection_meta SET value = '0' WHERE key = 'layout'`).run();
    db.close();
    expect(() => new SqliteProvisionStore({ path, readonly: true, subjectRef })).toThrow(expect.objectContaining({ code: 'LAYOUT_MISMATCH' }));
    const writable = new SqliteProvisionStore({ path, subjectRef });
    expect(await writable.checkpoint()).toBe(-1);
    await writable.close();
  });
});
