import type { RecordedEvent } from '#ledger';
import type {
  AgencyKind,
  AgencyRegisteredData,
  AgencyUpdatedData,
  AuthorizationTablePublishedData,
  ProvisionRefusedData,
  QueryAcceptedData,
  QueryBatch,
  QueryCompletedData,
  QueryDeniedData,
  QueryFailedData,
  PushAbandonedData,
  PushDeliveredData,
  PushIssuedData,
} from '#linkage';

/**
 * Provision records (情報提供等記録): one row per query serial, folded from the log alone (I8), so that a
 * rebuild gives the identical rows. The fold is pure: no clock, no I/O; what it needs to know about
 * earlier events (agency names, table versions, the row so far) it asks its caller through a lookup.
 *
 * Rows never hold an agency code (機関別符号), not even the provider's, nor the digest of one: the
 * citizen and agency views show agencies, procedures and items.
 */

export const PROVISION_STATUSES = ['pending', 'answered', 'refused-by-provider', 'denied', 'failed', 'voided', 'delivered', 'abandoned'] as const;
export type ProvisionStatus = (typeof PROVISION_STATUSES)[number];

/**
 * What an exchange was: an agency's query (照会), the person's own self-information request
 * (自己情報表示: the citizen asked a provider, through the hub, what it holds about them; no requester agency),
 * or a push (更新のお知らせ: the hub told a subscribing agency that a provider's copy of an item about the
 * person changed; `requester` is the subscriber told, `provider` the agency whose copy changed, `queryId`
 * the pushId; status pending, then delivered or abandoned; no data, no code).
 */
export const PROVISION_KINDS = ['query', 'self-information', 'push'] as const;
export type ProvisionKind = (typeof PROVISION_KINDS)[number];

/** The procedure code of a self-information request (not a row of the authorization table). */
export const SELF_INFORMATION_PROCEDURE = 'self-information';
/** Its name when no table names it. */
export const SELF_INFORMATION_NAME = '自己情報表示';

/** An agency as it was registered when the query was made (kind and name null when it was not registered). */
export interface AgencyRef {
  readonly id: string;
  readonly kind: AgencyKind | null;
  readonly name: string | null;
}

/** A procedure or information item: its table code and its name in the table version in force (null when that version does not define it). */
export interface NamedCode {
  readonly code: string;
  readonly name: string | null;
}

export interface ProvisionRecord {
  readonly serial: string;
  readonly queryId: string;
  /**
   * The person asked about, as the store files them (the hub: a keyed reference, never the subject id);
   * null for a denial that named no person (its code did not resolve).
   */
  readonly subjectId: string | null;
  readonly kind: ProvisionKind;
  /** The agency that asked; null for a self-information request (the person asked themself). */
  readonly requester: AgencyRef | null;
  readonly provider: AgencyRef;
  /** The why: the legal procedure the query serves. */
  readonly procedure: NamedCode;
  /** The what. */
  readonly items: readonly NamedCode[];
  /** The authorization table version the names come from: the one the query was decided under, else the one in force at its time. */
  readonly tableVersion: number | null;
  readonly batch: QueryBatch | null;
  readonly status: ProvisionStatus;
  /** The denial reason, the provider's refusal reason, the failure reason or the void reason. */
  readonly reason: string | null;
  /** The query's time (ISO 8601 UTC, milliseconds). */
  readonly requestedAt: string;
  readonly endedAt: string | null;
}

/** An agency's registered kind and current name, as the fold knows them at a point of the log. */
export interface AgencyEntry {
  readonly agencyId: string;
  readonly kind: AgencyKind;
  readonly name: string;
}

/** The names one authorization table version gives procedures and items. */
export interface TableEntry {
  readonly version: number;
  readonly effectiveFromMs: number;
  readonly procedures: ReadonlyMap<string, string>;
  readonly items: ReadonlyMap<string, string>;
}

/** What the fold asks about the events before the one it folds. */
export interface ProvisionFoldLookup {
  /**
   * The person a query event is about, as the store files them: a reference (the hub's: the id of the
   * person's key, read from the event's key reference without opening it), null for none, or 'shredded'
   * when the event's keys are gone (it is skipped). Default: the subject id in the event's data.
   */
  person?(event: RecordedEvent): string | null | 'shredded';
  /** The reference of a subject id (an erasure names the subject). Default: the subject id itself. */
  ref?(subjectId: string): string;
  agency(agencyId: string): AgencyEntry | undefined;
  table(version: number): TableEntry | undefined;
  /** The version with the latest effective-from not after `atMs` (the higher version on a tie). */
  tableInForce(atMs: number): TableEntry | undefined;
  record(serial: string): ProvisionRecord | undefined;
  /** The row of a push (kind 'push') by its pushId: its delivery or abandonment ends it under another serial. */
  pushRecord(pushId: string): ProvisionRecord | undefined;
}

/** The one thing an event changes, if anything. */
export type ProvisionChange =
  | { readonly kind: 'agency'; readonly agency: AgencyEntry }
  | { readonly kind: 'table'; readonly table: TableEntry }
  | { readonly kind: 'record'; readonly record: ProvisionRecord }
  /** A retention sweep shredded the keys of every year up to this one: its records are gone (7 years kept). */
  | { readonly kind: 'forget-before'; readonly beforeMs: number }
  /** An erasure shredded one person's key: their records are gone. */
  | { readonly kind: 'forget-subject'; readonly subjectId: string };

const QUERY_STREAM = 'query-';
const PUSH_STREAM = 'push-';
const KEYS_SHREDDED_STREAM = 'keys-shredded';
const JST_MS = 9 * 3600 * 1000;

/** The first instant (ms) of the year after `epoch`, Japan time: records before it belong to years up to `epoch`. */
export function endOfEpochMs(epoch: number): number {
  return Date.UTC(epoch + 1, 0, 1) - JST_MS;
}

/** The person of a query event: the lookup's reference, or by default the subject id in its (opened) data. */
function personOf(event: RecordedEvent, lookup: ProvisionFoldLookup): string | null | 'shredded' {
  if (lookup.person !== undefined) return lookup.person(event);
  const d = event.data as { subjectId?: unknown; sealed?: unknown } | null;
  // An event read through the opener whose key was shredded (libs/sealing) has lost its subject for good.
  if (d?.sealed === 'shredded') return 'shredded';
  return typeof d?.subjectId === 'string' ? d.subjectId : null;
}
const AGENCY_STREAM = 'agency-';
const TABLE_STREAM = 'authorization-table';

const UTC_MS = /^\d{4}-[01]\d-[0-3]\dT[0-2]\d:[0-5]\d:[0-5]\d\.\d{3}Z$/;

/** ISO 8601 UTC with milliseconds, so that times compare as text and as numbers alike. */
export function utcInstant(text: string): string {
  // The hub writes times in this form already: skip the parse and format for them.
  if (text.length === 24 && UTC_MS.test(text)) return text;
  const ms = Date.parse(text);
  return Number.isNaN(ms) ? text : new Date(ms).toISOString();
}

/**
 * Folds one event: answers the change it makes to the reference data (agencies, tables) or to one
 * provision record, or undefined when it changes nothing (other streams, ProvisionRequested, …).
 * Events MUST come in position order; the caller applies each change before folding the next event.
 */
export function provisionChange(event: RecordedEvent, lookup: ProvisionFoldLookup): ProvisionChange | undefined {
  const stream = event.streamId;
  switch (event.type) {
    case 'AgencyRegistered': {
      if (!stream.startsWith(AGENCY_STREAM)) return undefined;
      const d = event.data as AgencyRegisteredData;
      return { kind: 'agency', agency: { agencyId: d.agencyId, kind: d.kind, name: d.name } };
    }
    case 'AgencyUpdated': {
      if (!stream.startsWith(AGENCY_STREAM)) return undefined;
      const d = event.data as AgencyUpdatedData;
      const known = lookup.agency(d.agencyId);
      if (known === undefined || d.changes.name === undefined) return undefined;
      return { kind: 'agency', agency: { ...known, name: d.changes.name } };
    }
    case 'AuthorizationTablePublished': {
      if (stream !== TABLE_STREAM) return undefined;
      return { kind: 'table', table: tableEntry(event.data as AuthorizationTablePublishedData) };
    }
    case 'KeysShredded': {
      if (stream !== KEYS_SHREDDED_STREAM) return undefined;
      const d = event.data as { scope?: unknown; throughEpoch?: unknown; subject?: unknown };
      if (d.scope === 'retention' && typeof d.throughEpoch === 'number') return { kind: 'forget-before', beforeMs: endOfEpochMs(d.throughEpoch) };
      if (d.scope === 'erasure' && typeof d.subject === 'string') return { kind: 'forget-subject', subjectId: lookup.ref === undefined ? d.subject : lookup.ref(d.subject) };
      return undefined;
    }
    case 'QueryAccepted': {
      if (!stream.startsWith(QUERY_STREAM)) return undefined;
      const person = personOf(event, lookup);
      // Its key was shredded (retention or erasure): a rebuild skips it, as the live fold forgot it.
      if (person === 'shredded') return undefined;
      const d = event.data as QueryAcceptedData;
      const requestedAt = utcInstant(d.acceptedAt);
      const self = isSelfInformation(d);
      // A self-information request is lawful under the self-disclosure table, whose versions are not the
      // authorization table's: its names come from the authorization table in force at its time.
      const table = self ? lookup.tableInForce(Date.parse(requestedAt)) : lookup.table(d.tableVersion);
      return {
        kind: 'record',
        record: {
          serial: event.serial,
          queryId: d.queryId,
          subjectId: person,
          kind: self ? 'self-information' : 'query',
          requester: self ? null : agencyRef(lookup, d.requesterAgencyId, d.requesterKind),
          provider: agencyRef(lookup, d.providerAgencyId, d.providerKind),
          procedure: procedureOf(d.procedureCode, table, self),
          items: namedItems(d.itemCodes, table),
          tableVersion: typeof d.tableVersion === 'number' ? d.tableVersion : null,
          batch: batchOf(d.batch),
          status: 'pending',
          reason: null,
          requestedAt,
          endedAt: null,
        },
      };
    }
    case 'QueryDenied': {
      if (!stream.startsWith(QUERY_STREAM)) return undefined;
      const person = personOf(event, lookup);
      if (person === 'shredded') return undefined;
      const d = event.data as QueryDeniedData;
      const requestedAt = utcInstant(d.deniedAt);
      const self = isSelfInformation(d);
      const table = d.tableVersion !== undefined && !self ? lookup.table(d.tableVersion) : lookup.tableInForce(Date.parse(requestedAt));
      return {
        kind: 'record',
        record: {
          serial: event.serial,
          queryId: d.queryId,
          subjectId: person,
          kind: self ? 'self-information' : 'query',
          requester: self ? null : agencyRef(lookup, d.requesterAgencyId),
          provider: agencyRef(lookup, d.providerAgencyId),
          procedure: procedureOf(d.procedureCode, table, self),
          items: namedItems(d.itemCodes, table),
          tableVersion: d.tableVersion ?? table?.version ?? null,
          batch: batchOf(d.batch),
          status: 'denied',
          reason: d.reason,
          requestedAt,
          endedAt: requestedAt,
        },
      };
    }
    case 'ProvisionRefused':
      return update(event, lookup, (r) => ({ ...r, reason: (event.data as ProvisionRefusedData).reason }));
    case 'QueryCompleted': {
      const d = event.data as QueryCompletedData;
      return update(event, lookup, (r) => ({ ...r, status: d.outcome, endedAt: utcInstant(d.completedAt) }));
    }
    case 'QueryFailed': {
      const d = event.data as QueryFailedData;
      return update(event, lookup, (r) => ({ ...r, status: 'failed', reason: d.reason, endedAt: utcInstant(d.failedAt) }));
    }
    case 'PushIssued': {
      if (!stream.startsWith(PUSH_STREAM)) return undefined;
      const person = personOf(event, lookup);
      if (person === 'shredded') return undefined;
      // Only the fields in clear are read (I10): the subscriber's code and the subject stay sealed.
      const d = event.data as PushIssuedData;
      const requestedAt = utcInstant(d.issuedAt);
      const table = lookup.tableInForce(Date.parse(requestedAt));
      return {
        kind: 'record',
        record: {
          serial: event.serial,
          queryId: d.pushId,
          subjectId: person,
          kind: 'push',
          requester: agencyRef(lookup, d.requesterAgencyId),
          provider: agencyRef(lookup, d.providerAgencyId),
          procedure: procedureOf(d.procedureCode, table, false),
          items: namedItems([d.itemCode], table),
          tableVersion: table?.version ?? null,
          batch: null,
          status: 'pending',
          reason: null,
          requestedAt,
          endedAt: null,
        },
      };
    }
    case 'PushDelivered': {
      const d = event.data as PushDeliveredData;
      return pushUpdate(event, lookup, d.pushId, (r) => ({ ...r, status: 'delivered', endedAt: utcInstant(d.deliveredAt) }));
    }
    case 'PushAbandoned': {
      const d = event.data as PushAbandonedData;
      return pushUpdate(event, lookup, d.pushId, (r) => ({ ...r, status: 'abandoned', reason: d.lastError, endedAt: utcInstant(d.abandonedAt) }));
    }
    case 'SerialVoided': {
      // The voiding event carries no business time: the ledger's recording time is the end (it is in the log).
      const reason = (event.data as { readonly reason?: unknown }).reason;
      return update(event, lookup, (r) => ({ ...r, status: 'voided', reason: typeof reason === 'string' ? reason : null, endedAt: utcInstant(event.recordedAt) }));
    }
    default:
      return undefined;
  }
}

function update(event: RecordedEvent, lookup: ProvisionFoldLookup, change: (r: ProvisionRecord) => ProvisionRecord): ProvisionChange | undefined {
  if (!event.streamId.startsWith(QUERY_STREAM)) return undefined;
  const current = lookup.record(event.serial);
  // No row: the serial did not start as a query (a log from elsewhere); there is nothing to end.
  return current === undefined ? undefined : { kind: 'record', record: change(current) };
}

/** Ends a push's row (pending → delivered or abandoned), found by its pushId; the ending event has its own serial. */
function pushUpdate(event: RecordedEvent, lookup: ProvisionFoldLookup, pushId: string, change: (r: ProvisionRecord) => ProvisionRecord): ProvisionChange | undefined {
  if (!event.streamId.startsWith(PUSH_STREAM)) return undefined;
  const current = lookup.pushRecord(pushId);
  // No row (its person's key was shredded) or already ended: a push ends once.
  return current === undefined || current.status !== 'pending' ? undefined : { kind: 'record', record: change(current) };
}

/**
 * Whether a query-family event is a self-information request: the citizen asked (requesterKind 'citizen',
 * procedure 'self-information', no requester agency).
 */
export function isSelfInformation(d: { readonly requesterKind?: unknown; readonly requesterAgencyId?: unknown; readonly procedureCode?: unknown }): boolean {
  return d.requesterKind === 'citizen' || (typeof d.requesterAgencyId !== 'string' && d.procedureCode === SELF_INFORMATION_PROCEDURE);
}

function procedureOf(code: string, table: TableEntry | undefined, self: boolean): NamedCode {
  const name = table?.procedures.get(code) ?? null;
  return { code, name: name ?? (self && code === SELF_INFORMATION_PROCEDURE ? SELF_INFORMATION_NAME : null) };
}

function agencyRef(lookup: ProvisionFoldLookup, id: string, kind?: AgencyKind): AgencyRef {
  const known = lookup.agency(id);
  return { id, kind: kind ?? known?.kind ?? null, name: known?.name ?? null };
}

function namedItems(codes: readonly string[], table: TableEntry | undefined): NamedCode[] {
  return codes.map((code) => ({ code, name: table?.items.get(code) ?? null }));
}

function batchOf(batch: QueryBatch | undefined): QueryBatch | null {
  return batch === undefined ? null : { batchId: batch.batchId, index: batch.index, size: batch.size };
}

export function tableEntry(d: AuthorizationTablePublishedData): TableEntry {
  const procedures = new Map<string, string>();
  for (const row of d.table.rows) if (!procedures.has(row.procedure.code)) procedures.set(row.procedure.code, row.procedure.name);
  const items = new Map<string, string>(d.table.items.map((i) => [i.code, i.name]));
  return { version: d.version, effectiveFromMs: Date.parse(d.effectiveFrom), procedures, items };
}

/** The version in force at `atMs` among `tables`: the latest effective-from not after it, the higher version on a tie. */
export function pickTableInForce(tables: Iterable<TableEntry>, atMs: number): TableEntry | undefined {
  let best: TableEntry | undefined;
  for (const t of tables) {
    if (t.effectiveFromMs > atMs) continue;
    if (!best || t.effectiveFromMs > best.effectiveFromMs || (t.effectiveFromMs === best.effectiveFromMs && t.version > best.version)) best = t;
  }
  return best;
}

/** Reference data and rows held in memory: the lookup the fold reads, plus applying what it answers. */
export class ProvisionFoldState implements ProvisionFoldLookup {
  readonly agencies = new Map<string, AgencyEntry>();
  readonly tables = new Map<number, TableEntry>();
  readonly records = new Map<string, ProvisionRecord>();
  /** The serial of each push's row, by pushId. */
  readonly pushes = new Map<string, string>();
  readonly person?: (event: RecordedEvent) => string | null | 'shredded';
  readonly ref?: (subjectId: string) => string;

  /** `subjectRef`: file people by this reference of their subject id (default: the subject id). */
  constructor(options: { readonly subjectRef?: (subjectId: string) => string } = {}) {
    const subjectRef = options.subjectRef;
    if (subjectRef !== undefined) {
      this.ref = subjectRef;
      this.person = (event) => {
        const p = personOf(event, {} as ProvisionFoldLookup);
        return p === null || p === 'shredded' ? p : subjectRef(p);
      };
    }
  }

  agency(agencyId: string): AgencyEntry | undefined {
    return this.agencies.get(agencyId);
  }
  table(version: number): TableEntry | undefined {
    return this.tables.get(version);
  }
  tableInForce(atMs: number): TableEntry | undefined {
    return pickTableInForce(this.tables.values(), atMs);
  }
  record(serial: string): ProvisionRecord | undefined {
    return this.records.get(serial);
  }
  pushRecord(pushId: string): ProvisionRecord | undefined {
    const serial = this.pushes.get(pushId);
    return serial === undefined ? undefined : this.records.get(serial);
  }

  fold(event: RecordedEvent): ProvisionChange | undefined {
    const change = provisionChange(event, this);
    if (change !== undefined) this.applyChange(change);
    return change;
  }

  applyChange(change: ProvisionChange): void {
    switch (change.kind) {
      case 'agency':
        this.agencies.set(change.agency.agencyId, change.agency);
        return;
      case 'table':
        this.tables.set(change.table.version, change.table);
        return;
      case 'record':
        this.records.set(change.record.serial, change.record);
        if (change.record.kind === 'push') this.pushes.set(change.record.queryId, change.record.serial);
        return;
      case 'forget-before':
        for (const [serial, r] of this.records) if (Date.parse(r.requestedAt) < change.beforeMs) this.forget(serial, r);
        return;
      case 'forget-subject':
        for (const [serial, r] of this.records) if (r.subjectId === change.subjectId) this.forget(serial, r);
        return;
      default: {
        const never: never = change;
        throw new Error(`unreachable change ${JSON.stringify(never)}`);
      }
    }
  }

  private forget(serial: string, r: ProvisionRecord): void {
    this.records.delete(serial);
    if (r.kind === 'push') this.pushes.delete(r.queryId);
  }
}

/** Every provision record the events give, in serial order. */
export function foldProvisionRecords(events: Iterable<RecordedEvent>): ProvisionRecord[] {
  const state = new ProvisionFoldState();
  for (const e of events) state.fold(e);
  return [...state.records.values()].sort(bySerial);
}

export function bySerial(a: { readonly serial: string }, b: { readonly serial: string }): number {
  return a.serial < b.serial ? -1 : a.serial > b.serial ? 1 : 0;
}
