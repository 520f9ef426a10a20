import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { corporateNumberFromBase } from '#numbering';
import { SqliteCorporateRegistry, rebuild } from '#projections';
import { expectProblem } from './support/problem-assertions.js';
import { REFUSAL_TYPES, startTestHub, type TestHub } from './support/test-hub.js';

// 商号・所在地の変更 and 閉鎖 of corporate numbers: operator commands, each an event with a serial of its own;
// the public registry shows the current name and location, the status, the closure and the change history.

interface Change {
  name?: { previous: string; current: string };
  location?: { previous: string; current: string };
  reason: string;
  effectiveOn: string;
  changedAt: string;
}
interface Corporation {
  corporateNumber: string;
  name: string;
  location: string;
  kind: string;
  designatedAt: string;
  status: 'active' | 'closed';
  closedOn: string | null;
  closedAt: string | null;
  closeReason: string | null;
  history: Change[];
  kindLabel?: string;
}

/** The hub's clock, moved by the tests: designations on 2026-04-01 (Japan time), changes later. */
let now = new Date('2026-04-01T00:00:00.000Z');
const at = (iso: string) => {
  now = new Date(iso);
};

const RENAMED = corporateNumberFromBase('430002000001');
const MOVED = corporateNumberFromBase('430002000002');
const CLOSED = corporateNumberFromBase('430002000003');
const UNTOUCHED = corporateNumberFromBase('430002000004');
const NEVER = corporateNumberFromBase('430002099999');

/** The events appended from `head`, without the checkpoints the moved clock makes due. */
async function appendedSince(hub: TestHub, head: number) {
  return (await hub.store.readAll({ fromPosition: head })).filter((e) => e.type !== 'CheckpointSigned');
}

/** Nothing but refusal events appended from `head` (checkpoints aside), at most `max`. */
async function expectNothingButRefusals(hub: TestHub, head: number, max = Number.MAX_SAFE_INTEGER) {
  const events = await appendedSince(hub, head);
  for (const e of events) expect(REFUSAL_TYPES).toContain(e.type);
  expect(events.length).toBeLessThanOrEqual(max);
  return events;
}

describe('changes of name or location and closures of corporate numbers', () => {
  let hub: TestHub;
  const changes = (n: string) => `/v1/corporate-numbers/${n}/changes`;
  const closures = (n: string) => `/v1/corporate-numbers/${n}/closures`;
  const lookup = async (n: string): Promise<Corporation> => {
    const res = await hub.get(`/v1/corporate-numbers/${n}`);
    expect(res.statusCode, res.body).toBe(200);
    return res.json<Corporation>();
  };
  const search = async (query: string): Promise<Corporation[]> => {
    const res = await hub.get(`/v1/corporate-numbers?${query}`);
    expect(res.statusCode, res.body).toBe(200);
    return res.json<{ corporations: Corporation[] }>().corporations;
  };

  beforeAll(async () => {
    hub = await startTestHub({ clock: () => now, env: { HUB_CHECKPOINT_EVERY_EVENTS: '1000000', HUB_CHECKPOINT_EVERY_MS: '86400000' } });
    const companies = [
      { registryNumber: '430002000001', name: '株式会社室蘭製作所', location: '北海道室蘭市幸町1番2号', kind: 'stock-company' },
      { registryNumber: '430002000002', name: '登別ソフト合同会社', location: '北海道登別市中央町1丁目', kind: 'llc' },
      { registryNumber: '430002000003', name: '伊達商事株式会社', location: '北海道伊達市末永町', kind: 'stock-company' },
      { registryNumber: '430002000004', name: '苫小牧港湾有限会社', location: '北海道苫小牧市港町', kind: 'limited-company' },
    ];
    for (const c of companies) expect((await hub.post('/v1/corporate-numbers', c, hub.operator)).statusCode).toBe(201);
  });
  afterAll(async () => {
    await hub.dispose();
  });

  it('records a change of name as an event of its own serial; the lookup shows the current name and the history', async () => {
    at('2026-06-02T01:00:00.000Z');
    const head = await hub.head();
    const res = await hub.post(changes(RENAMED), { name: '株式会社むろらん', reason: '商号変更', effectiveOn: '2026-06-01' }, { ...hub.operator, 'idempotency-key': 'rename-1' });
    expect(res.statusCode, res.body).toBe(201);
    const body = res.json<{ serial: string }>();
    expect(body).toEqual({
      serial: expect.stringMatching(/^\d{8}01\d{10}$/),
      corporateNumber: RENAMED,
      name: '株式会社むろらん',
      location: '北海道室蘭市幸町1番2号',
      changed: ['name'],
      effectiveOn: '2026-06-01',
      changedAt: '2026-06-02T01:00:00.000Z',
    });
    const appended = await appendedSince(hub, head);
    expect(appended.map((e) => [e.type, e.serial, e.terminal])).toEqual([['CorporateNumberChanged', body.serial, 'completed']]);
    expect(appended[0]).toMatchObject({ streamId: `corporate-number-${RENAMED}`, metadata: { actor: 'operator:nta' } });
    expect(appended[0]!.data).toEqual({
      corporateNumber: RENAMED,
      name: { previous: '株式会社室蘭製作所', current: '株式会社むろらん' },
      reason: '商号変更',
      effectiveOn: '2026-06-01',
      changedAt: '2026-06-02T01:00:00.000Z',
    });

    // A retry with the same key answers the first outcome and appends nothing.
    const retry = await hub.post(changes(RENAMED), { name: '株式会社むろらん', reason: '商号変更', effectiveOn: '2026-06-01' }, { ...hub.operator, 'idempotency-key': 'rename-1' });
    expect(retry.statusCode).toBe(201);
    expect(retry.json()).toEqual(body);
    expect(retry.headers['idempotent-replayed']).toBe('true');
    expect(await appendedSince(hub, head)).toHaveLength(1);

    expect(await lookup(RENAMED)).toEqual({
      corporateNumber: RENAMED,
      name: '株式会社むろらん',
      location: '北海道室蘭市幸町1番2号',
      kind: 'stock-company',
      designatedAt: '2026-04-01T00:00:00.000Z',
      status: 'active',
      closedOn: null,
      closedAt: null,
      closeReason: null,
      history: [{ name: { previous: '株式会社室蘭製作所', current: '株式会社むろらん' }, reason: '商号変更', effectiveOn: '2026-06-01', changedAt: '2026-06-02T01:00:00.000Z' }],
    });
  });

  it('changes the location, then both; the history lists every change oldest first', async () => {
    at('2026-07-01T03:00:00.000Z');
    const moved = await hub.post(changes(MOVED), { location: '北海道札幌市中央区北1条西2丁目', reason: '本店移転', effectiveOn: '2026-07-01' }, hub.operator);
    expect(moved.statusCode, moved.body).toBe(201);
    expect(moved.json()).toMatchObject({ name: '登別ソフト合同会社', location: '北海道札幌市中央区北1条西2丁目', changed: ['location'] });
    at('2026-08-01T03:00:00.000Z');
    // The unchanged name given beside the new one is left out.
    const both = await hub.post(changes(MOVED), { name: '札幌ソフト合同会社', location: '北海道札幌市北区北7条西5丁目', reason: '商号変更及び本店移転', effectiveOn: '2026-07-31' }, hub.operator);
    expect(both.statusCode, both.body).toBe(201);
    expect(both.json()).toMatchObject({ changed: ['name', 'location'] });
    const record = await lookup(MOVED);
    expect(record).toMatchObject({ name: '札幌ソフト合同会社', location: '北海道札幌市北区北7条西5丁目', status: 'active' });
    expect(record.history).toEqual([
      { location: { previous: '北海道登別市中央町1丁目', current: '北海道札幌市中央区北1条西2丁目' }, reason: '本店移転', effectiveOn: '2026-07-01', changedAt: '2026-07-01T03:00:00.000Z' },
      {
        name: { previous: '登別ソフト合同会社', current: '札幌ソフト合同会社' },
        location: { previous: '北海道札幌市中央区北1条西2丁目', current: '北海道札幌市北区北7条西5丁目' },
        reason: '商号変更及び本店移転',
        effectiveOn: '2026-07-31',
        changedAt: '2026-08-01T03:00:00.000Z',
      },
    ]);
  });

  it('records a closure; the number stays public with status closed and takes no further change or closure', async () => {
    at('2026-10-01T02:00:00.000Z');
    const head = await hub.head();
    const res = await hub.post(closures(CLOSED), { reason: '清算の結了', closedOn: '2026-09-30' }, hub.operator);
    expect(res.statusCode, res.body).toBe(201);
    const body = res.json<{ serial: string }>();
    expect(body).toEqual({ serial: expect.any(String), corporateNumber: CLOSED, closedOn: '2026-09-30', closedAt: '2026-10-01T02:00:00.000Z' });
    const appended = await appendedSince(hub, head);
    expect(appended.map((e) => [e.type, e.serial, e.terminal])).toEqual([['CorporateNumberClosed', body.serial, 'completed']]);
    expect(await lookup(CLOSED)).toMatchObject({ name: '伊達商事株式会社', status: 'closed', closedOn: '2026-09-30', closedAt: '2026-10-01T02:00:00.000Z', closeReason: '清算の結了', history: [] });
    // Found by search too, closed.
    expect(await search(`name=${encodeURIComponent('伊達商事')}`)).toEqual([expect.objectContaining({ corporateNumber: CLOSED, status: 'closed', closedOn: '2026-09-30' })]);
  });

  it('finds a corporation by its current and its former names; the location matches the current one', async () => {
    const numbers = async (q: string) => (await search(q)).map((c) => c.corporateNumber);
    expect(await numbers(`name=${encodeURIComponent('室蘭製作所')}`)).toEqual([RENAMED]); // the former name
    expect(await numbers(`name=${encodeURIComponent('ムロラン')}`)).toEqual([]); // folding keeps hiragana and katakana apart
    expect(await numbers(`name=${encodeURIComponent('むろらん')}`)).toEqual([RENAMED]); // the current name
    expect(await numbers(`name=${encodeURIComponent('登別ソフト')}`)).toEqual([MOVED]);
    expect(await numbers(`name=${encodeURIComponent('札幌ｿﾌﾄ')}`)).toEqual([MOVED]);
    expect(await numbers(`location=${encodeURIComponent('北海道札幌市')}`)).toEqual([MOVED]);
    expect(await numbers(`location=${encodeURIComponent('北海道登別市')}`)).toEqual([]);
    const [found] = await search(`name=${encodeURIComponent('室蘭製作所')}`);
    expect(found).toMatchObject({ name: '株式会社むろらん', kindLabel: '株式会社', history: [expect.objectContaining({ reason: '商号変更' })] });
  });

  it('downloads the CSV with the status, the closure and the latest change', async () => {
    const res = await hub.get('/v1/corporate-numbers.csv');
    expect(res.statusCode).toBe(200);
    const lines = res.body.split('\r\n');
    expect(lines[0]).toBe('corporate_number,name,location,kind,kind_label,designated_at,status,closed_on,close_reason,latest_change_on,latest_change_reason');
    const line = (n: string) => lines.find((l) => l.startsWith(`${n},`));
    expect(line(RENAMED)).toBe(`${RENAMED},株式会社むろらん,北海道室蘭市幸町1番2号,stock-company,株式会社,2026-04-01T00:00:00.000Z,active,,,2026-06-01,商号変更`);
    expect(line(MOVED)).toBe(`${MOVED},札幌ソフト合同会社,北海道札幌市北区北7条西5丁目,llc,合同会社,2026-04-01T00:00:00.000Z,active,,,2026-07-31,商号変更及び本店移転`);
    expect(line(CLOSED)).toBe(`${CLOSED},伊達商事株式会社,北海道伊達市末永町,stock-company,株式会社,2026-04-01T00:00:00.000Z,closed,2026-09-30,清算の結了,,`);
    expect(line(UNTOUCHED)).toBe(`${UNTOUCHED},苫小牧港湾有限会社,北海道苫小牧市港町,limited-company,有限会社,2026-04-01T00:00:00.000Z,active,,,,`);
    // Searching by a former name in the CSV as well.
    const former = await hub.get(`/v1/corporate-numbers.csv?name=${encodeURIComponent('登別ソフト')}`);
    expect(former.body.split('\r\n').slice(1, -1).map((l) => l.slice(0, 13))).toEqual([MOVED]);
  });

  describe('refusals: precise problem+json, each recorded as exactly one RequestRefused of the operator', () => {
    const refused = async (path: string, body: unknown, status: number, code: string, command: string, headers: Record<string, string> = hub.operator) => {
      const head = await hub.head();
      const res = await hub.post(path, body, headers);
      const problem = expectProblem(res, status, code);
      const events = await expectNothingButRefusals(hub, head, 1);
      expect(events).toHaveLength(1);
      const [refusal] = events;
      expect(refusal).toMatchObject({ type: 'RequestRefused', serial: problem['serial'], data: { reason: code, command, callerKind: 'operator' } });
      return { problem, refusal: refusal! };
    };

    it('an invalid body: 400 VALIDATION_FAILED naming each field, never its value', async () => {
      at('2026-10-02T00:00:00.000Z');
      const { problem, refusal } = await refused(changes(UNTOUCHED), { name: '株式会社\n苫小牧', reason: '', effectiveOn: '2026-02-30' }, 400, 'VALIDATION_FAILED', 'ChangeCorporateNumber');
      expect((problem['errors'] as { field: string }[]).map((e) => e.field).sort()).toEqual(['effectiveOn', 'name', 'reason']);
      expect(JSON.stringify(refusal.data)).not.toContain('苫小牧');
      const closing = await refused(closures(UNTOUCHED), { reason: '清算\u0007', closedOn: '2026/09/30' }, 400, 'VALIDATION_FAILED', 'CloseCorporateNumber');
      expect((closing.problem['errors'] as { field: string }[]).map((e) => e.field).sort()).toEqual(['closedOn', 'reason']);
    });

    it('a change of nothing: 400 NOTHING_TO_UPDATE (no field, or the values it already has)', async () => {
      await refused(changes(UNTOUCHED), { reason: '変更', effectiveOn: '2026-10-01' }, 400, 'NOTHING_TO_UPDATE', 'ChangeCorporateNumber');
      await refused(changes(UNTOUCHED), { name: '苫小牧港湾有限会社', reason: '変更', effectiveOn: '2026-10-01' }, 400, 'NOTHING_TO_UPDATE', 'ChangeCorporateNumber');
    });

    it('an impossible day: 422 INVALID_EFFECTIVE_DATE (before the designation, before the latest change, after today in Japan time)', async () => {
      const before = await refused(changes(UNTOUCHED), { location: '北海道苫小牧市表町', reason: '本店移転', effectiveOn: '2026-03-31' }, 422, 'INVALID_EFFECTIVE_DATE', 'ChangeCorporateNumber');
      expect(before.problem['detail']).toMatch(/before the designation on 2026-04-01/);
      const order = await refused(changes(MOVED), { name: '旭川ソフト合同会社', reason: '商号変更', effectiveOn: '2026-07-30' }, 422, 'INVALID_EFFECTIVE_DATE', 'ChangeCorporateNumber');
      expect(order.problem['detail']).toMatch(/before the latest change, effective on 2026-07-31/);
      const future = await refused(closures(UNTOUCHED), { reason: '清算の結了', closedOn: '2026-10-03' }, 422, 'INVALID_EFFECTIVE_DATE', 'CloseCorporateNumber');
      expect(future.problem['detail']).toMatch(/after today \(2026-10-02, Japan time\)/);
    });

    it('a closed record: 409 CORPORATE_NUMBER_CLOSED for a change and for a second closure', async () => {
      await refused(changes(CLOSED), { name: '伊達新商事株式会社', reason: '商号変更', effectiveOn: '2026-10-01' }, 409, 'CORPORATE_NUMBER_CLOSED', 'ChangeCorporateNumber');
      await refused(closures(CLOSED), { reason: '清算の結了', closedOn: '2026-10-01' }, 409, 'CORPORATE_NUMBER_CLOSED', 'CloseCorporateNumber');
    });

    it('a number never designated: 404 CORPORATE_NUMBER_NOT_FOUND; a wrong check digit: 422 CHECK_DIGIT_MISMATCH with both digits', async () => {
      await refused(changes(NEVER), { name: '株式会社なし', reason: '商号変更', effectiveOn: '2026-10-01' }, 404, 'CORPORATE_NUMBER_NOT_FOUND', 'ChangeCorporateNumber');
      await refused(closures(NEVER), { reason: '清算の結了', closedOn: '2026-10-01' }, 404, 'CORPORATE_NUMBER_NOT_FOUND', 'CloseCorporateNumber');
      const wrong = `${(Number(UNTOUCHED[0]) % 9) + 1}${UNTOUCHED.slice(1)}`;
      const { problem } = await refused(closures(wrong), { reason: '清算の結了', closedOn: '2026-10-01' }, 422, 'CHECK_DIGIT_MISMATCH', 'CloseCorporateNumber');
      expect(problem).toMatchObject({ expected: Number(UNTOUCHED[0]), actual: (Number(UNTOUCHED[0]) % 9) + 1 });
    });

    it('another principal: 403 FORBIDDEN, one refusal event; no credential: 401 and no event of its own', async () => {
      let head = await hub.head();
      expectProblem(await hub.post(changes(UNTOUCHED), { name: '株式会社X', reason: '商号変更', effectiveOn: '2026-10-01' }, hub.auditor), 403, 'FORBIDDEN');
      const [refusal] = await expectNothingButRefusals(hub, head, 1);
      expect(refusal).toMatchObject({ type: 'RequestRefused', data: { reason: 'FORBIDDEN', command: 'ChangeCorporateNumber' } });
      head = await hub.head();
      expectProblem(await hub.post(closures(UNTOUCHED), { reason: '清算の結了', closedOn: '2026-10-01' }, {}), 401, 'UNAUTHENTICATED');
      await expectNothingButRefusals(hub, head);
      expect((await lookup(UNTOUCHED)).status).toBe('active');
    });
  });

  it('I8: the registry rebuilt from the log equals the live one, history and closures included', async () => {
    const live = await hub.get('/v1/corporate-numbers?limit=1000');
    const dir = mkdtempSync(join(tmpdir(), 'registry-changes-'));
    const rebuilt = new SqliteCorporateRegistry({ path: join(dir, 'registry.sqlite') });
    try {
      await rebuild(hub.store, rebuilt);
      expect(await rebuilt.search({ limit: 1000 })).toEqual(live.json());
      const statuses = Object.fromEntries(live.json<{ corporations: Corporation[] }>().corporations.map((c) => [c.corporateNumber, c.status]));
      expect(statuses).toEqual({ [RENAMED]: 'active', [MOVED]: 'active', [CLOSED]: 'closed', [UNTOUCHED]: 'active' });
      expect(await rebuilt.search({ name: '室蘭製作所' })).toMatchObject({ corporations: [{ corporateNumber: RENAMED }] });
      const liveFile = new SqliteCorporateRegistry({ path: join(hub.config.dataDir, 'corporate-registry.sqlite'), readonly: true });
      try {
        expect(await rebuilt.digest()).toEqual(await liveFile.digest());
      } finally {
        await liveFile.close();
      }
    } finally {
      await rebuilt.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
