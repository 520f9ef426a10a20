import { afterAll, describe, expect, it } from 'vitest';
import { canonicalEnvelope, type EventId, type RecordedEvent, type SerialNumber } from '#ledger';
import { ChunkWorkers } from '../src/verify/chunk-worker.js';

const workers = new ChunkWorkers(1);
afterAll(() => workers.close());

const LAWFUL = {
  acceptedAt: '2026-11-22T01:00:00.000Z',
  itemCodes: ['local-tax', 'resident-record'],
  procedureCode: 'child-allowance',
  providerAgencyId: 'sapporo-city',
  providerKind: 'municipality',
  queryId: 'q-1',
  requesterAgencyId: 'muroran-city',
  requesterCodeDigest: 'ab'.repeat(32),
  requesterKind: 'municipality',
  subjectId: '0194f7a2-0000-7000-8000-000000000001',
  tableVersion: 1,
};

/** A QueryAccepted of schema version 2 as the hub stores it: the subject and the requester's code sealed. */
const { subjectId: _subject, requesterCodeDigest: _digest, ...CLEAR } = LAWFUL;
const V2 = {
  ...CLEAR,
  sealed: { box: 'b_tkbugmTvJAgUWJjJUIfoy0YJlv1QgB4tiQBbaGaYsfpgjRjYSGouu5l5TWb76KmOiFne9vs3fyMzmhYKdx70kdsOk', commitments: { requesterCode: 'lp1KzC2rXXBj-lmtJr2lcOga3tuT2uzYjXeeqmzFa8w', subjectId: 'mHmD4Z007y0RdvJR5zlI1ytbZs0thDLSF2EsCw4Y5C4' }, keyRef: 'dYmMe2Oxu7jlHWuMUbcGRjuk4g', nonce: 'zoNXyW0s0UqAOatM9_avIQ', v: 1 },
};

const envelope = (data: unknown, o: { schemaVersion?: number; streamId?: string; metadata?: unknown } = {}): string =>
  canonicalEnvelope({
    eventId: '0194f7a2-0000-7000-8000-000000000042' as EventId,
    type: 'QueryAccepted',
    schemaVersion: o.schemaVersion ?? 1,
    streamId: o.streamId ?? 'query-q1',
    streamRevision: 0,
    position: 0,
    serial: '20261122010000000001' as SerialNumber,
    recordedAt: '2026-11-22T01:00:00.000Z',
    data,
    metadata: o.metadata ?? { actor: 'agency:muroran-city', correlationId: 'c-1' },
  } as unknown as RecordedEvent);

/** What every other reader of the log reads: JSON.parse of the envelope, its clear fields. */
function reference(text: string): { shape: string; atMs: number } {
  const d = (JSON.parse(text) as { schemaVersion: number; data: Record<string, unknown> }).data;
  const schemaVersion = (JSON.parse(text) as { schemaVersion: number }).schemaVersion;
  return { shape: JSON.stringify([schemaVersion, d['tableVersion'], d['requesterKind'], d['procedureCode'], d['providerKind'], d['itemCodes']]), atMs: typeof d['acceptedAt'] === 'string' ? Date.parse(d['acceptedAt']) : NaN };
}

async function read(text: string): Promise<{ shape: string; atMs: number }> {
  const r = await workers.run({ kind: 'texts', from: 0, texts: text });
  expect(r.findings).toEqual([]);
  expect(r.queries.count).toBe(1);
  return { shape: r.queries.shapes[r.queries.shapeOf[0]!]!, atMs: r.queries.atMs[0]! };
}

describe('the clear fields of a QueryAccepted, as the hashing workers read them', () => {
  it('equal what JSON.parse reads, in the canonical form the hub writes and in every other', async () => {
    const texts = [
      envelope(LAWFUL),
      envelope({ ...LAWFUL, batch: { batchId: 'batch-2026-07', index: 2, size: 3 } }),
      envelope({ ...LAWFUL, sealed: { ciphertext: 'x'.repeat(60), nested: { requesterKind: 'jasso', eventId: 'z' } } }, { schemaVersion: 2 }),
      envelope(V2, { schemaVersion: 2 }),
      envelope({ ...V2, batch: { batchId: 'b-1', index: 0, size: 2 }, sealed: { ...V2.sealed, commitments: { ...V2.sealed.commitments, requesterKind: 'jasso' } } }, { schemaVersion: 2 }),
      envelope({ ...LAWFUL, queryId: 'q-"quoted"\\', procedureCode: 'child-allowance' }),
      envelope({ ...LAWFUL, providerKind: 'pension-service', itemCodes: ['pension-enrollment'], tableVersion: 12 }),
      envelope({ ...LAWFUL, note: 'an unknown key' }),
      envelope({ ...LAWFUL, tableVersion: '1', itemCodes: [] }),
      envelope(LAWFUL, { streamId: 'query-\\q1', metadata: { actor: 'a', nested: { data: { requesterKind: 'jasso' } } } }),
    ];
    for (const text of texts) expect(await read(text), text).toEqual(reference(text));
  });

  it('read the data JSON.parse reads when a key is repeated, wherever the repeat is', async () => {
    const canonical = envelope(LAWFUL);
    const evil = JSON.stringify({ ...LAWFUL, providerKind: 'jasso' });
    const forged = [
      canonical.replace(',"position":', `,"data":${evil},"position":`),
      canonical.replace(',"metadata":', `,"data":${evil},"metadata":`),
      canonical.replace('"correlationId":"c-1"}', `"correlationId":"c-1"},"data":${evil}`),
    ];
    for (const text of forged) {
      expect(text).not.toBe(canonical);
      expect(reference(text).shape).toContain('"jasso"');
      expect(await read(text), text).toEqual(reference(text));
    }
  });

  it('find an envelope that is not JSON unreadable, however canonical its data looks', async () => {
    const text = envelope(LAWFUL).replace('"streamId":"query-q1"', '"streamId":"query-\tq1"');
    expect(() => JSON.parse(text)).toThrow(SyntaxError);
    expect(await read(text)).toEqual({ shape: '!the envelope is not JSON', atMs: NaN });
  });
});
