import { describe, expect, it } from 'vitest';
import { CITIZEN_CSV_HEADER, CSV_BOM, citizenCsvLine, type CitizenRecord } from '#projections';

const record = (over: Partial<CitizenRecord> = {}): CitizenRecord => ({
  serial: '20260401010000000007',
  at: '2026-03-31T15:00:00.000Z',
  date: '2026-04-01',
  time: '00:00:00',
  kind: 'query',
  requester: { agencyId: 'jpn-pension-service', name: '日本年金機構' },
  provider: { agencyId: 'muroran-city', name: '室蘭市' },
  procedure: { code: 'pension-award-claim', name: '年金の裁定請求に関する事務' },
  items: [{ code: 'local-tax', name: '地方税関係情報' }, { code: 'resident-record', name: '住民票関係情報' }],
  outcome: 'answered',
  ...over,
});

describe('a citizen\'s provision records as CSV (RFC 4180)', () => {
  it('has a Japanese header row and one CRLF line per record, items joined, outcome and kind in Japanese', () => {
    expect(CSV_BOM).toBe('\ufeff');
    expect(CITIZEN_CSV_HEADER).toBe('日時（日本時間）,処理通番,種別,照会機関,提供機関,事務手続,情報項目,結果\r\n');
    expect(citizenCsvLine(record())).toBe('2026-04-01 00:00:00,20260401010000000007,情報照会,日本年金機構,室蘭市,年金の裁定請求に関する事務,地方税関係情報、住民票関係情報,提供済み\r\n');
  });

  it('quotes a field holding a comma, a quote or a line break, doubling its quotes', () => {
    const line = citizenCsvLine(record({ requester: { agencyId: 'x', name: 'A, "B"' }, provider: { agencyId: 'y', name: 'C\r\nD' }, procedure: { code: 'p', name: 'E\nF' } }));
    expect(line).toBe('2026-04-01 00:00:00,20260401010000000007,情報照会,"A, ""B""","C\r\nD","E\nF",地方税関係情報、住民票関係情報,提供済み\r\n');
  });

  it('names the person as requester of a self-information request, and falls back to codes for names the record lacks', () => {
    const line = citizenCsvLine(record({ kind: 'self-information', requester: null, provider: { agencyId: 'muroran-city', name: null }, procedure: { code: 'self-information', name: '自己情報表示' }, items: [{ code: 'local-tax', name: null }], outcome: 'denied' }));
    expect(line).toBe('2026-04-01 00:00:00,20260401010000000007,自己情報表示,本人,muroran-city,自己情報表示,local-tax,不許可\r\n');
  });

  it('labels a push (the subscriber told in the requester column, the provider whose copy changed) and its outcome', () => {
    const line = citizenCsvLine(record({ kind: 'push', requester: { agencyId: 'pension-service', name: '日本年金機構' }, provider: { agencyId: 'muroran-city', name: '室蘭市' }, procedure: { code: 'pension-award-claim', name: null }, items: [{ code: 'local-tax', name: null }], outcome: 'delivered' }));
    expect(line).toBe('2026-04-01 00:00:00,20260401010000000007,更新のお知らせ（プッシュ）,日本年金機構,室蘭市,pension-award-claim,local-tax,お知らせ済み\r\n');
    expect(citizenCsvLine(record({ kind: 'push', outcome: 'abandoned' }))).toContain(',お知らせできず\r\n');
  });
});
