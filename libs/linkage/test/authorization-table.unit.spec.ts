import { describe, expect, test } from 'vitest';
import { AGENCY_KINDS, LinkageError, parseAuthorizationTable } from '#linkage';
import { TABLE_FILE, TABLE_SCHEMA, rawTable, table } from './fixtures.js';
import { readJson, schemaValidator } from '../../../test/support/json-schema.js';

const validate = schemaValidator(TABLE_SCHEMA);

describe(`${TABLE_FILE}`, () => {
  test('conforms to its JSON Schema', () => {
    const result = validate(rawTable());
    expect(result.errors).toBe('No errors');
    expect(result.valid).toBe(true);
  });

  test('parses: every row item defined in the catalogue with the same names, one name per procedure code', () => {
    const t = table();
    expect(t.version).toBe(1);
    expect(Date.parse(t.effectiveFrom)).not.toBeNaN();
    const catalogue = new Map(t.items.map((i) => [i.code, i]));
    for (const row of t.rows) {
      for (const item of row.items) {
        expect(catalogue.get(item.code), `item ${item.code}`).toMatchObject({ code: item.code, name: item.name, nameEn: item.nameEn });
      }
    }
    const names = new Map<string, string>();
    for (const row of t.rows) {
      expect(names.get(row.procedure.code) ?? row.procedure.name).toBe(row.procedure.name);
      names.set(row.procedure.code, row.procedure.name);
    }
  });

  test('one row per (requester kind, procedure, provider kind), so a procedure code is unique per requester kind and provider kind', () => {
    const keys = table().rows.map((r) => `${r.requesterKind}|${r.procedure.code}|${r.providerKind}`);
    expect(new Set(keys).size).toBe(keys.length);
  });

  test('holds the Muroran example of seeds/001: the pension service may ask a municipality for local tax information', () => {
    const row = table().rows.find((r) => r.requesterKind === 'pension-service' && r.procedure.code === 'pre-twenty-disability-pension-income-check' && r.providerKind === 'municipality');
    expect(row?.items.map((i) => i.code)).toEqual(['local-tax']);
    expect(row?.items[0]?.name).toBe('地方税関係情報');
  });

  test('holds the procedures of seeds/002 with the documents they replace', () => {
    const t = table();
    const procedures = new Set(t.rows.map((r) => r.procedure.code));
    for (const code of ['child-allowance', 'child-rearing-allowance', 'jasso-scholarship', 'public-housing', 'care-premium-reduction', 'livelihood-protection', 'national-pension-premium-exemption', 'pension-award-claim']) {
      expect(procedures, code).toContain(code);
    }
    const child = t.rows.filter((r) => r.procedure.code === 'child-allowance');
    expect(child.map((r) => [r.requesterKind, r.providerKind, r.items.map((i) => i.code)])).toEqual([
      ['municipality', 'municipality', ['local-tax', 'resident-record']],
      ['municipality', 'pension-service', ['pension-enrollment']],
    ]);
    expect(t.items.find((i) => i.code === 'local-tax')?.replaces).toContain('課税証明書');
  });

  test('the schema names exactly the agency kinds the library knows', () => {
    const schema = readJson(TABLE_SCHEMA) as { $defs: { agencyKind: { enum: string[] } } };
    expect(schema.$defs.agencyKind.enum).toEqual([...AGENCY_KINDS]);
  });
});

describe('the schema refuses', () => {
  const base = rawTable();
  const rows = base['rows'] as Record<string, unknown>[];
  const cases: readonly [string, unknown][] = [
    ['a version that is not an integer', { ...base, version: '1' }],
    ['an effective date that is not RFC 3339', { ...base, effectiveFrom: '2019-07-01' }],
    ['an unknown agency kind', { ...base, rows: [{ ...rows[0], providerKind: 'ministry' }] }],
    ['a row without items', { ...base, rows: [{ ...rows[0], items: [] }] }],
    ['an unknown field', { ...base, rows: [{ ...rows[0], note: 'x' }] }],
    ['a code that is not kebab-case', { ...base, rows: [{ ...rows[0], procedure: { code: 'Child_Allowance', name: '児童手当', nameEn: 'Child allowance' } }] }],
  ];
  test.each(cases)('%s', (_name, value) => {
    expect(validate(value).valid).toBe(false);
  });
});

describe('parseAuthorizationTable', () => {
  const item = { code: 'local-tax', name: '地方税関係情報', nameEn: 'Local tax information' };
  const procedure = { code: 'child-allowance', name: '児童手当の支給に関する事務', nameEn: 'Child allowance' };
  const row = { requesterKind: 'municipality', procedure, providerKind: 'municipality', items: [item] };
  const good = { version: 2, effectiveFrom: '2027-04-01T00:00:00+09:00', items: [item], rows: [row] };

  test('accepts a minimal table', () => {
    expect(parseAuthorizationTable(good)).toEqual(good);
  });

  test('lists every problem in one INVALID_AUTHORIZATION_TABLE error', () => {
    const bad = {
      version: 0,
      effectiveFrom: 'soon',
      items: [item, { ...item, name: '別名' }],
      rows: [
        row,
        row,
        { ...row, providerKind: 'prefecture', items: [{ code: 'resident-record', name: '住民票関係情報', nameEn: 'Resident record information' }] },
        { ...row, providerKind: 'pension-service', procedure: { ...procedure, name: '別の事務' } },
        { ...row, requesterKind: 'ministry' },
        { ...row, providerKind: 'jasso', items: [{ ...item, nameEn: 'Tax' }] },
      ],
    };
    const parse = (): unknown => parseAuthorizationTable(bad);
    expect(parse).toThrow(LinkageError);
    expect(parse).toThrow(expect.objectContaining({ code: 'INVALID_AUTHORIZATION_TABLE' }));
    expect(parse).toThrow(/"version" must be an integer/);
    expect(parse).toThrow(/"effectiveFrom" must be an RFC 3339/);
    expect(parse).toThrow(/item code "local-tax" is defined twice/);
    expect(parse).toThrow(/a second row for requester kind "municipality", procedure "child-allowance" and provider kind "municipality"/);
    expect(parse).toThrow(/item "resident-record" is not defined in "items"/);
    expect(parse).toThrow(/procedure "child-allowance" is described differently/);
    expect(parse).toThrow(/rows\[4\]\.requesterKind must be one of/);
    expect(parse).toThrow(/item "local-tax" is named "地方税関係情報" \/ "Tax" here/);
  });

  test('refuses what is not an object', () => {
    expect(() => parseAuthorizationTable([])).toThrow(expect.objectContaining({ code: 'INVALID_AUTHORIZATION_TABLE' }));
  });
});
