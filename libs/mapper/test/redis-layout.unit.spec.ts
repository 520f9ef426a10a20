import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import { PERSON, RedisLayout, SUBJECT_RECORD_BYTES, allSubjectRecords, bucketBitsFor, codeRecord, hashTagOf, recordsUnderTag, slotChunks, subjectRecord, tagsInCodeBucket } from '#mapper';
import { agencyCodeFromRandomBytes } from '#linkage';

const layout = new RedisLayout({ prefix: 'lm', codeBucketBits: 14, subjectBucketBits: 12, slotGroupBits: 8 });

describe('RedisLayout', () => {
  test('a code is 16 bytes, a subject 16 bytes; both round-trip; malformed input has no bytes', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 16, maxLength: 16 }), fc.uuid({ version: 4 }), (b, uuid) => {
        const code = agencyCodeFromRandomBytes(b);
        expect(layout.codeOf(layout.codeBytes(code)!)).toBe(code);
        expect(layout.subjectOf(layout.subjectBytes(uuid)!)).toBe(uuid);
      }),
    );
    expect(layout.codeBytes('123456789018')).toBeUndefined();
    expect(layout.subjectBytes('not-a-uuid')).toBeUndefined();
  });

  test('the code bucket comes from the code\'s first bytes; its key carries the slot group as a hash tag', () => {
    const code = Buffer.from('00ff0102030405060708090a0b0c0d0e', 'hex');
    // bucket = 0x00ff mod 2^14 = 255; group = 255 mod 256 = 255 ("73" in base 36); rest = 0.
    expect(layout.codeBucketAt(code, 0)).toBe(255);
    expect(layout.address('c', 255)).toEqual({ key: 'lm:c{73}0', group: 255 });
    expect(layout.codeBucketAt(Buffer.from('ffff', 'hex'), 0)).toBe(0x3fff);
    expect(layout.bucketKey('s', 0x3fff)).toBe(`lm:s{73}${(0x3fff >>> 8).toString(36)}`);
  });

  test('buckets of one slot group share a hash tag (one cluster slot); groups spread over 2^slotGroupBits tags', () => {
    const tags = new Set<string>();
    for (let b = 0; b < 1 << 14; b += 97) {
      const { key, group } = layout.address('c', b);
      const tag = /\{([0-9a-z]+)\}/.exec(key)![1]!;
      expect(Number.parseInt(tag, 36)).toBe(group);
      tags.add(tag);
    }
    expect(tags.size).toBeGreaterThan(100);
  });

  test('a subject tag is 6 bytes (2 bucket bytes, 4 rest); a code record is 4 code bytes + the tag', () => {
    const subject = layout.subjectBytes('6f1c2a9e-3b7d-4c10-9e2a-5d8b7c6a4f30')!;
    const tag = layout.tagOf(subject);
    expect(tag).toHaveLength(6);
    const code = Buffer.from('00ff0102030405060708090a0b0c0d0e', 'hex');
    const record = codeRecord(code, layout.codeBucketBytes, tag);
    expect(record).toEqual(Buffer.concat([Buffer.from('01020304', 'hex'), tag]));
    const other = codeRecord(Buffer.from('00ff0102030499999999999999999999', 'hex'), layout.codeBucketBytes, Buffer.alloc(6, 7));
    const bucket = Buffer.concat([Buffer.from('0000000000000000000a', 'hex'), record, other]);
    expect(tagsInCodeBucket(bucket, layout.codeRecordBytes, code, layout.codeBucketBytes)).toEqual([14, 24]);
  });

  test('subject bucket records: a person, then their codes, found by tag rest, ordinal and index', () => {
    const rest = Buffer.from('a1b2c3d4', 'hex');
    const person = Buffer.alloc(16, 1);
    const code = Buffer.alloc(16, 2);
    const bucket = Buffer.concat([subjectRecord(rest, PERSON, 0, person), subjectRecord(rest, 300, 0, code), subjectRecord(Buffer.from('00000000', 'hex'), 1, 0, code)]);
    expect(bucket).toHaveLength(3 * SUBJECT_RECORD_BYTES);
    expect(recordsUnderTag(bucket, rest, 0)).toEqual([
      { ordinal: PERSON, index: 0, payloadAt: 8 },
      { ordinal: 300, index: 0, payloadAt: 32 },
    ]);
    expect(allSubjectRecords(bucket).map((r) => r.ordinal)).toEqual([PERSON, 300, 1]);
    expect(() => subjectRecord(rest, PERSON + 1, 0, code)).toThrow(expect.objectContaining({ code: 'TOO_MANY_AGENCIES' }));
    expect(() => subjectRecord(rest, 1, 256, code)).toThrow(expect.objectContaining({ code: 'TAG_OVERFLOW' }));
    expect(() => recordsUnderTag(Buffer.alloc(25), rest, 0)).toThrow(expect.objectContaining({ code: 'LAYOUT_MISMATCH' }));
  });

  test('bucket bits are sized for ≈ 16 codes per code bucket and ≈ 5 records per subject bucket', () => {
    expect(bucketBitsFor(1_000_000, 250_000)).toEqual({ codeBucketBits: 16, subjectBucketBits: 18 });
    expect(bucketBitsFor(10, 5)).toEqual({ codeBucketBits: 8, subjectBucketBits: 8 });
  });

  test('refuses a layout it cannot address', () => {
    expect(() => new RedisLayout({ prefix: 'lm*', codeBucketBits: 14, subjectBucketBits: 14, slotGroupBits: 8 })).toThrow(/glob/);
    expect(() => new RedisLayout({ prefix: 'lm', codeBucketBits: 25, subjectBucketBits: 14, slotGroupBits: 8 })).toThrow(/8 to 24/);
    expect(() => new RedisLayout({ prefix: 'lm', codeBucketBits: 9, subjectBucketBits: 9, slotGroupBits: 10 })).toThrow(/slotGroupBits/);
  });
});

describe('Redis Cluster hash tags', () => {
  test('hashTagOf follows Redis Cluster: the first {…} when not empty, else the whole key', () => {
    expect(hashTagOf(layout.bucketKey('s', 0x0a_05))).toBe('5');
    expect(hashTagOf(layout.bucketKey('c', 0x3_ff))).toBe('73');
    expect(hashTagOf('lm:meta')).toBe('lm:meta');
    expect(hashTagOf('a{b}{c}')).toBe('b');
    expect(hashTagOf('a{}{c}')).toBe('a{}{c}');
    expect(hashTagOf('a{b')).toBe('a{b');
    expect(hashTagOf('a}b{c}')).toBe('c');
  });

  test('every bucket of one slot group has one hash tag, and slotChunks keeps each chunk within one tag', () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 0, max: 2 ** 12 - 1 }), { minLength: 1, maxLength: 300 }), fc.integer({ min: 1, max: 50 }), (buckets, size) => {
        const keys = [...new Set(buckets)].map((b) => layout.bucketKey('s', b));
        for (const b of buckets) expect(hashTagOf(layout.bucketKey('s', b))).toBe(layout.groupOf(b).toString(36));
        const chunks = slotChunks([...keys, layout.metaKey, layout.agenciesKey, layout.checkpointKey], size);
        expect(chunks.flat().sort()).toEqual([...keys, layout.metaKey, layout.agenciesKey, layout.checkpointKey].sort());
        for (const chunk of chunks) {
          expect(chunk.length).toBeLessThanOrEqual(size);
          expect(new Set(chunk.map(hashTagOf)).size).toBe(1);
        }
      }),
      { numRuns: 50 },
    );
  });
});
