import { describe, expect, test } from 'vitest';
import { decideRateLimitedRecord, rateLimitedStreamId, type RateLimitedRequestsRecordedData } from '#linkage';
import { inMemorySealer } from '#sealing';
import { schemaValidator } from '../../../test/support/json-schema.js';

const validate = schemaValidator('schemas/events/rate-limited-requests-recorded.v1.json', ['schemas/events/sealed-section.v1.json']);
const sealer = inMemorySealer();
const base = { recordId: 'r-1', intervalStart: '2026-12-01T00:00:00.000Z', intervalEnd: '2026-12-01T00:01:00.000Z', count: 40, principals: 2, commands: { SubmitQuery: 39, 'RecordsController.statistics': 1 } } as const;

/** Decides, seals as the hub does before appending, and checks the stored form against the schema. */
function stored(d: RateLimitedRequestsRecordedData): Record<string, unknown> {
  const [event] = decideRateLimitedRecord(d);
  expect(event).toMatchObject({ type: 'RateLimitedRequestsRecorded', schemaVersion: 1, terminal: 'denied' });
  const sealed = sealer.seal(rateLimitedStreamId(d.recordId), event!);
  expect(validate(sealed.data).errors).toBe('No errors');
  return sealed.data as Record<string, unknown>;
}

describe('RateLimitedRequestsRecorded: one event per kind of principal and interval (issue 15 item 2, I6, I10)', () => {
  test('agencies are named in clear with their counts', () => {
    const data = stored({ ...base, principalKind: 'agency', agencies: { 'jpn-pension-service': 39, 'muroran-city': 1 } });
    expect(data).toMatchObject({ principalKind: 'agency', agencies: { 'jpn-pension-service': 39, 'muroran-city': 1 } });
  });

  test('sources are sealed for the hub: no address in the stored text', () => {
    const data = stored({ ...base, principalKind: 'source', sources: { '203.0.113.9': 39, '2001:db8::1': 1 } });
    expect(data).not.toHaveProperty('sources');
    expect(JSON.stringify(data)).not.toContain('203.0.113.9');
    expect(JSON.stringify(data)).not.toContain('2001:db8::1');
  });

  test('citizens are counted, never named', () => {
    expect(stored({ ...base, principalKind: 'citizen' })).toMatchObject({ principalKind: 'citizen', count: 40, principals: 2 });
    expect(() => decideRateLimitedRecord({ ...base, principalKind: 'citizen', sources: { 'subject-1': 1 } })).toThrow(/named only in the source record|never named/);
    expect(() => decideRateLimitedRecord({ ...base, principalKind: 'citizen', agencies: { 'jpn-pension-service': 1 } })).toThrow(/agencies are named only/);
  });

  test('malformed records are refused: no count, a bad kind, a command that is not a name, addresses in an agency record', () => {
    expect(() => decideRateLimitedRecord({ ...base, principalKind: 'agency', count: 0 })).toThrow(/count and principals/);
    expect(() => decideRateLimitedRecord({ ...base, principalKind: 'nobody' as 'agency' })).toThrow(/principalKind/);
    expect(() => decideRateLimitedRecord({ ...base, principalKind: 'agency', commands: { 'GET /v1/x': 1 } })).toThrow(/not a command name/);
    expect(() => decideRateLimitedRecord({ ...base, principalKind: 'agency', agencies: { '203.0.113.9': 1 } })).toThrow(/by agency id/);
    expect(() => decideRateLimitedRecord({ ...base, principalKind: 'agency', intervalEnd: 'yesterday' })).toThrow();
  });
});
