import { displayTextProblem } from '#text';
import { validateLocalGovernmentCode, type LocalGovernmentCode } from './check-digits.js';
import { NumberingError } from './errors.js';

/** The 47 prefectures in JIS X 0401 order: index + 1 is the prefecture code (the first two digits of a municipality code). */
export const PREFECTURES = [
  '北海道', '青森県', '岩手県', '宮城県', '秋田県', '山形県', '福島県',
  '茨城県', '栃木県', '群馬県', '埼玉県', '千葉県', '東京都', '神奈川県',
  '新潟県', '富山県', '石川県', '福井県', '山梨県', '長野県', '岐阜県',
  '静岡県', '愛知県', '三重県', '滋賀県', '京都府', '大阪府', '兵庫県',
  '奈良県', '和歌山県', '鳥取県', '島根県', '岡山県', '広島県', '山口県',
  '徳島県', '香川県', '愛媛県', '高知県', '福岡県', '佐賀県', '長崎県',
  '熊本県', '大分県', '宮崎県', '鹿児島県', '沖縄県',
] as const;
export type Prefecture = (typeof PREFECTURES)[number];

export interface Municipality {
  readonly code: LocalGovernmentCode;
  readonly name: string;
  readonly nameEn: string;
  readonly prefecture: Prefecture;
}

/** The content of `schemas/municipalities.json`. */
export interface MunicipalityList {
  readonly version: string;
  readonly municipalities: readonly Municipality[];
}

function isRecord(x: unknown): x is Record<string, unknown> {
  return typeof x === 'object' && x !== null && !Array.isArray(x);
}

// Names are shown to people (provision records, the registry): the shared text rule, as given in the file.
const MUNICIPALITY_NAME = { max: 200, surroundingSpace: 'refuse' } as const;

function nonEmptyString(x: unknown): x is string {
  return typeof x === 'string' && x.trim().length > 0;
}

/**
 * Checks a parsed municipality list: shape, every code's check digit, code uniqueness and that each
 * code's first two digits name its prefecture. Throws one INVALID_MUNICIPALITY_LIST error listing
 * every problem, so a data fix needs one round.
 */
export function parseMunicipalityList(json: unknown): MunicipalityList {
  const problems: string[] = [];
  if (!isRecord(json)) {
    throw new NumberingError('INVALID_MUNICIPALITY_LIST', 'municipality list must be a JSON object with "version" and "municipalities"');
  }
  if (!nonEmptyString(json['version'])) problems.push('"version" must be a non-empty string');
  const entries = json['municipalities'];
  if (!Array.isArray(entries)) {
    problems.push('"municipalities" must be an array');
  }
  const seen = new Set<string>();
  const municipalities: Municipality[] = [];
  (Array.isArray(entries) ? (entries as unknown[]) : []).forEach((entry, i) => {
    const at = `municipalities[${i}]`;
    if (!isRecord(entry)) {
      problems.push(`${at} must be an object`);
      return;
    }
    const { code, name, nameEn, prefecture } = entry;
    const before = problems.length;
    if (typeof code !== 'string') {
      problems.push(`${at}.code must be a string`);
    } else {
      const v = validateLocalGovernmentCode(code);
      if (!v.ok) problems.push(`${at}: ${v.message}`);
      else if (seen.has(code)) problems.push(`${at}: code ${code} appears more than once`);
      seen.add(code);
    }
    for (const [field, value] of [['name', name], ['nameEn', nameEn]] as const) {
      const problem = displayTextProblem(value, MUNICIPALITY_NAME);
      if (problem !== undefined) problems.push(`${at}.${field} ${problem.message}`);
    }
    const prefIndex = PREFECTURES.indexOf(prefecture as Prefecture);
    if (prefIndex < 0) {
      problems.push(`${at}.prefecture must be one of the 47 prefecture names (e.g. "北海道", "東京都")`);
    } else if (typeof code === 'string' && code.slice(0, 2) !== String(prefIndex + 1).padStart(2, '0')) {
      problems.push(`${at}: code ${code} starts with prefecture code ${code.slice(0, 2)}, but prefecture ${String(prefecture)} is ${String(prefIndex + 1).padStart(2, '0')}`);
    }
    if (problems.length === before) {
      municipalities.push({
        code: code as LocalGovernmentCode,
        name: name as string,
        nameEn: nameEn as string,
        prefecture: prefecture as Prefecture,
      });
    }
  });
  if (problems.length > 0) {
    throw new NumberingError('INVALID_MUNICIPALITY_LIST', `municipality list is invalid:\n- ${problems.join('\n- ')}`);
  }
  return { version: json['version'] as string, municipalities };
}

/** Lookup by code, for the caller that fills `municipalityKnown` in an issuance command. */
export function indexMunicipalities(list: MunicipalityList): ReadonlyMap<string, Municipality> {
  return new Map(list.municipalities.map((m) => [m.code as string, m]));
}
