import { describe, expect, test } from 'vitest';
import { PREFECTURES, indexMunicipalities, parseMunicipalityList, validateLocalGovernmentCode } from '#numbering';
import { readJson, schemaValidator } from '../../../test/support/json-schema.js';

interface RawMunicipality {
  readonly code: string;
  readonly name: string;
  readonly nameEn: string;
  readonly prefecture: string;
}
const raw = readJson('schemas/municipalities.json') as { version: string; municipalities: RawMunicipality[] };

describe('schemas/municipalities.json', () => {
  test.each(raw.municipalities.map((m) => [m.code, m.name]))('%s (%s) has a valid check digit', (code) => {
    expect(validateLocalGovernmentCode(code)).toEqual({ ok: true, value: code });
  });

  test('codes are unique', () => {
    const codes = raw.municipalities.map((m) => m.code);
    expect(new Set(codes).size).toBe(codes.length);
  });

  test('holds Muroran, Sapporo, Chiyoda-ku and a municipality in each of the 47 prefectures', () => {
    const byCode = new Map(raw.municipalities.map((m) => [m.code, m]));
    expect(byCode.get('012050')).toEqual({ code: '012050', name: '室蘭市', nameEn: 'Muroran City', prefecture: '北海道' });
    expect(byCode.get('011002')?.name).toBe('札幌市');
    expect(byCode.get('131016')?.name).toBe('千代田区');
    expect(new Set(raw.municipalities.map((m) => m.prefecture))).toEqual(new Set(PREFECTURES));
  });

  test('conforms to schemas/municipalities.schema.json', () => {
    const result = schemaValidator('schemas/municipalities.schema.json')(raw);
    expect(result.errors).toBe('No errors');
    expect(result.valid).toBe(true);
  });

  test('parseMunicipalityList accepts it (check digits, uniqueness, prefecture prefix) and indexes it by code', () => {
    const list = parseMunicipalityList(raw);
    expect(list.version).toBe(raw.version);
    expect(list.municipalities).toHaveLength(raw.municipalities.length);
    const index = indexMunicipalities(list);
    expect(index.get('012050')?.nameEn).toBe('Muroran City');
    expect(index.has('011001')).toBe(false);
  });
});

describe('parseMunicipalityList', () => {
  const muroran = { code: '012050', name: '室蘭市', nameEn: 'Muroran City', prefecture: '北海道' };

  test('lists every problem in one INVALID_MUNICIPALITY_LIST error', () => {
    const bad = {
      version: '',
      municipalities: [
        muroran,
        { ...muroran, name: '室蘭市（重複）' },
        { code: '011001', name: '札幌市', nameEn: 'Sapporo City', prefecture: '北海道' },
        { code: '131016', name: '千代田区', nameEn: 'Chiyoda City', prefecture: '北海道' },
        { code: '131016', name: '', nameEn: 'x', prefecture: '東京府' },
        'Naha',
      ],
    };
    const run = () => parseMunicipalityList(bad);
    expect(run).toThrow(expect.objectContaining({ code: 'INVALID_MUNICIPALITY_LIST' }));
    expect(run).toThrow('"version" must be a non-empty string');
    expect(run).toThrow('municipalities[1]: code 012050 appears more than once');
    expect(run).toThrow('municipalities[2]: local government code 011001: check digit is 1, expected 2');
    expect(run).toThrow('municipalities[3]: code 131016 starts with prefecture code 13, but prefecture 北海道 is 01');
    expect(run).toThrow('municipalities[4].name must not be empty or only white space or invisible characters');
    expect(run).toThrow('municipalities[4].prefecture must be one of the 47 prefecture names');
    expect(run).toThrow('municipalities[5] must be an object');
  });

  test.each([[null], [[]], ['municipalities'], [{ version: '1' }]])('%j is not a municipality list', (json) => {
    expect(() => parseMunicipalityList(json)).toThrow(expect.objectContaining({ code: 'INVALID_MUNICIPALITY_LIST' }));
  });

  test('the JSON schema rejects what the structure forbids', () => {
    const validate = schemaValidator('schemas/municipalities.schema.json');
    expect(validate({ version: '1', municipalities: [{ ...muroran, code: '12050' }] }).valid).toBe(false);
    expect(validate({ version: '1', municipalities: [{ ...muroran, population: 80000 }] }).valid).toBe(false);
    expect(validate({ version: '1', municipalities: [{ ...muroran, prefecture: 'Hokkaido' }] }).valid).toBe(false);
    expect(validate({ version: '1', municipalities: [] }).valid).toBe(false);
    expect(validate({ version: '1', municipalities: [muroran] }).valid).toBe(true);
  });
});
