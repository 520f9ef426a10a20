import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { corporateNumberFromBase } from '#numbering';
import { SqliteCorporateRegistry, rebuild } from '#projections';
import { expectProblem } from './support/problem-assertions.js';
import { startTestHub, type TestHub, expectNothingButRefusals } from './support/test-hub.js';

interface Corporation {
  corporateNumber: string;
  name: string;
  location: string;
  kind: string;
  kindLabel: string;
  designatedAt: string;
}
interface Page {
  corporations: Corporation[];
  next?: string;
}

const COMPANIES = [
  { registryNumber: '430001000001', name: '株式会社室蘭製作所', location: '北海道室蘭市幸町1番2号', kind: 'stock-company' },
  { registryNumber: '430001000002', name: 'ムロラン\u3000テック合同会社', location: '北海道室蘭市中島町3丁目', kind: 'llc' },
  { registryNumber: '430001000003', name: '札幌ＡＢＣ株式会社', location: '北海道札幌市中央区北1条西2丁目', kind: 'stock-company' },
  { registryNumber: '430001000004', name: 'Comma, "Quote" and Co.', location: '東京都千代田区霞が関3-1-1', kind: 'other' },
  { registryNumber: '430001000005', name: '100%_完全一致 有限会社', location: '北海道室蘭市東町', kind: 'limited-company' },
] as const;
const number = (i: number): string => corporateNumberFromBase(COMPANIES[i]!.registryNumber);
/** The corporate numbers of these companies in the registry's order (the check digit comes first). */
const ordered = (...indexes: number[]): string[] => indexes.map(number).sort();

describe('the public corporate number registry (search and CSV download)', () => {
  let hub: TestHub;
  beforeAll(async () => {
    hub = await startTestHub();
    for (const c of COMPANIES) expect((await hub.post('/v1/corporate-numbers', c, hub.operator)).statusCode).toBe(201);
  });
  afterAll(async () => {
    await hub.dispose();
  });
  const search = async (query: string): Promise<Page> => {
    const res = await hub.get(`/v1/corporate-numbers?${query}`);
    expect(res.statusCode, res.body).toBe(200);
    return res.json<Page>();
  };
  const numbers = (page: Page): string[] => page.corporations.map((c) => c.corporateNumber);

  it('finds a designation as soon as it is acknowledged, with its public fields and the kind in Japanese', async () => {
    const page = await search(`name=${encodeURIComponent('室蘭製作所')}`);
    expect(page).toEqual({
      corporations: [
        {
          corporateNumber: number(0),
          name: '株式会社室蘭製作所',
          location: '北海道室蘭市幸町1番2号',
          kind: 'stock-company',
          kindLabel: '株式会社',
          designatedAt: expect.any(String),
          status: 'active',
          closedOn: null,
          closedAt: null,
          closeReason: null,
          history: [],
        },
      ],
    });
  });

  it('matches names whatever their width, case and spacing; locations by their beginning; kinds exactly', async () => {
    // Half-width katakana without the ideographic space find 'ムロラン\u3000テック合同会社'; 'abc' finds the full-width 'ＡＢＣ'.
    expect(numbers(await search(`name=${encodeURIComponent('ﾑﾛﾗﾝﾃｯｸ')}`))).toEqual([number(1)]);
    expect(numbers(await search('name=abc'))).toEqual([number(2)]);
    expect(numbers(await search(`location=${encodeURIComponent('北海道室蘭市')}`))).toEqual(ordered(0, 1, 4));
    expect(numbers(await search(`location=${encodeURIComponent('室蘭市')}`))).toEqual([]); // a location matches from its beginning
    expect(numbers(await search(`location=${encodeURIComponent('北海道')}&kind=stock-company`))).toEqual(ordered(0, 2));
    // LIKE wildcards in the input are literal characters.
    expect(numbers(await search(`name=${encodeURIComponent('100%_')}`))).toEqual([number(4)]);
    expect(numbers(await search(`name=${encodeURIComponent('%')}`))).toEqual([number(4)]);
  });

  it('pages in corporate number order with limit and next → after', async () => {
    const hokkaido = ordered(0, 1, 2, 4);
    const first = await search(`location=${encodeURIComponent('北海道')}&limit=2`);
    expect(numbers(first)).toEqual(hokkaido.slice(0, 2));
    expect(first.next).toBe(hokkaido[1]);
    const second = await search(`location=${encodeURIComponent('北海道')}&limit=2&after=${first.next}`);
    expect(numbers(second)).toEqual(hokkaido.slice(2));
    expect(second.next).toBeUndefined();
  });

  it('answers bad criteria with 400 naming each field, and nothing changes', async () => {
    const head = await hub.head();
    const res = await hub.get(`/v1/corporate-numbers?limit=0&kind=bank&after=123&location=${encodeURIComponent('\u3000')}`);
    const fields = (expectProblem(res, 400, 'VALIDATION_FAILED')['errors'] as { field: string }[]).map((e) => e.field).sort();
    expect(fields).toEqual(['after', 'kind', 'limit', 'location']);
    expect(expectProblem(await hub.get('/v1/corporate-numbers?limit=1001'), 400, 'VALIDATION_FAILED')['errors']).toEqual([{ field: 'limit', message: 'must be an integer from 1 to 1000' }]);
    await expectNothingButRefusals(hub, head);
  });

  it('downloads the registry as RFC 4180 CSV, filtered by the same criteria', async () => {
    const res = await hub.get('/v1/corporate-numbers.csv');
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toMatch(/^text\/csv; charset=utf-8/);
    expect(res.headers['content-disposition']).toBe('attachment; filename="corporate-numbers.csv"');
    const lines = res.body.split('\r\n');
    expect(lines[0]).toBe('corporate_number,name,location,kind,kind_label,designated_at,status,closed_on,close_reason,latest_change_on,latest_change_reason');
    expect(lines.at(-1)).toBe('');
    expect(lines).toHaveLength(COMPANIES.length + 2);
    expect(lines.slice(1, -1).map((l) => l.slice(0, 13))).toEqual(ordered(0, 1, 2, 3, 4));
    expect(lines[1 + ordered(0, 1, 2, 3, 4).indexOf(number(3))]).toMatch(new RegExp(`^${number(3)},"Comma, ""Quote"" and Co\\.",東京都千代田区霞が関3-1-1,other,その他,\\d{4}-[^,]+,active,,,,$`));

    const filtered = await hub.get(`/v1/corporate-numbers.csv?kind=llc`);
    expect(filtered.body.split('\r\n').slice(1, -1).map((l) => l.slice(0, 13))).toEqual([number(1)]);
    expectProblem(await hub.get('/v1/corporate-numbers.csv?kind=bank'), 400, 'VALIDATION_FAILED');
  });

  it('I8: rebuilt from the log, the registry equals the live one', async () => {
    const live = await search('limit=1000');
    const dir = mkdtempSync(join(tmpdir(), 'registry-'));
    const rebuilt = new SqliteCorporateRegistry({ path: join(dir, 'registry.sqlite') });
    try {
      await rebuild(hub.store, rebuilt);
      expect(await rebuilt.checkpoint()).toBe((await hub.head()) - 1);
      expect(await rebuilt.search({ limit: 1000 })).toEqual(live);
      expect(live.corporations).toHaveLength(COMPANIES.length);
    } finally {
      await rebuilt.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
