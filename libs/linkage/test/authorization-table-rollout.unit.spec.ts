import { describe, expect, test } from 'vitest';
import {
  authorizationTablesDecider,
  diffAuthorizationTables,
  parseAuthorizationTable,
  tableInForce,
  tableVersionStates,
  unknownTableCodes,
  type AuthorizationTableEvent,
  type AuthorizationTablePublished,
  type AuthorizationTableWithdrawn,
  type Sha256Hex,
  type WithdrawAuthorizationTable,
} from '#linkage';
import { rawTable, sha256, table } from './fixtures.js';
import { deciderSpec } from './given-when-then.js';
import { schemaValidator } from '../../../test/support/json-schema.js';

const spec = deciderSpec(authorizationTablesDecider);
const v1 = table();
const D1 = sha256('v1');
const D2 = sha256('v2');
const D3 = sha256('v3');
const V2_FROM = '2027-04-01T00:00:00.000Z';

const published = (version: number, effectiveFrom: string, digest: Sha256Hex, publishedAt: string): AuthorizationTablePublished => ({
  type: 'AuthorizationTablePublished',
  schemaVersion: 1,
  data: { version, effectiveFrom, digest, publishedAt, table: { ...v1, version, effectiveFrom } },
  terminal: 'completed',
});
const published1 = published(1, v1.effectiveFrom, D1, '2026-01-10T00:00:00.000Z');
const published2 = published(2, V2_FROM, D2, '2026-03-01T00:00:00.000Z');
const withdraw = (version: number, withdrawnAt: string, reason = 'the ministerial ordinance was postponed'): WithdrawAuthorizationTable => ({ type: 'WithdrawAuthorizationTable', data: { version, reason, withdrawnAt } });
const withdrawn2: AuthorizationTableWithdrawn = {
  type: 'AuthorizationTableWithdrawn',
  schemaVersion: 1,
  data: { version: 2, digest: D2, effectiveFrom: V2_FROM, reason: 'the ministerial ordinance was postponed', withdrawnAt: '2026-06-01T00:00:00.000Z' },
  terminal: 'completed',
};
const fold = (events: readonly AuthorizationTableEvent[]) => events.reduce(authorizationTablesDecider.evolve, authorizationTablesDecider.initialState());

describe('withdrawing an authorization table version', () => {
  test('given a scheduled version 2, when it is withdrawn before its effectiveFrom, then AuthorizationTableWithdrawn names it, and it is never in force', () => {
    spec.given([published1, published2]).when(withdraw(2, '2026-06-01T00:00:00.000Z')).then([withdrawn2]);
    const state = fold([published1, published2, withdrawn2]);
    expect(tableInForce(state, '2030-01-01T00:00:00Z')?.version).toBe(1);
    expect(tableInForce(fold([published1, published2]), '2030-01-01T00:00:00Z')?.version).toBe(2);
  });

  test('is refused once the version took effect (in force or superseded), at the very instant it does', () => {
    spec.given([published1, published2]).when(withdraw(2, V2_FROM)).thenFails('TABLE_VERSION_IN_FORCE', /took effect at 2027-04-01T00:00:00.000Z/);
    spec.given([published1, published2]).when(withdraw(1, '2026-06-01T00:00:00.000Z')).thenFails('TABLE_VERSION_IN_FORCE');
  });

  test('is refused for a version never published or withdrawn already, and for a malformed command', () => {
    spec.given([published1]).when(withdraw(7, '2026-06-01T00:00:00.000Z')).thenFails('TABLE_VERSION_NOT_FOUND', /version 7 was never published/);
    spec.given([]).when(withdraw(1, '2026-06-01T00:00:00.000Z')).thenFails('TABLE_VERSION_NOT_FOUND');
    spec.given([published1, published2, withdrawn2]).when(withdraw(2, '2026-06-02T00:00:00.000Z')).thenFails('TABLE_VERSION_WITHDRAWN', /already withdrawn/);
    spec.given([published1, published2]).when(withdraw(2, '2026-06-01T00:00:00.000Z', ' ')).thenFails('MALFORMED');
    spec.given([published1, published2]).when(withdraw(2, 'soon')).thenFails('MALFORMED');
  });

  test('a withdrawn version keeps its number: the next is numbered above it, and may take effect before it', () => {
    const v3 = (effectiveFrom: string) => ({ type: 'PublishAuthorizationTable' as const, data: { table: { ...rawTable(), version: 3, effectiveFrom }, digest: D3, publishedAt: '2026-06-02T00:00:00.000Z' } });
    const [event] = spec.given([published1, published2, withdrawn2]).when(v3('2026-10-01T00:00:00.000Z')).thenEvents();
    expect(event).toMatchObject({ type: 'AuthorizationTablePublished', data: { version: 3 } });
    // Without the withdrawal, version 3 may not take effect before version 2.
    spec.given([published1, published2]).when(v3('2026-10-01T00:00:00.000Z')).thenFails('TABLE_NOT_EFFECTIVE', /withdraw version 2 first/);
    spec.given([published1, published2, withdrawn2]).when({ type: 'PublishAuthorizationTable', data: { table: { ...rawTable(), version: 2, effectiveFrom: '2026-10-01T00:00:00.000Z' }, digest: D3, publishedAt: '2026-06-02T00:00:00.000Z' } }).thenFails('TABLE_VERSION_NOT_NEWER');
  });

  test('the event conforms to schemas/events/authorization-table-withdrawn.v1.json', () => {
    const validate = schemaValidator('schemas/events/authorization-table-withdrawn.v1.json');
    expect(validate(withdrawn2.data).errors).toBe('No errors');
    expect(validate({ ...withdrawn2.data, subjectId: 'x' }).valid).toBe(false);
  });
});

describe('tableVersionStates', () => {
  test('scheduled, in force, superseded and withdrawn, at an instant', () => {
    const published3 = published(3, '2028-04-01T00:00:00.000Z', D3, '2026-07-01T00:00:00.000Z');
    const state = fold([published1, published2, published3]);
    const at = (instant: string) => tableVersionStates(state, instant).map((v) => [v.table.version, v.state]);
    expect(at('2026-07-01T00:00:00Z')).toEqual([[1, 'in-force'], [2, 'scheduled'], [3, 'scheduled']]);
    expect(at(V2_FROM)).toEqual([[1, 'superseded'], [2, 'in-force'], [3, 'scheduled']]);
    const withdrawn3: AuthorizationTableWithdrawn = { ...withdrawn2, data: { ...withdrawn2.data, version: 3, digest: D3, effectiveFrom: '2028-04-01T00:00:00.000Z' } };
    expect(tableVersionStates(fold([published1, published2, published3, withdrawn3]), '2029-01-01T00:00:00Z').map((v) => v.state)).toEqual(['superseded', 'in-force', 'withdrawn']);
    expect(tableVersionStates(authorizationTablesDecider.initialState(), '2029-01-01T00:00:00Z')).toEqual([]);
  });
});

describe('diffAuthorizationTables', () => {
  test('against nothing: every row and item added', () => {
    const diff = diffAuthorizationTables(undefined, v1);
    expect(diff.againstVersion).toBeUndefined();
    expect(diff.rowsAdded).toHaveLength(v1.rows.length);
    expect(diff.itemsAdded).toHaveLength(v1.items.length);
    expect([diff.rowsRemoved, diff.rowsChanged, diff.itemsRemoved, diff.itemsChanged]).toEqual([[], [], [], []]);
  });

  test('rows added, removed and changed (items, push, procedure), items added and renamed', () => {
    const raw = rawTable() as { rows: Record<string, unknown>[]; items: Record<string, unknown>[] };
    const [first, second, ...rest] = raw.rows as [Record<string, unknown>, Record<string, unknown>, ...Record<string, unknown>[]];
    const firstItems = first['items'] as Record<string, unknown>[];
    const newItem = { code: 'rollout-new-item', name: '新しい情報', nameEn: 'A new item' };
    const changedFirst = { ...first, items: [...firstItems, newItem], push: [firstItems[0]!['code']] };
    const added = { ...second, requesterKind: 'jasso', procedure: { code: 'scholarship-loan', name: '奨学金の貸与に関する事務', nameEn: 'Scholarship loans' } };
    const renamed = { ...raw.items[0]!, description: 'A changed description' };
    const v2 = parseAuthorizationTable({ ...raw, version: 2, items: [renamed, ...raw.items.slice(1), newItem], rows: [changedFirst, added, ...rest] });
    const diff = diffAuthorizationTables(v1, v2);
    expect(diff.againstVersion).toBe(1);
    expect(diff.rowsAdded).toEqual([{ requesterKind: 'jasso', procedure: 'scholarship-loan', providerKind: second['providerKind'], items: (second['items'] as { code: string }[]).map((i) => i.code), push: [] }]);
    expect(diff.rowsRemoved).toEqual([expect.objectContaining({ requesterKind: second['requesterKind'], procedure: (second['procedure'] as { code: string }).code })]);
    expect(diff.rowsChanged).toEqual([
      expect.objectContaining({ procedure: (first['procedure'] as { code: string }).code, itemsAdded: ['rollout-new-item'], itemsRemoved: [], pushAdded: [firstItems[0]!['code']], pushRemoved: [], procedureChanged: false }),
    ]);
    expect(diff.itemsAdded).toEqual(['rollout-new-item']);
    expect(diff.itemsChanged).toEqual([raw.items[0]!['code']]);
    expect(diffAuthorizationTables(v2, v2)).toEqual({ againstVersion: 2, rowsAdded: [], rowsRemoved: [], rowsChanged: [], itemsAdded: [], itemsRemoved: [], itemsChanged: [] });
  });
});

describe('unknownTableCodes', () => {
  test('names unknown agency kinds, undefined row items and push items outside the row', () => {
    expect(unknownTableCodes(rawTable())).toEqual([]);
    const raw = rawTable() as { rows: Record<string, unknown>[] };
    const row = raw.rows[0]!;
    const bad = { ...raw, rows: [{ ...row, requesterKind: 'ministry', items: [...(row['items'] as unknown[]), { code: 'nowhere', name: 'x', nameEn: 'x' }], push: ['elsewhere'] }, ...raw.rows.slice(1)] };
    expect(unknownTableCodes(bad)).toEqual([
      expect.stringMatching(/^rows\[0\]\.requesterKind: unknown agency kind "ministry"/),
      expect.stringMatching(/^rows\[0\]\.items\[\d+\]: item "nowhere" is not defined in "items"$/),
      'rows[0].push[0]: item "elsewhere" is not one of the row\'s items',
    ]);
    expect(unknownTableCodes('not a table')).toEqual([]);
  });
});
