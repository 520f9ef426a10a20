import { createHash, randomBytes, randomUUID } from 'node:crypto';
import type { EventStore, RecordedEvent, SerialNumber, EventId } from '#ledger';
import {
  agencyCodeDecider,
  agencyCodeFromRandomBytes,
  agencyCodeStreamId,
  type AgencyCode,
  type AgencyId,
  type AgencyKind,
  type SubjectId,
} from '#linkage';

export const PENSION = 'jpn-pension-service' as AgencyId;
export const MURORAN = 'muroran-city' as AgencyId;
export const SAPPORO = 'sapporo-city' as AgencyId;
export const HELLO_WORK = 'hello-work-muroran' as AgencyId;
export const AGENCIES: readonly (readonly [AgencyId, AgencyKind])[] = [
  [PENSION, 'pension-service'],
  [MURORAN, 'municipality'],
  [SAPPORO, 'municipality'],
  [HELLO_WORK, 'hello-work'],
];

export interface Issued {
  readonly subjectId: SubjectId;
  readonly agencyId: AgencyId;
  readonly code: AgencyCode;
}

export const freshCode = (): AgencyCode => agencyCodeFromRandomBytes(randomBytes(16));
export const freshSubject = (): SubjectId => randomUUID() as SubjectId;

/** A stored AgencyCodeIssued, as the ledger would hand it to a projection. */
export function recordedIssued(position: number, issued: Issued): RecordedEvent {
  return recorded(position, 'AgencyCodeIssued', {
    subjectId: issued.subjectId,
    agencyId: issued.agencyId,
    agencyKind: 'municipality',
    code: issued.code,
    acquisitionNumber: `ACQ-${position}`,
    issuedAt: '2026-04-01T09:00:00.000Z',
  });
}

export function recorded(position: number, type: string, data: unknown): RecordedEvent {
  return {
    eventId: `evt-${position}` as EventId,
    type,
    schemaVersion: 1,
    streamId: `stream-${position}`,
    streamRevision: 0,
    position,
    serial: `20260401010000${String(position).padStart(6, '0')}` as SerialNumber,
    terminal: 'completed',
    recordedAt: '2026-04-01T09:00:00.000Z',
    data,
    metadata: { actor: 'system:test', correlationId: `c-${position}` },
  };
}

/** `subjects` people, each with a code at every agency in `agencies`, as synthetic events from `start`. */
export function population(subjects: number, agencies: readonly AgencyId[] = AGENCIES.map(([a]) => a), mint: (subjectId: SubjectId) => AgencyCode = () => freshCode()): Issued[] {
  const out: Issued[] = [];
  for (let s = 0; s < subjects; s++) {
    const subjectId = freshSubject();
    for (const agencyId of agencies) out.push({ subjectId, agencyId, code: mint(subjectId) });
  }
  return out;
}

export const asEvents = (issued: readonly Issued[], start = 0): RecordedEvent[] => issued.map((i, k) => recordedIssued(start + k, i));

/** Acquires codes through the real decider and appends them to the store, as the hub's handler will. */
export async function acquireInStore(store: EventStore, issued: readonly Issued[]): Promise<void> {
  await Promise.all(
    issued.map(async (i, k) => {
      const kind = AGENCIES.find(([a]) => a === i.agencyId)?.[1] ?? 'municipality';
      const events = agencyCodeDecider.decide(
        {
          type: 'AcquireAgencyCode',
          data: {
            subjectId: i.subjectId,
            agencyId: i.agencyId,
            agency: { agencyId: i.agencyId, kind, status: 'active', credentialDigest: '0'.repeat(64) as never },
            acquisitionNumber: `ACQ-${k}`,
            candidateCode: i.code,
            candidateCodeDigest: createHash('sha256').update(i.code).digest('hex'),
            acquiredAt: '2026-04-01T09:00:00.000Z',
          },
        },
        agencyCodeDecider.initialState(),
      );
      await store.append({
        streamId: agencyCodeStreamId(createHash('sha256').update(`${i.subjectId}|${i.agencyId}`).digest('hex').slice(0, 32)),
        expectedRevision: 'no_stream',
        serial: { allocate: true },
        events,
        metadata: { actor: `agency:${i.agencyId}`, correlationId: `acq-${k}` },
      });
    }),
  );
}
