import { randomUUID } from 'node:crypto';
import type { AppendRequest } from '#ledger';

/**
 * The bare append of bench:ledger and bench:push's yardstick: one ProvisionCompleted event of the size the
 * ledger stores for a provision (≈ 880 bytes with its envelope), on its own stream, under its own serial,
 * with an idempotency key (a fresh one per call, as each command brings its own). The digests are 64 hex
 * characters, as SHA-256 digests are.
 */
export function bareAppendRequest(i: number): AppendRequest {
  return {
    streamId: `linkage-${String(i).padStart(12, '0')}`,
    expectedRevision: 'any',
    serial: { allocate: true },
    events: [
      {
        type: 'ProvisionCompleted',
        data: {
          subjectId: `sub-${i.toString(36).padStart(10, '0')}`,
          municipalityCode: '012050',
          numberDigest: 'a3f1c9e0b4d2'.repeat(6).slice(0, 64),
          residentDigest: '9b8c7d6e5f4a'.repeat(6).slice(0, 64),
          sealed: { kid: 'k1', iv: 'AAECAwQFBgcICQoL', ct: 'Q2lwaGVydGV4dCBvZiB0aGUgaWRlbnRpZmllcnM', tag: 'dGFnLXRhZy10YWctdGFnIQ' },
          issuedAt: '2026-11-22T03:00:00.000Z',
        },
        terminal: 'completed',
      },
    ],
    metadata: { actor: 'agency:012050', correlationId: `corr-${i}` },
    idempotency: { key: `agency:012050/${randomUUID()}`, requestDigest: `digest-${i}` },
  };
}
