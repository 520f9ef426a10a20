import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { canonicalEnvelope, canonicalize, canonicalMetadataText, type RecordedEvent } from '#ledger';

const text = fc.string({ unit: 'grapheme', maxLength: 12 });
const metadata = fc.record(
  {
    actor: text,
    correlationId: text,
    causationId: text,
    idempotency: fc.record({ key: text, requestDigest: text, events: fc.nat(10_000) }),
  },
  { requiredKeys: ['actor', 'correlationId'] },
);
const envelope = fc.record(
  {
    eventId: fc.uuid(),
    type: text,
    schemaVersion: fc.nat(9),
    streamId: text,
    streamRevision: fc.nat(),
    position: fc.nat(),
    serial: fc.stringMatching(/^\d{20}$/),
    terminal: fc.constantFrom('completed', 'denied', 'failed', 'voided'),
    claims: fc.array(text, { minLength: 1, maxLength: 3 }),
    recordedAt: fc.date({ noInvalidDate: true }).map((d) => d.toISOString()),
    data: fc.jsonValue(),
    metadata,
  },
  { requiredKeys: ['eventId', 'type', 'schemaVersion', 'streamId', 'streamRevision', 'position', 'serial', 'recordedAt', 'data', 'metadata'] },
) as fc.Arbitrary<RecordedEvent>;

describe('canonical envelope text', () => {
  it('equals the RFC 8785 library output for every envelope', () => {
    fc.assert(
      fc.property(envelope, (event) => {
        expect(canonicalEnvelope(event)).toBe(canonicalize(event));
      }),
      { numRuns: 2000 },
    );
  });

  it('falls back to the library for metadata outside the fixed shape', () => {
    const odd = { actor: 'a', correlationId: 'c', extra: { z: 1, a: [true] } } as never;
    expect(canonicalMetadataText(odd)).toBe('{"actor":"a","correlationId":"c","extra":{"a":[true],"z":1}}');
  });

  it('refuses integers that JSON cannot carry exactly', () => {
    const event = { eventId: 'e', type: 't', schemaVersion: 1, streamId: 's', streamRevision: 0, position: 2 ** 53, serial: '1', recordedAt: 'r', data: null, metadata: { actor: 'a', correlationId: 'c' } } as unknown as RecordedEvent;
    expect(() => canonicalEnvelope(event)).toThrow(/safe integers/);
  });
});

describe('canonicalize', () => {
  it('sorts keys by UTF-16 code units, integer-like keys included (RFC 8785 §3.2.3)', () => {
    expect(canonicalize({ b: 1, a: { '10': 1, '9': 2, é: 3, z: 4 }, '€': 1, '\u{1F600}': 2 })).toBe(
      '{"a":{"10":1,"9":2,"z":4,"é":3},"b":1,"€":1,"😀":2}',
    );
    expect(canonicalize({ n: [1e21, 1e-7, -0, 0.1 + 0.2], u: undefined })).toBe('{"n":[1e+21,1e-7,0,0.30000000000000004]}');
  });

  it('follows toJSON and refuses what is not JSON', () => {
    expect(canonicalize({ at: new Date('2026-11-22T00:00:00Z'), x: 1 })).toBe('{"at":"2026-11-22T00:00:00.000Z","x":1}');
    expect(canonicalize(() => 1)).toBeUndefined();
  });
});
