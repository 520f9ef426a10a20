import { createHash, randomUUID } from 'node:crypto';
import { isInstant, isTableCode } from '#linkage';
import { AgencyProblem } from '../http/agency-problem.js';
import { hubProblemOf, type HubClient } from '../hub/hub-client.js';
import { isLocalId, type AgencyStore } from '../store/agency-store.js';
import type { CopyUpdate, UpdateReport } from '../store/mesh-store.js';
import type { Clock } from '../tokens.js';

/** One person's changed copies: new values for some of their items, by the agency's own local id. */
export interface CopyChange {
  readonly localId: string;
  readonly items: Readonly<Record<string, unknown>>;
}

export interface UpdateInput {
  /** The staff's id for this update (a retry with the same id and changes is answered from the store); default a new UUID. */
  readonly updateId?: string;
  /** When the copies changed (RFC 3339); default now. */
  readonly updatedAt?: string;
  readonly changes: readonly CopyChange[];
}

export type UpdateResultOutcome = 'reported' | 'refused' | 'not-reported' | 'pending' | 'unchanged';

export interface UpdateResult {
  readonly localId: string;
  /** The items whose value changed, reported to the hub (unchanged values are stored as they were and not reported). */
  readonly itemCodes: readonly string[];
  readonly outcome: UpdateResultOutcome;
  /** The hub's id and serial of the report (CopyUpdated), and how many pushes it issued. */
  readonly hubUpdateId?: string;
  readonly serial?: string;
  readonly subscribers?: number;
  readonly reason?: string;
}

export const MAX_CHANGES = 1000;
const UPDATE_ID = /^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$/;

/**
 * The update command (副本更新): loads changed copies into the agency's store and reports each changed
 * person to the hub (`POST {hub}/v1/updates` `{code, itemCodes, updatedAt}`, by the agency's own code,
 * no data), so the hub pushes to the subscribers. The new values and one pending report per person are
 * written in one transaction; the reports are sent after, each with its own idempotency key kept in the
 * row, and each answer is stored. A report the hub could not take (unreachable, 5xx) stays pending and is
 * sent again with the same key (`reportPending`, at the server's start, by `report-updates`, or a retry
 * of the same update id), so the hub records each update once.
 */
export class CopyUpdatesService {
  constructor(
    private readonly store: AgencyStore,
    private readonly hub: HubClient,
    private readonly clock: Clock,
  ) {}

  async update(input: UpdateInput): Promise<{ updateId: string; updatedAt: string; results: UpdateResult[] }> {
    validate(input, this.store);
    const updateId = input.updateId ?? randomUUID();
    const earlier = this.store.mesh.updates(updateId);
    // A retry that gives no updatedAt means the one the update was first stored with.
    const updatedAt = input.updatedAt ?? earlier[0]?.updatedAt ?? this.clock().toISOString();
    const digest = createHash('sha256').update(JSON.stringify([updatedAt, input.changes.map((c) => [c.localId, Object.entries(c.items)])])).digest('hex');

    if (earlier.length > 0 && earlier[0]!.requestDigest !== digest) {
      throw new AgencyProblem('UPDATE_ID_REUSED', `update id ${updateId} was already used for other changes (or another updatedAt); use a new update id for a new update`, { updateId });
    }
    if (earlier.length === 0) {
      const now = this.clock();
      this.store.transaction(() => {
        for (const change of input.changes) {
          const changed = Object.entries(change.items).filter(([item, value]) => this.store.copyJson(change.localId, item) !== JSON.stringify(value));
          for (const [item, value] of changed) this.store.upsertCopy(change.localId, item, value, now);
          // Also when nothing changed: the row says this update id was taken, with its digest.
          this.store.mesh.addUpdate({ updateKey: updateId, localId: change.localId, itemCodes: changed.map(([item]) => item), updatedAt, idempotencyKey: randomUUID(), requestDigest: digest, loadedAt: now.toISOString() });
        }
      });
    }
    const rows = this.store.mesh.updates(updateId);
    const transient = new Map<number, string>();
    for (const row of rows) {
      if (row.report === null) {
        const reason = await this.report(row);
        if (reason !== undefined) transient.set(row.row, reason);
      }
    }
    return { updateId, updatedAt, results: this.store.mesh.updates(updateId).map((row) => resultOf(row, transient.get(row.row))) };
  }

  /** Sends every pending report again (same idempotency keys); answers how many were settled and how many stay pending. */
  async reportPending(): Promise<{ reported: number; pending: number }> {
    let reported = 0;
    let pending = 0;
    for (const row of this.store.mesh.pendingReports()) {
      if ((await this.report(row)) === undefined) reported++;
      else pending++;
    }
    return { reported, pending };
  }

  /** Reports one row and stores the answer; returns the reason when it stays pending. */
  private async report(row: CopyUpdate): Promise<string | undefined> {
    const reportedAt = () => this.clock().toISOString();
    const settle = (r: Omit<UpdateReport, 'reportedAt'>): undefined => void this.store.mesh.recordReport(row.row, { ...r, reportedAt: reportedAt() });
    if (row.itemCodes.length === 0) return settle({ outcome: 'not-reported', updateId: null, serial: null, subscribers: null, reason: 'UNCHANGED' });
    const person = this.store.person(row.localId);
    if (person?.agencyCode == null) return settle({ outcome: 'not-reported', updateId: null, serial: null, subscribers: null, reason: 'CODE_NOT_ACQUIRED' });
    let res;
    try {
      res = await this.hub.post('/v1/updates', { code: person.agencyCode, itemCodes: row.itemCodes, updatedAt: row.updatedAt }, row.idempotencyKey);
    } catch (error) {
      if (error instanceof AgencyProblem) return error.code;
      throw error;
    }
    if (res.status === 202 || res.status === 200 || res.status === 201) {
      const body = res.body as { updateId?: unknown; serial?: unknown; subscribers?: unknown } | undefined;
      if (typeof body?.updateId !== 'string' || typeof body.serial !== 'string' || typeof body.subscribers !== 'number') return 'HUB_PROTOCOL_ERROR';
      return settle({ outcome: 'reported', updateId: body.updateId, serial: body.serial, subscribers: body.subscribers, reason: null });
    }
    const problem = hubProblemOf(res);
    // The hub's refusal is final (it was recorded there under its serial); 5xx, 401 and answers outside the protocol may pass.
    if (res.status >= 500 || problem.code === 'HUB_AUTHENTICATION_FAILED' || problem.code === 'HUB_PROTOCOL_ERROR') return problem.code;
    const serial = typeof problem.extensions['serial'] === 'string' ? problem.extensions['serial'] : null;
    return settle({ outcome: 'refused', updateId: null, serial, subscribers: null, reason: problem.code });
  }
}

function resultOf(row: CopyUpdate, pendingReason: string | undefined): UpdateResult {
  const base = { localId: row.localId, itemCodes: row.itemCodes };
  const r = row.report;
  if (r === null) return { ...base, outcome: 'pending', ...(pendingReason === undefined ? {} : { reason: pendingReason }) };
  if (r.outcome === 'not-reported' && r.reason === 'UNCHANGED') return { ...base, outcome: 'unchanged' };
  return {
    ...base,
    outcome: r.outcome,
    ...(r.updateId === null ? {} : { hubUpdateId: r.updateId }),
    ...(r.serial === null ? {} : { serial: r.serial }),
    ...(r.subscribers === null ? {} : { subscribers: r.subscribers }),
    ...(r.reason === null ? {} : { reason: r.reason }),
  };
}

/** Everything checked before anything is stored: one refusal names each wrong field. */
function validate(input: UpdateInput, store: AgencyStore): void {
  const errors: { field: string; message: string }[] = [];
  if (input.updateId !== undefined && (typeof input.updateId !== 'string' || !UPDATE_ID.test(input.updateId))) errors.push({ field: 'updateId', message: 'must be 1-128 letters, digits, ".", "_", ":" or "-"' });
  if (input.updatedAt !== undefined && !isInstant(input.updatedAt)) errors.push({ field: 'updatedAt', message: 'must be an RFC 3339 date-time with a zone' });
  if (!Array.isArray(input.changes) || input.changes.length === 0 || input.changes.length > MAX_CHANGES) {
    errors.push({ field: 'changes', message: `must be an array of 1-${MAX_CHANGES} {localId, items}` });
  } else {
    const seen = new Set<string>();
    input.changes.forEach((c, i) => {
      const at = `changes[${i}]`;
      if (typeof c !== 'object' || c === null || Array.isArray(c)) return void errors.push({ field: at, message: 'must be an object {localId, items}' });
      const extra = Object.keys(c).filter((k) => k !== 'localId' && k !== 'items');
      for (const k of extra) errors.push({ field: `${at}.${k}`, message: 'is not a known field' });
      if (!isLocalId(c.localId)) errors.push({ field: `${at}.localId`, message: "must be this agency's own id for the person (1-64 letters, digits, '.', '_' or '-'; never an individual number)" });
      else if (seen.has(c.localId)) errors.push({ field: `${at}.localId`, message: `${c.localId} is named twice; give each person once` });
      else if (store.person(c.localId) === undefined) errors.push({ field: `${at}.localId`, message: `no person with local id ${c.localId}; load them first (load-copies)` });
      else seen.add(c.localId);
      if (typeof c.items !== 'object' || c.items === null || Array.isArray(c.items) || Object.keys(c.items).length === 0 || Object.keys(c.items).length > 64) {
        errors.push({ field: `${at}.items`, message: 'must be an object of 1-64 {itemCode: new value}' });
      } else {
        for (const [item, value] of Object.entries(c.items)) {
          if (!isTableCode(item)) errors.push({ field: `${at}.items.${item}`, message: 'is not an item code (kebab-case, e.g. local-tax)' });
          else if (value === undefined || value === null) errors.push({ field: `${at}.items.${item}`, message: 'has no value' });
        }
      }
    });
  }
  if (errors.length > 0) {
    const missing = errors.filter((e) => e.message.startsWith('no person with local id'));
    throw new AgencyProblem(
      missing.length === errors.length ? 'PERSON_NOT_FOUND' : 'VALIDATION_FAILED',
      errors.length === 1 ? `${errors[0]!.field}: ${errors[0]!.message}` : `${errors.length} fields are not valid; see errors`,
      { errors },
    );
  }
}
