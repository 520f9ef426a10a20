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

/** The mapping an event carries, undefined for events of other types. Refuses an AgencyCodeIssued it cannot trust. */
export function issuedCodeOf(event: RecordedEvent): IssuedCode | undefined {
  if (event.type !== AGENCY_CODE_ISSUED) return undefined;
  const d = event.data as { subjectId?: unknown; agencyId?: unknown; code?: unknown } | null;
  if (event.schemaVersion !== 1 || d === null || typeof d !== 'object' || !isSubjectId(d.subjectId) || !isAgencyId(d.agencyId) || !isAgencyCode(d.code)) {
    throw new MapperError('INVALID_EVENT', `event at position ${event.position} is an AgencyCodeIssued v1 without a valid subjectId, agencyId and code; the mapper cannot project it`);
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
