import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import { AGENCY_KINDS, LinkageError, authorize, compileAuthorizationPolicy, type AuthorizationRequest } from '#linkage';
import { T0, policy, table } from './fixtures.js';

const muroranExample: AuthorizationRequest = {
  requesterKind: 'pension-service',
  procedureCode: 'pre-twenty-disability-pension-income-check',
  providerKind: 'municipality',
  itemCodes: ['local-tax'],
  at: T0,
};

describe('authorize (情報連携の可否判断)', () => {
  const p = policy();

  test('allows the Muroran example and names the row and version', () => {
    const d = authorize(p, muroranExample);
    expect(d).toMatchObject({ allowed: true, tableVersion: 1 });
    expect(d.allowed && d.row.procedure.name).toBe('20歳前の傷病による障害基礎年金受給者の所得確認に関する事務');
  });

  test('allows a subset of a row\'s items', () => {
    const d = authorize(p, { requesterKind: 'municipality', procedureCode: 'child-allowance', providerKind: 'municipality', itemCodes: ['resident-record'], at: T0 });
    expect(d.allowed).toBe(true);
  });

  test('UNKNOWN_PROCEDURE for a procedure not in the table', () => {
    expect(authorize(p, { ...muroranExample, procedureCode: 'casino-entry-check' })).toMatchObject({
      allowed: false,
      reason: 'UNKNOWN_PROCEDURE',
      tableVersion: 1,
      message: 'procedure "casino-entry-check" is not in authorization table version 1',
    });
  });

  test('REQUESTER_KIND_NOT_ALLOWED when the procedure belongs to other kinds', () => {
    expect(authorize(p, { ...muroranExample, requesterKind: 'jasso' })).toMatchObject({
      allowed: false,
      reason: 'REQUESTER_KIND_NOT_ALLOWED',
      allowedRequesterKinds: ['pension-service'],
    });
  });

  test('PROVIDER_KIND_NOT_ALLOWED names whom the procedure may ask', () => {
    const d = authorize(p, { ...muroranExample, providerKind: 'hello-work' });
    expect(d).toMatchObject({ allowed: false, reason: 'PROVIDER_KIND_NOT_ALLOWED', allowedProviderKinds: ['municipality'] });
    expect(!d.allowed && d.message).toMatch(/may ask municipality, not a hello-work/);
  });

  test('ITEM_NOT_ALLOWED names every item the row does not allow, unknown ones included', () => {
    const d = authorize(p, { ...muroranExample, itemCodes: ['local-tax', 'resident-record', 'bank-balance'] });
    expect(d).toMatchObject({ allowed: false, reason: 'ITEM_NOT_ALLOWED', notAllowedItems: ['resident-record', 'bank-balance'], allowedItems: ['local-tax'] });
    expect(!d.allowed && d.message).toMatch(/not allowed: resident-record, bank-balance/);
  });

  test('TABLE_VERSION_NOT_IN_FORCE when no version is in force, before it takes effect, or for another version', () => {
    expect(authorize(undefined, muroranExample)).toMatchObject({ allowed: false, reason: 'TABLE_VERSION_NOT_IN_FORCE' });
    expect(authorize(p, { ...muroranExample, at: '2019-06-30T14:59:59.999Z' })).toMatchObject({ allowed: false, reason: 'TABLE_VERSION_NOT_IN_FORCE', tableVersion: 1 });
    expect(authorize(p, { ...muroranExample, at: '2019-06-30T15:00:00.000Z' }).allowed).toBe(true);
    expect(authorize(p, { ...muroranExample, requestedTableVersion: 2 })).toMatchObject({ allowed: false, reason: 'TABLE_VERSION_NOT_IN_FORCE', tableVersion: 1 });
    expect(authorize(p, { ...muroranExample, requestedTableVersion: 1 }).allowed).toBe(true);
  });

  test('checks in order: version, procedure, requester kind, provider kind, items', () => {
    const everythingWrong = { requesterKind: 'jasso' as const, procedureCode: 'unknown', providerKind: 'jasso' as const, itemCodes: ['x'], at: T0 };
    expect(authorize(undefined, everythingWrong)).toMatchObject({ reason: 'TABLE_VERSION_NOT_IN_FORCE' });
    expect(authorize(p, everythingWrong)).toMatchObject({ reason: 'UNKNOWN_PROCEDURE' });
    expect(authorize(p, { ...everythingWrong, procedureCode: 'child-allowance' })).toMatchObject({ reason: 'REQUESTER_KIND_NOT_ALLOWED' });
    expect(authorize(p, { ...everythingWrong, procedureCode: 'jasso-scholarship' })).toMatchObject({ reason: 'PROVIDER_KIND_NOT_ALLOWED' });
    expect(authorize(p, { ...everythingWrong, procedureCode: 'jasso-scholarship', providerKind: 'hello-work' })).toMatchObject({ reason: 'ITEM_NOT_ALLOWED' });
  });

  test('a request that cannot be judged is MALFORMED, not a refusal', () => {
    expect(() => authorize(p, { ...muroranExample, itemCodes: [] })).toThrow(expect.objectContaining({ code: 'MALFORMED' }));
    expect(() => authorize(p, { ...muroranExample, itemCodes: ['local-tax', 'local-tax'] })).toThrow(/more than once/);
    expect(() => authorize(p, { ...muroranExample, itemCodes: ['Local Tax'] })).toThrow(LinkageError);
    expect(() => authorize(p, { ...muroranExample, at: 'now' })).toThrow(expect.objectContaining({ code: 'MALFORMED' }));
  });

  test('property: a request is allowed exactly when some row of the table lists all its items', () => {
    const t = table();
    const procedures = [...new Set(t.rows.map((r) => r.procedure.code)), 'unknown-procedure'];
    const items = [...t.items.map((i) => i.code), 'unknown-item'];
    fc.assert(
      fc.property(
        fc.constantFrom(...AGENCY_KINDS),
        fc.constantFrom(...procedures),
        fc.constantFrom(...AGENCY_KINDS),
        fc.uniqueArray(fc.constantFrom(...items), { minLength: 1, maxLength: 4 }),
        (requesterKind, procedureCode, providerKind, itemCodes) => {
          const expected = t.rows.some(
            (r) => r.requesterKind === requesterKind && r.procedure.code === procedureCode && r.providerKind === providerKind && itemCodes.every((c) => r.items.some((i) => i.code === c)),
          );
          expect(authorize(p, { requesterKind, procedureCode, providerKind, itemCodes, at: T0 }).allowed).toBe(expected);
        },
      ),
    );
  });

  test('compiling keeps the version and effective date', () => {
    const c = compileAuthorizationPolicy(table());
    expect([c.version, c.effectiveFrom, c.effectiveFromMs]).toEqual([1, '2019-07-01T00:00:00+09:00', Date.parse('2019-06-30T15:00:00Z')]);
  });
});
