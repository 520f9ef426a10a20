import { describe, expect, test } from 'vitest';
import {
  authorizationTablesDecider,
  tableInForce,
  type AuthorizationTablePublished,
  type PublishAuthorizationTable,
} from '#linkage';
import { rawTable, sha256, table } from './fixtures.js';
import { deciderSpec } from './given-when-then.js';

const spec = deciderSpec(authorizationTablesDecider);
const v1Raw = rawTable();
const v1 = table();
const D1 = sha256('v1');
const D2 = sha256('v2');

function publish(raw: unknown, publishedAt: string, digest: string = D1): PublishAuthorizationTable {
  return { type: 'PublishAuthorizationTable', data: { table: raw, digest, publishedAt } };
}

const published1: AuthorizationTablePublished = {
  type: 'AuthorizationTablePublished',
  schemaVersion: 1,
  data: { version: 1, effectiveFrom: v1.effectiveFrom, digest: D1, publishedAt: '2026-01-10T00:00:00.000Z', table: v1 },
  terminal: 'completed',
};

describe('authorization table publication', () => {
  test('given nothing, when the first version is published, then AuthorizationTablePublished holds the whole table (it may take effect in the past)', () => {
    spec.given([]).when(publish(v1Raw, '2026-01-10T00:00:00.000Z')).then([published1]);
  });

  test('given version 1, when version 2 takes effect later, then it is published', () => {
    const v2 = { ...v1Raw, version: 2, effectiveFrom: '2027-04-01T00:00:00+09:00' };
    const [event] = spec.given([published1]).when(publish(v2, '2026-03-01T00:00:00.000Z', D2)).thenEvents();
    expect(event).toMatchObject({ type: 'AuthorizationTablePublished', data: { version: 2, effectiveFrom: '2027-04-01T00:00:00+09:00', digest: D2 }, terminal: 'completed' });
  });

  test('refuses a version that is not newer: TABLE_VERSION_NOT_NEWER', () => {
    spec.given([published1]).when(publish({ ...v1Raw, effectiveFrom: '2027-04-01T00:00:00Z' }, '2026-03-01T00:00:00.000Z')).thenFails('TABLE_VERSION_NOT_NEWER', /not newer than the latest published version 1/);
    spec.given([published1]).when(publish({ ...v1Raw, version: 0 }, '2026-03-01T00:00:00.000Z')).thenFails('INVALID_AUTHORIZATION_TABLE');
  });

  test('refuses a version that would not be effective: before the one in force, or retroactively', () => {
    spec
      .given([published1])
      .when(publish({ ...v1Raw, version: 2, effectiveFrom: '2018-01-01T00:00:00Z' }, '2026-03-01T00:00:00.000Z'))
      .thenFails('TABLE_NOT_EFFECTIVE', /before version 1/);
    spec
      .given([published1])
      .when(publish({ ...v1Raw, version: 2, effectiveFrom: '2026-02-01T00:00:00Z' }, '2026-03-01T00:00:00.000Z'))
      .thenFails('TABLE_NOT_EFFECTIVE', /before its publication/);
  });

  test('refuses an invalid table, digest or time', () => {
    spec.given([]).when(publish({ ...v1Raw, rows: [] }, '2026-01-10T00:00:00.000Z')).thenFails('INVALID_AUTHORIZATION_TABLE', /at least one row/);
    spec.given([]).when(publish(v1Raw, '2026-01-10T00:00:00.000Z', 'abc')).thenFails('INVALID_DIGEST');
    spec.given([]).when(publish(v1Raw, 'yesterday')).thenFails('MALFORMED');
  });
});

describe('tableInForce', () => {
  const v2Effective = '2027-04-01T00:00:00+09:00';
  const published2: AuthorizationTablePublished = {
    ...published1,
    data: { ...published1.data, version: 2, effectiveFrom: v2Effective, digest: D2, publishedAt: '2026-03-01T00:00:00.000Z', table: { ...v1, version: 2, effectiveFrom: v2Effective } },
  };
  const state = [published1, published2].reduce(authorizationTablesDecider.evolve, authorizationTablesDecider.initialState());

  test('is the latest version whose effective date has come', () => {
    expect(tableInForce(authorizationTablesDecider.initialState(), '2026-01-01T00:00:00Z')).toBeUndefined();
    expect(tableInForce(state, '2019-06-30T14:59:59Z')).toBeUndefined();
    expect(tableInForce(state, '2019-06-30T15:00:00Z')?.version).toBe(1);
    expect(tableInForce(state, '2027-03-31T14:59:59.999Z')?.version).toBe(1);
    expect(tableInForce(state, '2027-03-31T15:00:00Z')?.version).toBe(2);
    expect(tableInForce(state, '2030-01-01T00:00:00Z')?.digest).toBe(D2);
  });

  test('refuses a malformed instant', () => {
    expect(() => tableInForce(state, 'now')).toThrow(expect.objectContaining({ code: 'MALFORMED' }));
  });
});
