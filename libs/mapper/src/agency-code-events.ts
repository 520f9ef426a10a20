import type { RecordedEvent } from '#ledger';
import { isAgencyCode, isAgencyId, isSubjectId, type AgencyCode, type AgencyId, type SubjectId } from '#linkage';
import { MapperError } from './errors.js';

export const AGENCY_CODE_ISSUED = 'AgencyCodeIssued';

export interface IssuedCode {
  readonly position: number;
  readonly subjectId: SubjectId;
  readonly agencyId: AgencyId;
  readonly code: AgencyCode;
}

/**
 * The mapping an event carries, undefined for events of other types and for codes whose person was
 * erased (their key shredded: `data.sealed === 'shredded'`). Refuses an AgencyCodeIssued it cannot trust.
 * Events of schemaVersion 2 hold the subject and code sealed (I10): the mapper MUST be fed them opened
 * (OpeningEventStore of libs/sealing); a still-sealed one is refused.
 */
export function issuedCodeOf(event: RecordedEvent): IssuedCode | undefined {
  if (event.type !== AGENCY_CODE_ISSUED) return undefined;
  const d = event.data as { subjectId?: unknown; agencyId?: unknown; code?: unknown; sealed?: unknown } | null;
  if (d !== null && typeof d === 'object' && d.sealed === 'shredded') return undefined;
  if (d !== null && typeof d === 'object' && d.sealed !== undefined) {
    throw new MapperError('INVALID_EVENT', `event at position ${event.position} is an AgencyCodeIssued still sealed; the mapper projects opened events (read the log through the sealer)`);
  }
  if ((event.schemaVersion !== 1 && event.schemaVersion !== 2) || d === null || typeof d !== 'object' || !isSubjectId(d.subjectId) || !isAgencyId(d.agencyId) || !isAgencyCode(d.code)) {
    throw new MapperError('INVALID_EVENT', `event at position ${event.position} is an AgencyCodeIssued without a valid subjectId, agencyId and code; the mapper cannot project it`);
  }
  return { position: event.position, subjectId: d.subjectId, agencyId: d.agencyId, code: d.code };
}

/** Checks that a batch is in position order and drops what the checkpoint already covers. */
export function pendingEvents(events: readonly RecordedEvent[], checkpoint: number): readonly RecordedEvent[] {
  let last = checkpoint;
  const out: RecordedEvent[] = [];
  for (const e of events) {
    if (e.position <= checkpoint) continue;
    if (e.position <= last) {
      throw new MapperError('OUT_OF_ORDER', `events must be applied in position order: ${e.position} after ${last}`);
    }
    last = e.position;
    out.push(e);
  }
  return out;
}
