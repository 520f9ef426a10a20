import type { AuthorizationRow, AuthorizationTable } from './authorization-table.js';
import { AGENCY_KINDS, isAgencyKind, type AgencyKind } from './identifiers.js';

/**
 * What an operator is shown before and after publishing a table version (docs/authorization-table-rollout.md):
 * the codes a table names that the hub does not know, and the difference from the version in force.
 */

/** A row as a diff names it: its key and its item (and push) codes. */
export interface DiffRow {
  readonly requesterKind: AgencyKind;
  readonly procedure: string;
  readonly providerKind: AgencyKind;
  readonly items: readonly string[];
  readonly push: readonly string[];
}

/** A row present in both versions whose items, push items or procedure description differ. */
export interface RowChange {
  readonly requesterKind: AgencyKind;
  readonly procedure: string;
  readonly providerKind: AgencyKind;
  readonly itemsAdded: readonly string[];
  readonly itemsRemoved: readonly string[];
  readonly pushAdded: readonly string[];
  readonly pushRemoved: readonly string[];
  /** The procedure's name, English name or statute changed. */
  readonly procedureChanged: boolean;
}

export interface AuthorizationTableDiff {
  /** The version compared against (the one in force), or undefined when none is. */
  readonly againstVersion?: number;
  readonly rowsAdded: readonly DiffRow[];
  readonly rowsRemoved: readonly DiffRow[];
  readonly rowsChanged: readonly RowChange[];
  /** Item codes of the catalogue (`items`) added, removed, or whose names or description changed. */
  readonly itemsAdded: readonly string[];
  readonly itemsRemoved: readonly string[];
  readonly itemsChanged: readonly string[];
}

function isRecord(x: unknown): x is Record<string, unknown> {
  return typeof x === 'object' && x !== null && !Array.isArray(x);
}

/**
 * Every code a table names that is not known where it is used: an agency kind the hub does not have, a
 * row item the table's own catalogue (`items`) does not define, a push item that is not one of its row's
 * items. Procedures are defined by the rows themselves (a new version may add one), so a procedure code is
 * never unknown; its consistency is parseAuthorizationTable's. Reads the raw JSON and skips what is not
 * shaped as a table (the JSON Schema reports that).
 */
export function unknownTableCodes(json: unknown): readonly string[] {
  if (!isRecord(json)) return [];
  const problems: string[] = [];
  const catalogue = new Set(Array.isArray(json['items']) ? (json['items'] as unknown[]).flatMap((i) => (isRecord(i) && typeof i['code'] === 'string' ? [i['code']] : [])) : []);
  const rows = Array.isArray(json['rows']) ? (json['rows'] as unknown[]) : [];
  rows.forEach((row, i) => {
    if (!isRecord(row)) return;
    for (const field of ['requesterKind', 'providerKind'] as const) {
      const kind = row[field];
      if (typeof kind === 'string' && !isAgencyKind(kind)) problems.push(`rows[${i}].${field}: unknown agency kind "${kind}" (known: ${AGENCY_KINDS.join(', ')})`);
    }
    const rowItems = new Set<string>();
    if (Array.isArray(row['items'])) {
      (row['items'] as unknown[]).forEach((item, j) => {
        if (!isRecord(item) || typeof item['code'] !== 'string') return;
        rowItems.add(item['code']);
        if (!catalogue.has(item['code'])) problems.push(`rows[${i}].items[${j}]: item "${item['code']}" is not defined in "items"`);
      });
    }
    if (Array.isArray(row['push'])) {
      (row['push'] as unknown[]).forEach((code, k) => {
        if (typeof code === 'string' && !rowItems.has(code)) problems.push(`rows[${i}].push[${k}]: item "${code}" is not one of the row's items`);
      });
    }
  });
  return problems;
}

const keyOf = (r: AuthorizationRow): string => `${r.requesterKind}|${r.procedure.code}|${r.providerKind}`;
const order = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);
const diffRow = (r: AuthorizationRow): DiffRow => ({ requesterKind: r.requesterKind, procedure: r.procedure.code, providerKind: r.providerKind, items: r.items.map((i) => i.code), push: [...(r.push ?? [])] });
const minus = (a: readonly string[], b: readonly string[]): string[] => a.filter((x) => !b.includes(x));

/**
 * The difference from `from` (the version in force, or undefined) to `to`: rows by their key (requester
 * kind, procedure, provider kind), in `to`'s order for added and changed rows and `from`'s for removed
 * ones; catalogue items by code, sorted.
 */
export function diffAuthorizationTables(from: AuthorizationTable | undefined, to: AuthorizationTable): AuthorizationTableDiff {
  const before = new Map((from?.rows ?? []).map((r) => [keyOf(r), r]));
  const after = new Map(to.rows.map((r) => [keyOf(r), r]));
  const rowsAdded: DiffRow[] = [];
  const rowsChanged: RowChange[] = [];
  for (const [key, r] of after) {
    const old = before.get(key);
    if (old === undefined) {
      rowsAdded.push(diffRow(r));
      continue;
    }
    const o = diffRow(old);
    const n = diffRow(r);
    const change: RowChange = {
      requesterKind: r.requesterKind,
      procedure: r.procedure.code,
      providerKind: r.providerKind,
      itemsAdded: minus(n.items, o.items),
      itemsRemoved: minus(o.items, n.items),
      pushAdded: minus(n.push, o.push),
      pushRemoved: minus(o.push, n.push),
      procedureChanged: old.procedure.name !== r.procedure.name || old.procedure.nameEn !== r.procedure.nameEn || old.procedure.law !== r.procedure.law,
    };
    if (change.itemsAdded.length + change.itemsRemoved.length + change.pushAdded.length + change.pushRemoved.length > 0 || change.procedureChanged) rowsChanged.push(change);
  }
  const rowsRemoved = [...before].filter(([key]) => !after.has(key)).map(([, r]) => diffRow(r));
  const oldItems = new Map((from?.items ?? []).map((i) => [i.code, i]));
  const newItems = new Map(to.items.map((i) => [i.code, i]));
  const itemsAdded = [...newItems.keys()].filter((c) => !oldItems.has(c)).sort(order);
  const itemsRemoved = [...oldItems.keys()].filter((c) => !newItems.has(c)).sort(order);
  const itemsChanged = [...newItems]
    .filter(([c, i]) => {
      const o = oldItems.get(c);
      return o !== undefined && (o.name !== i.name || o.nameEn !== i.nameEn || o.description !== i.description || JSON.stringify(o.replaces ?? []) !== JSON.stringify(i.replaces ?? []));
    })
    .map(([c]) => c)
    .sort(order);
  return { ...(from === undefined ? {} : { againstVersion: from.version }), rowsAdded, rowsRemoved, rowsChanged, itemsAdded, itemsRemoved, itemsChanged };
}
