import { createHash } from 'node:crypto';
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { formatVerifierKey, generateSigningKey } from '#audit-log';
import { SqliteEventStore, canonicalize, defaultCheckpointOrigin, type AppendResult, type NewEvent } from '#ledger';
import { AUTHORIZATION_TABLE_STREAM, decideAuthorizationTables, evolveAuthorizationTables, initialAuthorizationTablesState, type AuthorizationTablesState } from '#linkage';
import { verifyLog } from '../src/verify/verify-log.js';
import { appendCheckpoint, tmp, type LedgerFixture } from './support/ledger-fixture.js';

/**
 * verify and a withdrawn authorization table version (docs/authorization-table-rollout.md): a version
 * withdrawn before its effectiveFrom is never in force, so queries decided after that instant under the
 * previous version are lawful; a withdrawal the hub could not have decided is a finding.
 */

const dir = tmp('auditor-withdrawal-');
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const meta = { actor: 'operator:hub', correlationId: 'c' };
const TABLE_V1 = JSON.parse(readFileSync(join(import.meta.dirname, '../../../schemas/authorization/authorization-table.v1.json'), 'utf8')) as { version: number; effectiveFrom: string };
const LAWFUL = { requesterKind: 'municipality', procedureCode: 'child-allowance', providerKind: 'municipality', itemCodes: ['local-tax'] };
const V2_FROM = '2027-04-01T00:00:00.000Z';

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

async function append(l: Ledger, event: NewEvent): Promise<AppendResult> {
  return l.store.append({ streamId: AUTHORIZATION_TABLE_STREAM, expectedRevision: 'any', serial: { allocate: true }, events: [event], metadata: meta });
}

async function publish(l: Ledger, table: unknown): Promise<AppendResult> {
  const digest = createHash('sha256').update(canonicalize(table) ?? '', 'utf8').digest('hex');
  const [event] = decideAuthorizationTables({ type: 'PublishAuthorizationTable', data: { table, digest, publishedAt: '2026-11-22T00:00:00.000Z' } }, l.tables);
  l.tables = evolveAuthorizationTables(l.tables, event!);
  return append(l, event!);
}

async function withdraw(l: Ledger, version: number, withdrawnAt: string): Promise<AppendResult> {
  const [event] = decideAuthorizationTables({ type: 'WithdrawAuthorizationTable', data: { version, reason: 'postponed', withdrawnAt } }, l.tables);
  l.tables = evolveAuthorizationTables(l.tables, event!);
  return append(l, event!);
}

async function accepted(l: Ledger, fields: Record<string, unknown>): Promise<AppendResult> {
  const streamId = `query-q${++l.n}`;
  const data = { queryId: `q${l.n}`, requesterAgencyId: 'muroran-city', providerAgencyId: 'sapporo-city', tableVersion: 1, subjectId: '0194f7a2-0000-7000-8000-000000000001', requesterCodeDigest: 'ab'.repeat(32), acceptedAt: '2026-11-22T01:00:00.000Z', ...LAWFUL, ...fields };
  const first = await l.store.append({ streamId, expectedRevision: 'no_stream', serial: { allocate: true }, events: [{ type: 'QueryAccepted', schemaVersion: 1, data }], metadata: meta });
  await l.store.append({ streamId, expectedRevision: 0, serial: { continue: first.serial }, events: [{ type: 'QueryCompleted', data: { queryId: `q${l.n}`, outcome: 'answered' }, terminal: 'completed' }], metadata: meta });
  return first;
}

async function verified(l: Ledger) {
  await appendCheckpoint(l, l.store);
  await l.store.close();
  return verifyLog({ source: { kind: 'db', path: l.path }, verifierKey: l.verifierKey, threads: 2 });
}

describe('verify: a withdrawn authorization table version is never in force', () => {
  it('passes queries decided under version 1 after the effectiveFrom of a version 2 withdrawn before it; without the withdrawal they are flagged', async () => {
    const withWithdrawal = await ledger();
    await publish(withWithdrawal, TABLE_V1);
    await publish(withWithdrawal, { ...TABLE_V1, version: 2, effectiveFrom: V2_FROM });
    await withdraw(withWithdrawal, 2, '2027-01-01T00:00:00.000Z');
    await accepted(withWithdrawal, { tableVersion: 1, acceptedAt: '2027-05-01T00:00:00.000Z' });
    expect(await verified(withWithdrawal)).toMatchObject({ ok: true, findingCount: 0 });

    const without = await ledger();
    await publish(without, TABLE_V1);
    await publish(without, { ...TABLE_V1, version: 2, effectiveFrom: V2_FROM });
    const query = await accepted(without, { tableVersion: 1, acceptedAt: '2027-05-01T00:00:00.000Z' });
    expect((await verified(without)).findings).toEqual([expect.objectContaining({ code: 'QUERY_TABLE_VERSION_NOT_IN_FORCE', serial: query.serial, expected: 2, calculated: 1 })]);
  });

  it('names a withdrawal the hub could not have decided: of a version in force at the withdrawal, or of one never published', async () => {
    const l = await ledger();
    await publish(l, TABLE_V1);
    await publish(l, { ...TABLE_V1, version: 2, effectiveFrom: V2_FROM });
    // Forged: withdrawn after it took effect (the decider would refuse it), and a version nobody published.
    const late = await append(l, { type: 'AuthorizationTableWithdrawn', data: { version: 2, digest: 'ab'.repeat(32), effectiveFrom: V2_FROM, reason: 'x', withdrawnAt: '2027-05-01T00:00:00.000Z' }, terminal: 'completed' });
    const unknown = await append(l, { type: 'AuthorizationTableWithdrawn', data: { version: 7, digest: 'ab'.repeat(32), effectiveFrom: V2_FROM, reason: 'x', withdrawnAt: '2026-12-01T00:00:00.000Z' }, terminal: 'completed' });
    const query = await accepted(l, { tableVersion: 2, acceptedAt: '2027-05-02T00:00:00.000Z' });
    const report = await verified(l);
    expect(report.findings).toEqual([
      expect.objectContaining({ code: 'AUTHORIZATION_TABLE_WITHDRAWAL_INVALID', position: late.firstPosition, serial: late.serial }),
      expect.objectContaining({ code: 'AUTHORIZATION_TABLE_WITHDRAWAL_INVALID', position: unknown.firstPosition, serial: unknown.serial }),
    ]);
    // The refused withdrawal is not honoured: version 2 stays in force for the query.
    expect(report.findings.map((f) => f.serial)).not.toContain(query.serial);
  });
});
