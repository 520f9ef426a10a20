import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NOTICE_INBOX_FILE, PROJECTIONS_FILE } from '#projections';
import { generateAnswerKeyPair } from '#sealed-answer';
import { expectProblem } from './support/problem-assertions.js';
import { FakeProvider, MURORAN_CITY, PENSION, SAPPORO_CITY, acquire, bearer, issuePerson, operatorToken, registerAgency, startLinkageHub, type Agency } from './support/linkage-fixture.js';
import type { TestHub } from './support/test-hub.js';

/**
 * A citizen's provision records (情報提供等記録) as the portal reads them: filtered and paged newest first
 * over 7 years, the richer record shape, the CSV download and the monthly counts, all from the projection,
 * and the same after the projection is dropped and rebuilt from the log (I8).
 */

let now = new Date('2019-08-01T00:00:00.000Z');
/** Its clock starts in 2019: the table version in force then (version 2, the hub's default, takes effect in 2026). */
const TABLE_V1 = { HUB_AUTHORIZATION_TABLE_FILE: join(import.meta.dirname, '../../../schemas/authorization/authorization-table.v1.json') };
let hub: TestHub;
let pension: Agency;
let muroran: Agency;
let sapporo: Agency;
const muroranNode = new FakeProvider();
/** A name a CSV must quote: a comma and quotes. */
const SAPPORO_NAME = '札幌市 "子育て支援課", 本庁';
type Person = { individualNumber: string; citizenSecret: string; pensionCode: string; sapporoCode: string; muroranCode: string };
let aoyama: Person;
let kato: Person;

type Rec = {
  serial: string;
  at: string;
  date: string;
  time: string;
  kind: string;
  requester: { agencyId: string; name: string | null } | null;
  provider: { agencyId: string; name: string | null };
  procedure: { code: string; name: string | null };
  items: { code: string; name: string | null }[];
  outcome: string;
};
type Page = { records: Rec[]; next?: string };

async function person(): Promise<Person> {
  const p = await issuePerson(hub);
  return {
    ...p,
    pensionCode: await acquire(hub, pension, p.individualNumber),
    sapporoCode: await acquire(hub, sapporo, p.individualNumber),
    muroranCode: await acquire(hub, muroran, p.individualNumber),
  };
}

/** A query at `at` (the hub's clock): the pension service's award claim, or Sapporo's child allowance, both of Muroran. */
async function query(at: string, who: Person, by: 'pension' | 'sapporo' = 'pension'): Promise<string> {
  now = new Date(at);
  const body = by === 'pension' ? { code: who.pensionCode, procedureCode: 'pension-award-claim' } : { code: who.sapporoCode, procedureCode: 'child-allowance' };
  const res = await hub.post('/v1/queries', { ...body, providerAgencyId: MURORAN_CITY, itemCodes: ['local-tax'] }, bearer((by === 'pension' ? pension : sapporo).token));
  expect(res.statusCode, res.body).toBeLessThan(500);
  return res.json<{ serial: string }>().serial;
}

const READ_AT = '2026-08-02T00:00:00.000Z';
const records = async (citizen: Person, q = '', target: TestHub = hub): Promise<Page> => {
  const res = await target.get(`/v1/citizens/me/provision-records${q}`, bearer(citizen.citizenSecret));
  expect(res.statusCode, res.body).toBe(200);
  return res.json<Page>();
};
async function allPages(citizen: Person, q: string, between?: () => Promise<void>): Promise<{ serials: string[]; pages: number }> {
  const serials: string[] = [];
  let after: string | undefined;
  let pages = 0;
  for (;;) {
    const page = await records(citizen, `?${q}${after === undefined ? '' : `&after=${after}`}`);
    pages += 1;
    serials.push(...page.records.map((r) => r.serial));
    if (page.next === undefined) return { serials, pages };
    if (pages === 1 && between !== undefined) await between();
    after = page.next;
  }
}

const serials: Record<string, string> = {};
const csv = async (q = '', target: TestHub = hub) => {
  const res = await target.get(`/v1/citizens/me/provision-records.csv${q}`, bearer(aoyama.citizenSecret));
  expect(res.statusCode, res.body).toBe(200);
  return res;
};

beforeAll(async () => {
  hub = await startLinkageHub({ clock: () => now, env: TABLE_V1 });
  await muroranNode.start(hub);
  pension = await registerAgency(hub, PENSION, 'pension-service', 'http://127.0.0.1:9');
  muroran = await registerAgency(hub, MURORAN_CITY, 'municipality', muroranNode.endpoint);
  const registered = await hub.post('/v1/agencies', { agencyId: SAPPORO_CITY, name: SAPPORO_NAME, kind: 'municipality', endpoint: 'http://127.0.0.1:9', publicKey: pension.keys.publicKey }, bearer(operatorToken(hub)));
  expect(registered.statusCode, registered.body).toBe(201);
  sapporo = { agencyId: SAPPORO_CITY, token: registered.json<{ token: string }>().token, keys: pension.keys };
  aoyama = await person();
  kato = await person();
  muroranNode.behaviours.set(aoyama.muroranCode, { answer: { 'local-tax': { fiscalYear: 2026, taxableIncome: 1 } } });
  // Seven years and a day before the reading time: out of the window then.
  serials['old'] = await query('2019-08-01T00:00:00.000Z', aoyama);
  serials['mar'] = await query('2026-03-31T14:59:59.000Z', aoyama);
  // 2026-04-01 00:00:00 in Japan time: April's, in Japan-time months.
  serials['apr1'] = await query('2026-03-31T15:00:00.000Z', aoyama);
  serials['apr2'] = await query('2026-04-15T03:00:00.000Z', aoyama, 'sapporo');
  muroranNode.behaviours.set(aoyama.muroranCode, { refuse: 'NO_RECORD' });
  serials['may'] = await query('2026-05-20T03:00:00.000Z', aoyama);
  muroranNode.behaviours.set(aoyama.muroranCode, { answer: { 'local-tax': { fiscalYear: 2026, taxableIncome: 1 } } });
  serials['jun'] = await query('2026-06-10T03:00:00.000Z', aoyama, 'sapporo');
  serials['jul1'] = await query('2026-07-01T03:00:00.000Z', aoyama);
  serials['jul2'] = await query('2026-07-01T03:00:00.000Z', aoyama);
  serials['kato'] = await query('2026-07-02T03:00:00.000Z', kato);
  now = new Date(READ_AT);
});
afterAll(async () => {
  await hub?.dispose();
  await muroranNode.stop();
});

const NEWEST_FIRST = ['jul2', 'jul1', 'jun', 'may', 'apr2', 'apr1', 'mar'];

describe('GET /v1/citizens/me/provision-records', () => {
  it('answers newest first over the 7 years before now, each record with kind, agencies, procedure and items by code and name', async () => {
    const page = await records(aoyama);
    expect(page.next).toBeUndefined();
    expect(page.records.map((r) => r.serial)).toEqual(NEWEST_FIRST.map((k) => serials[k]));
    const apr2 = page.records.find((r) => r.serial === serials['apr2'])!;
    expect(apr2).toEqual({
      serial: serials['apr2'],
      at: '2026-04-15T03:00:00.000Z',
      date: '2026-04-15',
      time: '12:00:00',
      kind: 'query',
      requester: { agencyId: SAPPORO_CITY, name: SAPPORO_NAME },
      provider: { agencyId: MURORAN_CITY, name: `${MURORAN_CITY} (test)` },
      procedure: { code: 'child-allowance', name: '児童手当の支給に関する事務' },
      items: [{ code: 'local-tax', name: '地方税関係情報' }],
      outcome: 'answered',
    });
    expect(page.records.find((r) => r.serial === serials['may'])).toMatchObject({ requester: { agencyId: PENSION }, procedure: { code: 'pension-award-claim' }, outcome: 'refused-by-provider' });
    // No code, no subject id, nobody else's exchange.
    for (const secret of [aoyama.pensionCode, aoyama.muroranCode, aoyama.sapporoCode, 'subjectId', serials['kato']!]) expect(JSON.stringify(page)).not.toContain(secret);
    expect((await records(kato)).records.map((r) => r.serial)).toEqual([serials['kato']]);
  });

  it('moves the 7-year window with the clock: the 2019 exchange is shown until seven years have passed', async () => {
    now = new Date('2026-07-31T00:00:00.000Z');
    try {
      expect((await records(aoyama)).records.map((r) => r.serial).at(-1)).toBe(serials['old']);
      // Read then, the later exchanges are not yet there.
      expect((await records(aoyama)).records.map((r) => r.serial)).not.toContain(serials['kato']);
    } finally {
      now = new Date(READ_AT);
    }
    expect((await records(aoyama)).records.map((r) => r.serial)).not.toContain(serials['old']);
    // A from before the window does not widen it.
    expect((await records(aoyama, '?from=2019-01-01T00:00:00Z')).records.map((r) => r.serial)).not.toContain(serials['old']);
  });

  it('pages with `after`: every record exactly once, no gap, even when a newer exchange arrives between pages', async () => {
    const whole = (await records(aoyama, '?limit=1000')).records.map((r) => r.serial);
    for (const limit of [1, 2, 3, 7]) {
      const { serials: paged, pages } = await allPages(aoyama, `limit=${limit}`);
      expect(paged).toEqual(whole);
      expect(new Set(paged).size).toBe(paged.length);
      expect(pages).toBe(Math.ceil(whole.length / limit));
    }
    // A query arrives after the first page: it is newer than every cursor, so the pages go on undisturbed.
    let late = '';
    const { serials: paged } = await allPages(aoyama, 'limit=3', async () => {
      late = await query('2026-08-02T00:00:00.000Z', aoyama);
      now = new Date('2026-08-02T00:00:01.000Z');
    });
    expect(paged).toEqual(whole);
    expect((await records(aoyama)).records[0]!.serial).toBe(late);
    serials['late'] = late;
    now = new Date(READ_AT);
  });

  it('filters by period (from inclusive, to exclusive) and by an agency that asked or provided, paging within the filter', async () => {
    const at = async (q: string) => (await records(aoyama, q)).records.map((r) => r.serial);
    expect(await at('?from=2026-04-01T00:00:00%2B09:00&to=2026-05-01T00:00:00%2B09:00')).toEqual([serials['apr2'], serials['apr1']]);
    expect(await at('?from=2026-03-31T14:59:59Z&to=2026-03-31T15:00:00Z')).toEqual([serials['mar']]);
    expect(await at(`?agencyId=${SAPPORO_CITY}`)).toEqual([serials['jun'], serials['apr2']]);
    // (The late exchange of the paging test is the newest now.)
    expect(await at(`?agencyId=${MURORAN_CITY}`)).toEqual(['late', ...NEWEST_FIRST].map((k) => serials[k]));
    expect(await at(`?agencyId=${PENSION}&from=2026-06-01T00:00:00%2B09:00&to=2026-08-01T00:00:00%2B09:00`)).toEqual([serials['jul2'], serials['jul1']]);
    expect(await at('?agencyId=hello-work')).toEqual([]);
    const { serials: paged } = await allPages(aoyama, `agencyId=${PENSION}&limit=2`);
    expect(paged).toEqual(['late', 'jul2', 'jul1', 'may', 'apr1', 'mar'].map((k) => serials[k]));
  });

  it('refuses each wrong parameter with 400 naming it, and a caller who is not a citizen with 401; nothing is appended', async () => {
    const head = await hub.head();
    const refused = async (q: string, field: string, message?: RegExp) => {
      const problem = expectProblem(await hub.get(`/v1/citizens/me/provision-records${q}`, bearer(aoyama.citizenSecret)), 400, 'VALIDATION_FAILED');
      expect(problem['errors'], q).toEqual([{ field, message: message === undefined ? expect.any(String) : expect.stringMatching(message) }]);
    };
    await refused('?from=2026-02-30T00:00:00Z', 'from', /^has day 30; 2026-02 has days 01 to 28$/);
    await refused('?to=tomorrow', 'to', /^must be an RFC 3339 date and time/);
    await refused('?from=2026-05-01T00:00:00Z&to=2026-04-01T00:00:00Z', 'to', /^must be after from/);
    await refused('?from=2026-05-01T00:00:00Z&to=2026-05-01T00:00:00Z', 'to', /^must be after from/);
    await refused('?limit=0', 'limit', /^must be an integer from 1 to 1000$/);
    await refused('?limit=1001', 'limit', /^must be an integer from 1 to 1000$/);
    await refused('?after=2026', 'after', /^must be the `next` value of the previous page, unchanged$/);
    await refused('?agencyId=Muroran%20City', 'agencyId', /^must be an agency id/);
    await refused('?agencyId=a&agencyId=b', 'agencyId', /given 2 times/);
    await refused('?role=provider', 'role', /^is not a known field$/);
    expectProblem(await hub.get('/v1/citizens/me/provision-records.csv?limit=5', bearer(aoyama.citizenSecret)), 400, 'VALIDATION_FAILED');
    expectProblem(await hub.get('/v1/citizens/me/statistics?to=2026-13-01T00:00:00Z', bearer(aoyama.citizenSecret)), 400, 'VALIDATION_FAILED');
    for (const path of ['/v1/citizens/me/provision-records', '/v1/citizens/me/provision-records.csv', '/v1/citizens/me/statistics']) {
      expectProblem(await hub.get(path), 401, 'UNAUTHENTICATED');
      expectProblem(await hub.get(path, bearer(pension.token)), 401, 'UNAUTHENTICATED');
    }
    // Nothing appended (a GET refusal is no command), but the checkpoints this test's jumping clock makes the hub sign.
    expect((await hub.store.readAll({ fromPosition: head })).filter((e) => e.type !== 'CheckpointSigned')).toEqual([]);
  });
});

describe('GET /v1/citizens/me/provision-records.csv', () => {
  it('is UTF-8 with a BOM, CRLF lines, a Japanese header row and RFC 4180 quoting, one line per record, newest first', async () => {
    const res = await csv();
    expect(res.headers['content-type']).toMatch(/^text\/csv; charset=utf-8/);
    expect(res.headers['content-disposition']).toMatch(/attachment; filename="provision-records\.csv"/);
    const bytes = res.rawPayload;
    expect([...bytes.subarray(0, 3)]).toEqual([0xef, 0xbb, 0xbf]);
    const text = bytes.subarray(3).toString('utf8');
    expect(text.endsWith('\r\n')).toBe(true);
    // Every line break is CRLF.
    expect(text.replaceAll('\r\n', '')).not.toMatch(/[\r\n]/);
    const lines = text.split('\r\n').slice(0, -1);
    expect(lines[0]).toBe('日時（日本時間）,処理通番,種別,照会機関,提供機関,事務手続,情報項目,結果');
    const json = (await records(aoyama, '?limit=1000')).records;
    expect(lines).toHaveLength(json.length + 1);
    expect(lines.slice(1).map((l) => l.split(',')[1])).toEqual(json.map((r) => r.serial));
    // The agency name with a comma and quotes is quoted, its quotes doubled.
    expect(lines).toContain(`2026-04-15 12:00:00,${serials['apr2']},情報照会,"札幌市 ""子育て支援課"", 本庁",${MURORAN_CITY} (test),児童手当の支給に関する事務,地方税関係情報,提供済み`);
    expect(lines.find((l) => l.includes(serials['may']!))).toMatch(/,提供機関が提供せず$/);
  });

  it('takes the same filters; an empty period is the header alone', async () => {
    const lines = (await csv(`?agencyId=${SAPPORO_CITY}`)).rawPayload.subarray(3).toString('utf8').split('\r\n');
    expect(lines.slice(1, -1).map((l) => l.match(/,(\d{20}),/)![1])).toEqual([serials['jun'], serials['apr2']]);
    expect((await csv('?from=2026-01-01T00:00:00Z&to=2026-02-01T00:00:00Z')).rawPayload.toString('utf8')).toBe('\ufeff日時（日本時間）,処理通番,種別,照会機関,提供機関,事務手続,情報項目,結果\r\n');
  });
});

describe('GET /v1/citizens/me/statistics', () => {
  it('counts per Japan-time month and outcome, oldest first, months with none omitted; from and to narrow it', async () => {
    const res = await hub.get('/v1/citizens/me/statistics', bearer(aoyama.citizenSecret));
    expect(res.statusCode, res.body).toBe(200);
    expect(res.json()).toEqual({
      months: [
        { month: '2026-03', total: 1, byOutcome: { answered: 1 } },
        { month: '2026-04', total: 2, byOutcome: { answered: 2 } },
        { month: '2026-05', total: 1, byOutcome: { 'refused-by-provider': 1 } },
        { month: '2026-06', total: 1, byOutcome: { answered: 1 } },
        { month: '2026-07', total: 2, byOutcome: { answered: 2 } },
        { month: '2026-08', total: 1, byOutcome: { answered: 1 } },
      ],
    });
    const spring = await hub.get('/v1/citizens/me/statistics?from=2026-04-01T00:00:00%2B09:00&to=2026-06-01T00:00:00%2B09:00', bearer(aoyama.citizenSecret));
    expect(spring.json()).toEqual({ months: [{ month: '2026-04', total: 2, byOutcome: { answered: 2 } }, { month: '2026-05', total: 1, byOutcome: { 'refused-by-provider': 1 } }] });
    expect((await hub.get('/v1/citizens/me/statistics', bearer(kato.citizenSecret))).json()).toEqual({ months: [{ month: '2026-07', total: 1, byOutcome: { 'refused-by-provider': 1 } }] });
  });
});

describe('a self-information request (自己情報表示) of the citizen, as the hub records it', () => {
  it('is in her records as kind self-information with no requester, in the CSV with 本人 as who asked, and counted', async () => {
    now = new Date('2026-08-03T00:00:00.000Z');
    const browser = await generateAnswerKeyPair();
    const res = await hub.post('/v1/citizens/me/self-information-requests', { providerAgencyId: MURORAN_CITY, itemCode: 'local-tax', answerPublicKey: browser.publicKey }, bearer(aoyama.citizenSecret));
    expect(res.statusCode, res.body).toBe(200);
    const { serial } = res.json<{ serial: string }>();
    serials['self'] = serial;
    const [newest] = (await records(aoyama, '?limit=1')).records;
    expect(newest).toEqual({
      serial,
      at: '2026-08-03T00:00:00.000Z',
      date: '2026-08-03',
      time: '09:00:00',
      kind: 'self-information',
      requester: null,
      provider: { agencyId: MURORAN_CITY, name: `${MURORAN_CITY} (test)` },
      procedure: { code: 'self-information', name: '自己情報表示' },
      items: [{ code: 'local-tax', name: '地方税関係情報' }],
      outcome: 'answered',
    });
    expect((await records(aoyama, `?agencyId=${MURORAN_CITY}&limit=1`)).records[0]!.serial).toBe(serial);
    expect((await records(aoyama, `?agencyId=${PENSION}`)).records.map((r) => r.serial)).not.toContain(serial);
    const lines = (await csv()).rawPayload.subarray(3).toString('utf8').split('\r\n');
    expect(lines[1]).toBe(`2026-08-03 09:00:00,${serial},自己情報表示,本人,${MURORAN_CITY} (test),自己情報表示,地方税関係情報,提供済み`);
    const stats = (await hub.get('/v1/citizens/me/statistics?from=2026-08-01T00:00:00%2B09:00', bearer(aoyama.citizenSecret))).json();
    expect(stats).toEqual({ months: [{ month: '2026-08', total: 2, byOutcome: { answered: 2 } }] });
    // The provider's agency records hold it too, with no requester.
    const provided = (await hub.get('/v1/agencies/me/provision-records?role=provider&limit=1', bearer(muroran.token))).json<{ records: unknown[] }>().records;
    expect(provided[0]).toMatchObject({ serial, kind: 'self-information', requester: null, role: 'provider', status: 'answered' });
  });
});

describe('I8: the citizen views after the projections are dropped and rebuilt from the log', () => {
  it('answer the same records, pages, CSV bytes and counts', async () => {
    const views = async (target: TestHub) => ({
      whole: await records(aoyama, '?limit=1000', target),
      page: await records(aoyama, `?limit=2&agencyId=${PENSION}`, target),
      csv: (await csv('', target)).rawPayload.toString('base64'),
      stats: (await target.get('/v1/citizens/me/statistics', bearer(aoyama.citizenSecret))).json(),
      kato: await records(kato, '', target),
    });
    const before = await views(hub);
    expect(before.whole.records.length).toBe(9);
    await hub.close();
    rmSync(join(hub.dataDir, PROJECTIONS_FILE), { force: true });
    rmSync(join(hub.dataDir, NOTICE_INBOX_FILE), { force: true });
    const again = await startLinkageHub({ dataDir: hub.dataDir, clock: () => now, env: { ...TABLE_V1, HUB_REDIS_PREFIX: hub.config.linkage.redisPrefix! } });
    try {
      expect(await views(again)).toEqual(before);
    } finally {
      await again.close();
    }
  });
});
