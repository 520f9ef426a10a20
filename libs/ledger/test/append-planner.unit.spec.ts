import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { AppendPlanner, canonicalizeReference, uuidv7, type AppendRequest, type LedgerIndex } from '#ledger';

const empty: LedgerIndex = {
  streamRevision: () => undefined,
  serialState: () => undefined,
  claimHeld: () => false,
  idempotency: () => undefined,
  lastSequence: () => 0,
};
const name = fc.stringMatching(/^[A-Za-z0-9$][A-Za-z0-9$._:-]{0,20}$/);
const text = fc.string({ unit: 'grapheme', maxLength: 10 });
const request: fc.Arbitrary<AppendRequest> = fc.record({
  streamId: name,
  events: fc.array(
    fc.record(
      { type: name, data: fc.jsonValue(), schemaVersion: fc.integer({ min: 1, max: 9 }), claims: fc.array(text, { maxLength: 3 }) },
      { requiredKeys: ['type', 'data'] },
    ),
    { minLength: 1, maxLength: 3 },
  ),
  end: fc.boolean(),
  metadata: fc.record({ actor: text.filter((s) => s.length > 0), correlationId: text.filter((s) => s.length > 0), causationId: text }, { requiredKeys: ['actor', 'correlationId'] }),
  key: fc.option(text.filter((s) => s.length > 0), { nil: undefined }),
}).map(({ streamId, events, end, metadata, key }) => ({
  streamId,
  expectedRevision: 'any' as const,
  serial: { allocate: true as const },
  events: events.map((e, i) => (end && i === events.length - 1 ? { ...e, terminal: 'completed' as const } : e)),
  metadata,
  ...(key === undefined ? {} : { idempotency: { key, requestDigest: `d-${key}` } }),
}));

describe('the planner writes each envelope as its RFC 8785 text', () => {
  it('equals the library output for the whole envelope, for any batch of requests', () => {
    fc.assert(
      fc.property(fc.array(request, { minLength: 1, maxLength: 6 }), fc.nat(1000), (requests, head) => {
        const planner = new AppendPlanner({ nodeId: 3, now: () => new Date('2026-11-22T03:00:00.000Z'), newEventId: uuidv7 });
        const batch = planner.plan(requests, head, empty);
        for (const { event, canonical } of batch.events) expect(canonical).toBe(canonicalizeReference(event));
        expect(batch.events.map((e) => e.event.position)).toEqual(batch.events.map((_, i) => head + i));
      }),
      { numRuns: 500 },
    );
    // Hundreds of generated batches: seconds on a machine shared with builds and benches.
  }, 30_000);

  it('equals it too when requests share metadata objects (a fan-out), with and without idempotency keys between them', () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(request, fc.nat(2)), { minLength: 1, maxLength: 8 }), fc.array(request, { minLength: 3, maxLength: 3 }), (drawn, pool) => {
        // Requests whose metadata is one of three objects, in any order: the same object's text serves each.
        const shared = pool.map((p) => p.metadata);
        const requests = drawn.map(([r, k]) => ({ ...r, metadata: shared[k]! }));
        const planner = new AppendPlanner({ nodeId: 3, now: () => new Date('2026-11-22T03:00:00.000Z'), newEventId: uuidv7 });
        for (const { event, canonical } of planner.plan(requests, 0, empty).events) expect(canonical).toBe(canonicalizeReference(event));
      }),
      { numRuns: 300 },
    );
  }, 30_000);
});
