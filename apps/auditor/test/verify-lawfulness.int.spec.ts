import { createHash } from 'node:crypto';
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { formatVerifierKey, generateSigningKey } from '#audit-log';
import { SqliteEventStore, canonicalize, defaultCheckpointOrigin, type AppendResult } from '#ledger';
import {
  AUTHORIZATION_TABLE_STREAM,
  SELF_DISCLOSURE_TABLE_STREAM,
  decideAuthorizationTables,
  decideSelfDisclosureTables,
  evolveSelfDisclosureTables,
  initialAuthorizationTablesState,
  initialSelfDisclosureTablesState,
  evolveAuthorizationTables,
  type AuthorizationTablesState,
  type SelfDisclosureTablesState,
} from '#linkage';
import { verifyLog } from '../src/verify/verify-log.js';
import { appendCheckpoint, tmp, type LedgerFixture } from './support/ledger-fixture.js';

const dir = tmp('auditor-lawful-');
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const meta = { actor: 'agency:muroran-city', correlationId: 'c' };
const TABLE_V1 = JSON.parse(readFileSync(join(import.meta.dirname, '../../../schemas/authorization/authorization-table.v1.json'), 'utf8')) as { version: number; effectiveFrom: string };

/** A query the table v1 allows: a municipality asks a municipality for local tax information, for a child allowance. */
const LAWFUL = { requesterKind: 'municipality', procedureCode: 'child-allowance', providerKind: 'municipality', itemCodes: ['local-tax'] };

interface Ledger extends LedgerFixture {
  readonly store: SqliteEventStore;
  tables: AuthorizationTablesState;
  n: number;
}

async function ledger(): Promise<Ledger> {
  const path = join(dir, `ledger-${Math.random().toString(36).slice(2)}.sqlite`);
  const origin = defaultCheckpointOrigin(1);
  const key = generateSigningKey();
  let clock = Date.parse('2026-11-22T01:00:00.000Z');
  const store = new SqliteEventStore({ path, nodeId: 1, now: () => new Date((clock += 7)) });
  return { path, origin, verifierKey: formatVerifierKey({ name: origin, publicKey: key.publicKey }), privateKey: key.privateKey, checkpointPositions: [], store, tables: initialAuthorizationTablesState(), n: 0 };
}

/** Publishes a table version as the hub does: the decider's event on the authorization-table stream. */
async function publish(l: Ledger, table: unknown, publishedAt = '2026-11-22T00:00:00.000Z'): Promise<AppendResult> {
  const digest = createHash('sha256').update(canonicalize(table) ?? '', 'utf8').digest('hex');
  const [event] = decideAuthorizationTables({ type: 'PublishAuthorizationTable', data: { table, digest, publishedAt } }, l.tables);
  l.tables = evolveAuthorizationTables(l.tables, event!);
  return l.store.append({ streamId: AUTHORIZATION_TABLE_STREAM, expectedRevision: 'any', serial: { allocate: true }, events: [event!], metadata: meta });
}

/** Appends a QueryAccepted with these clear fields (anything: the store checks no linkage rule), then ends its serial. */
async function accepted(l: Ledger, fields: Record<string, unknown>, schemaVersion = 1, extra: Record<string, unknown> = {}): Promise<AppendResult> {
  const streamId = `query-q${++l.n}`;
  const data = { queryId: `q${l.n}`, requesterAgencyId: 'muroran-city', providerAgencyId: 'sapporo-city', tableVersion: 1, subjectId: '0194f7a2-0000-7000-8000-000000000001', requesterCodeDigest: 'ab'.repeat(32), acceptedAt: '2026-11-22T01:00:00.000Z', ...LAWFUL, ...fields, ...extra };
  const first = await l.store.append({ streamId, expectedRevision: 'no_stream', serial: { allocate: true }, events: [{ type: 'QueryAccepted', schemaVersion, data }], metadata: meta });
  await l.store.append({ streamId, expectedRevision: 0, serial: { continue: first.serial }, events: [{ type: 'QueryCompleted', data: { queryId: `q${l.n}`, outcome: 'answered' }, terminal: 'completed' }], metadata: meta });
  return first;
}

async function verified(l: Ledger) {
  await appendCheckpoint(l, l.store);
  await l.store.close();
  return verifyLog({ source: { kind: 'db', path: l.path }, verifierKey: l.verifierKey, threads: 2 });
}

describe('verify: every accepted query was lawful under the table version in force (I6, from the raw log)', () => {
  it('passes lawful queries of schema versions 1 and 2 (a sealed part beside the clear fields is not read)', async () => {
    const l = await ledger();
    await publish(l, TABLE_V1);
    await accepted(l, {});
    await appendCheckpoint(l, l.store);
    await accepted(l, { itemCodes: ['local-tax', 'resident-record'] }, 2, { sealed: { ciphertext: 'x'.repeat(40), requesterAgencyId: 'opaque' } });
    const report = await verified(l);
    expect(report).toMatchObject({ ok: true, findingCount: 0 });
  });

  it('names a forged QueryAccepted that the table does not allow: position, serial, what the table allows and what was asked', async () => {
    const l = await ledger();
    await publish(l, TABLE_V1);
    await accepted(l, {});
    await appendCheckpoint(l, l.store);
    const forged = await accepted(l, { itemCodes: ['local-tax', 'pension-enrollment'] });
    const report = await verified(l);
    expect(report.ok).toBe(false);
    expect(report.checkpoints.verified).toBe(report.checkpoints.seen);
    expect(report.findings).toHaveLength(1);
    expect(report.firstFailure).toMatchObject({ code: 'QUERY_NOT_LAWFUL', position: forged.firstPosition, serial: forged.serial, field: 'itemCodes', expected: 'local-tax, resident-record', calculated: 'local-tax, pension-enrollment' });
    expect(report.firstFailure!.message).toContain('ITEM_NOT_ALLOWED');
  });

  it('names a query whose requester or provider kind the table does not allow, in schema version 2 too', async () => {
    const l = await ledger();
    await publish(l, TABLE_V1);
    const provider = await accepted(l, { providerKind: 'jasso' }, 2, { sealed: { ciphertext: 'y' } });
    const requester = await accepted(l, { requesterKind: 'hello-work' });
    const report = await verified(l);
    expect(report.findings).toEqual([
      expect.objectContaining({ code: 'QUERY_NOT_LAWFUL', position: provider.firstPosition, serial: provider.serial, field: 'providerKind', calculated: 'jasso' }),
      expect.objectContaining({ code: 'QUERY_NOT_LAWFUL', position: requester.firstPosition, serial: requester.serial, field: 'requesterKind', calculated: 'hello-work', expected: 'municipality' }),
    ]);
  });

  it('names a query that claims a table version other than the one in force at its time', async () => {
    const l = await ledger();
    await publish(l, TABLE_V1);
    // Version 2 is published, but takes effect only later than the query below.
    await publish(l, { ...TABLE_V1, version: 2, effectiveFrom: '2027-04-01T00:00:00+09:00' });
    const early = await accepted(l, { tableVersion: 2, acceptedAt: '2026-12-01T00:00:00.000Z' });
    const late = await accepted(l, { tableVersion: 1, acceptedAt: '2027-05-01T00:00:00.000Z' });
    const right = await accepted(l, { tableVersion: 2, acceptedAt: '2027-05-01T00:00:00.000Z' });
    const report = await verified(l);
    expect(report.findings).toEqual([
      expect.objectContaining({ code: 'QUERY_TABLE_VERSION_NOT_IN_FORCE', position: early.firstPosition, serial: early.serial, expected: 1, calculated: 2 }),
      expect.objectContaining({ code: 'QUERY_TABLE_VERSION_NOT_IN_FORCE', position: late.firstPosition, serial: late.serial, expected: 2, calculated: 1 }),
    ]);
    expect(report.findings.map((f) => f.serial)).not.toContain(right.serial);
  });

  it('counts only the versions published earlier in the log, and refuses an unknown schema version', async () => {
    const l = await ledger();
    const before = await accepted(l, {});
    await publish(l, TABLE_V1);
    const future = await accepted(l, {}, 4);
    const report = await verified(l);
    expect(report.findings).toEqual([
      expect.objectContaining({ code: 'QUERY_TABLE_VERSION_NOT_IN_FORCE', position: before.firstPosition, serial: before.serial, expected: 'no version in force', calculated: 1 }),
      expect.objectContaining({ code: 'QUERY_MALFORMED', position: future.firstPosition, serial: future.serial }),
    ]);
  });
});

const SELF_DISCLOSURE_V1 = JSON.parse(readFileSync(join(import.meta.dirname, '../../../schemas/authorization/self-disclosure-table.v1.json'), 'utf8')) as { version: number; effectiveFrom: string };
/** A citizen's self-information request the self-disclosure table v1 allows: Muroran discloses local tax information. */
const SELF = { requesterKind: 'citizen', procedureCode: 'self-information', providerKind: 'municipality', itemCodes: ['local-tax'] };

/** Publishes a self-disclosure table version as the hub does. */
async function publishSelfDisclosure(l: Ledger & { selfTables?: SelfDisclosureTablesState }, table: unknown, publishedAt = '2026-11-22T00:00:00.000Z'): Promise<AppendResult> {
  const digest = createHash('sha256').update(canonicalize(table) ?? '', 'utf8').digest('hex');
  const [event] = decideSelfDisclosureTables({ type: 'PublishSelfDisclosureTable', data: { table, digest, publishedAt } }, l.selfTables ?? initialSelfDisclosureTablesState());
  l.selfTables = evolveSelfDisclosureTables(l.selfTables ?? initialSelfDisclosureTablesState(), event!);
  return l.store.append({ streamId: SELF_DISCLOSURE_TABLE_STREAM, expectedRevision: 'any', serial: { allocate: true }, events: [event!], metadata: { actor: 'system:self-disclosure-table', correlationId: 'c' } });
}

/** A self-information request's QueryAccepted (schema version 3: no requesting agency, a sealed part beside the clear fields), its serial ended. */
async function selfAccepted(l: Ledger, fields: Record<string, unknown>): Promise<AppendResult> {
  const streamId = `query-s${++l.n}`;
  const data = { queryId: `s${l.n}`, providerAgencyId: 'muroran-city', tableVersion: 1, acceptedAt: '2026-11-22T01:00:00.000Z', sealed: { v: 1, commitments: { subjectId: 'x' }, keyRef: 'k', nonce: 'n', box: 'b' }, ...SELF, ...fields };
  const first = await l.store.append({ streamId, expectedRevision: 'no_stream', serial: { allocate: true }, events: [{ type: 'QueryAccepted', schemaVersion: 3, data }], metadata: { actor: 'citizen', correlationId: 'c' } });
  await l.store.append({ streamId, expectedRevision: 0, serial: { continue: first.serial }, events: [{ type: 'QueryCompleted', data: { queryId: `s${l.n}`, outcome: 'answered' }, terminal: 'completed' }], metadata: meta });
  return first;
}

describe('verify: every self-information request (自己情報表示) was lawful under the self-disclosure table in force', () => {
  it('passes lawful self-information requests beside agencies\' queries (schema versions 1, 2 and 3 in one log)', async () => {
    const l = await ledger();
    await publish(l, TABLE_V1);
    await publishSelfDisclosure(l, SELF_DISCLOSURE_V1);
    await accepted(l, {});
    await selfAccepted(l, {});
    await selfAccepted(l, { providerKind: 'pension-service', providerAgencyId: 'jpn-pension-service', itemCodes: ['pension-benefit'] });
    await accepted(l, {}, 2, { sealed: { ciphertext: 'z' } });
    const report = await verified(l);
    expect(report).toMatchObject({ ok: true, findingCount: 0 });
  });

  it('flags a hand-forged request the table does not allow, one under a version not in force, and one judged against nothing', async () => {
    const l = await ledger();
    const early = await selfAccepted(l, {});
    await publish(l, TABLE_V1);
    await publishSelfDisclosure(l, SELF_DISCLOSURE_V1);
    const lawful = await selfAccepted(l, {});
    const item = await selfAccepted(l, { itemCodes: ['pension-benefit'] });
    const kind = await selfAccepted(l, { providerKind: 'jasso', providerAgencyId: 'jasso' });
    const version = await selfAccepted(l, { tableVersion: 2 });
    // An agency's query cannot pass itself off as one: a citizen requester under the authorization table is not lawful.
    const disguised = await accepted(l, { requesterKind: 'citizen', procedureCode: 'self-information' }, 2, { sealed: { ciphertext: 'w' } });
    const malformed = await selfAccepted(l, { requesterKind: 'municipality' });
    const report = await verified(l);
    expect(report.ok).toBe(false);
    expect(report.findings).toEqual([
      expect.objectContaining({ code: 'QUERY_TABLE_VERSION_NOT_IN_FORCE', position: early.firstPosition, serial: early.serial, expected: 'no version in force', calculated: 1 }),
      expect.objectContaining({ code: 'QUERY_NOT_LAWFUL', position: item.firstPosition, serial: item.serial, field: 'itemCodes', expected: 'local-tax, resident-record, livelihood-protection, child-rearing-allowance', calculated: 'pension-benefit' }),
      expect.objectContaining({ code: 'QUERY_NOT_LAWFUL', position: kind.firstPosition, serial: kind.serial, field: 'itemCodes', expected: '', calculated: 'local-tax' }),
      expect.objectContaining({ code: 'QUERY_TABLE_VERSION_NOT_IN_FORCE', position: version.firstPosition, serial: version.serial, expected: 1, calculated: 2 }),
      expect.objectContaining({ code: 'QUERY_NOT_LAWFUL', position: disguised.firstPosition, serial: disguised.serial }),
      expect.objectContaining({ code: 'QUERY_MALFORMED', position: malformed.firstPosition, serial: malformed.serial }),
    ]);
    expect(report.findings[1]!.message).toContain('SELF_DISCLOSURE_NOT_ALLOWED');
    expect(report.findings.map((f) => f.serial)).not.toContain(lawful.serial);
  });

  it('names a self-disclosure table that cannot be used', async () => {
    const l = await ledger();
    const event = { type: 'SelfDisclosureTablePublished', schemaVersion: 1, data: { version: 1, effectiveFrom: SELF_DISCLOSURE_V1.effectiveFrom, digest: 'ab'.repeat(32), publishedAt: '2026-11-22T00:00:00.000Z', table: { ...SELF_DISCLOSURE_V1, rows: [] } }, terminal: 'completed' as const };
    const bad = await l.store.append({ streamId: SELF_DISCLOSURE_TABLE_STREAM, expectedRevision: 'any', serial: { allocate: true }, events: [event], metadata: meta });
    const report = await verified(l);
    expect(report.findings).toEqual([expect.objectContaining({ code: 'SELF_DISCLOSURE_TABLE_INVALID', position: bad.firstPosition, serial: bad.serial })]);
  });
});
