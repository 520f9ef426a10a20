import { LinkageError } from './errors.js';
import { AGENCY_KINDS, isAgencyKind, isDisplayText, isInstant, isTableCode, type AgencyKind } from './identifiers.js';

/**
 * The authorization table (別表第二 style): which requester kind may ask which provider kind for which
 * information items, for which procedure. The content of `schemas/authorization/authorization-table.v*.json`.
 */

export interface InformationItemRef {
  readonly code: string;
  readonly name: string;
  readonly nameEn: string;
}

export interface InformationItem extends InformationItemRef {
  readonly description?: string;
  /** Paper documents a resident no longer brings when this item is linked (添付書類の省略). */
  readonly replaces?: readonly string[];
}

export interface Procedure {
  readonly code: string;
  readonly name: string;
  readonly nameEn: string;
  /** The statute the procedure rests on (根拠法). */
  readonly law?: string;
}

export interface AuthorizationRow {
  readonly requesterKind: AgencyKind;
  readonly procedure: Procedure;
  readonly providerKind: AgencyKind;
  readonly items: readonly InformationItemRef[];
  /**
   * Format 2: the item codes (a subset of `items`) the requester kind may subscribe to (プッシュ型): it is
   * told when the provider's copy of the item changes for a person it subscribed to, and fetches the new
   * value by an ordinary query of this row. Absent or empty: no push for this row.
   */
  readonly push?: readonly string[];
}

export interface AuthorizationTable {
  readonly version: number;
  /** RFC 3339 instant from which this version is in force. */
  readonly effectiveFrom: string;
  readonly title?: string;
  readonly source?: string;
  readonly items: readonly InformationItem[];
  readonly rows: readonly AuthorizationRow[];
}

function isRecord(x: unknown): x is Record<string, unknown> {
  return typeof x === 'object' && x !== null && !Array.isArray(x);
}

function onlyKeys(x: Record<string, unknown>, allowed: readonly string[], at: string, problems: string[]): void {
  for (const k of Object.keys(x)) if (!allowed.includes(k)) problems.push(`${at}: unknown field "${k}"`);
}

/**
 * Checks a parsed table: shape, and the invariants JSON Schema cannot express. A procedure code names
 * one procedure (the same name wherever it appears); each (requester kind, procedure, provider kind)
 * has at most one row; every item of a row is defined in `items`, with the same names; item codes are
 * unique. Throws one INVALID_AUTHORIZATION_TABLE error listing every problem, so a data fix needs one round.
 */
export function parseAuthorizationTable(json: unknown): AuthorizationTable {
  const problems: string[] = [];
  if (!isRecord(json)) {
    throw new LinkageError('INVALID_AUTHORIZATION_TABLE', 'the authorization table must be a JSON object with "version", "effectiveFrom", "items" and "rows"');
  }
  onlyKeys(json, ['$schema', 'version', 'effectiveFrom', 'title', 'source', 'items', 'rows'], 'table', problems);
  const { version, effectiveFrom, title, source } = json;
  if (typeof version !== 'number' || !Number.isSafeInteger(version) || version < 1) problems.push('"version" must be an integer ≥ 1');
  if (!isInstant(effectiveFrom)) problems.push('"effectiveFrom" must be an RFC 3339 timestamp with an offset');
  if (title !== undefined && !isDisplayText(title, 300)) problems.push('"title" must be trimmed text of at most 300 characters');
  if (source !== undefined && (typeof source !== 'string' || source.length === 0 || source.length > 2000)) problems.push('"source" must be text of at most 2000 characters');

  const items: InformationItem[] = [];
  const catalogue = new Map<string, InformationItem>();
  const rawItems = Array.isArray(json['items']) ? (json['items'] as unknown[]) : (problems.push('"items" must be an array'), []);
  if (Array.isArray(json['items']) && rawItems.length === 0) problems.push('"items" must define at least one information item');
  rawItems.forEach((raw, i) => {
    const at = `items[${i}]`;
    if (!isRecord(raw)) return void problems.push(`${at} must be an object`);
    onlyKeys(raw, ['code', 'name', 'nameEn', 'description', 'replaces'], at, problems);
    const ref = itemRef(raw, at, problems);
    const { description, replaces } = raw;
    if (description !== undefined && (typeof description !== 'string' || description.length === 0 || description.length > 500)) problems.push(`${at}.description must be text of at most 500 characters`);
    if (replaces !== undefined && (!Array.isArray(replaces) || !replaces.every((r) => isDisplayText(r)))) problems.push(`${at}.replaces must be a list of document names`);
    if (!ref) return;
    if (catalogue.has(ref.code)) return void problems.push(`${at}: item code "${ref.code}" is defined twice`);
    const item: InformationItem = {
      ...ref,
      ...(typeof description === 'string' ? { description } : {}),
      ...(Array.isArray(replaces) ? { replaces: replaces as string[] } : {}),
    };
    catalogue.set(ref.code, item);
    items.push(item);
  });

  const rows: AuthorizationRow[] = [];
  const procedures = new Map<string, Procedure>();
  const seenRows = new Set<string>();
  const rawRows = Array.isArray(json['rows']) ? (json['rows'] as unknown[]) : (problems.push('"rows" must be an array'), []);
  if (Array.isArray(json['rows']) && rawRows.length === 0) problems.push('"rows" must hold at least one row');
  rawRows.forEach((raw, i) => {
    const at = `rows[${i}]`;
    if (!isRecord(raw)) return void problems.push(`${at} must be an object`);
    onlyKeys(raw, ['requesterKind', 'procedure', 'providerKind', 'items', 'push'], at, problems);
    const { requesterKind, providerKind, procedure } = raw;
    const kindsOk = checkKind(requesterKind, `${at}.requesterKind`, problems) && checkKind(providerKind, `${at}.providerKind`, problems);
    const proc = procedureOf(procedure, `${at}.procedure`, problems);
    const refs: InformationItemRef[] = [];
    const rawRefs = raw['items'];
    if (!Array.isArray(rawRefs) || rawRefs.length === 0) problems.push(`${at}.items must list at least one information item`);
    const seenItems = new Set<string>();
    (Array.isArray(rawRefs) ? (rawRefs as unknown[]) : []).forEach((r, j) => {
      const itemAt = `${at}.items[${j}]`;
      if (!isRecord(r)) return void problems.push(`${itemAt} must be an object`);
      onlyKeys(r, ['code', 'name', 'nameEn'], itemAt, problems);
      const ref = itemRef(r, itemAt, problems);
      if (!ref) return;
      if (seenItems.has(ref.code)) return void problems.push(`${itemAt}: item "${ref.code}" is listed twice in this row`);
      seenItems.add(ref.code);
      const defined = catalogue.get(ref.code);
      if (!defined) return void problems.push(`${itemAt}: item "${ref.code}" is not defined in "items"`);
      if (defined.name !== ref.name || defined.nameEn !== ref.nameEn) {
        problems.push(`${itemAt}: item "${ref.code}" is named "${ref.name}" / "${ref.nameEn}" here but "${defined.name}" / "${defined.nameEn}" in "items"`);
      }
      refs.push(ref);
    });
    const push = pushOf(raw['push'], refs, at, problems);
    if (!kindsOk || !proc) return;
    const known = procedures.get(proc.code);
    if (known && (known.name !== proc.name || known.nameEn !== proc.nameEn || known.law !== proc.law)) {
      problems.push(`${at}: procedure "${proc.code}" is described differently from an earlier row; a procedure code names one procedure`);
    }
    if (!known) procedures.set(proc.code, proc);
    const key = `${requesterKind as string}\u0000${proc.code}\u0000${providerKind as string}`;
    if (seenRows.has(key)) {
      problems.push(`${at}: a second row for requester kind "${requesterKind as string}", procedure "${proc.code}" and provider kind "${providerKind as string}"; merge their items into one row`);
    }
    seenRows.add(key);
    rows.push({ requesterKind: requesterKind as AgencyKind, procedure: proc, providerKind: providerKind as AgencyKind, items: refs, ...(push === undefined ? {} : { push }) });
  });

  if (problems.length > 0) {
    throw new LinkageError('INVALID_AUTHORIZATION_TABLE', `the authorization table has ${problems.length} problem(s): ${problems.join('; ')}`, { problems });
  }
  return {
    version: version as number,
    effectiveFrom: effectiveFrom as string,
    ...(typeof title === 'string' ? { title } : {}),
    ...(typeof source === 'string' ? { source } : {}),
    items,
    rows,
  };
}

/** A row's `push` (format 2): distinct item codes, each one of the row's own items. */
function pushOf(raw: unknown, refs: readonly InformationItemRef[], at: string, problems: string[]): readonly string[] | undefined {
  if (raw === undefined) return undefined;
  if (!Array.isArray(raw)) {
    problems.push(`${at}.push must be a list of item codes of the row`);
    return undefined;
  }
  const codes: string[] = [];
  (raw as unknown[]).forEach((c, j) => {
    const pushAt = `${at}.push[${j}]`;
    if (!isTableCode(c)) return void problems.push(`${pushAt} must be a kebab-case item code`);
    if (codes.includes(c)) return void problems.push(`${pushAt}: item "${c}" is listed twice in push`);
    if (!refs.some((r) => r.code === c)) return void problems.push(`${pushAt}: item "${c}" is not one of the row's items; a row allows push only for items it allows to query`);
    codes.push(c);
  });
  return codes;
}

function checkKind(kind: unknown, at: string, problems: string[]): boolean {
  if (isAgencyKind(kind)) return true;
  problems.push(`${at} must be one of ${AGENCY_KINDS.join(', ')}`);
  return false;
}

function itemRef(raw: Record<string, unknown>, at: string, problems: string[]): InformationItemRef | undefined {
  const { code, name, nameEn } = raw;
  const before = problems.length;
  if (!isTableCode(code)) problems.push(`${at}.code must be a kebab-case code of at most 64 characters`);
  if (!isDisplayText(name)) problems.push(`${at}.name must be trimmed text of 1–200 characters`);
  if (!isDisplayText(nameEn)) problems.push(`${at}.nameEn must be trimmed text of 1–200 characters`);
  return problems.length === before ? { code: code as string, name: name as string, nameEn: nameEn as string } : undefined;
}

function procedureOf(raw: unknown, at: string, problems: string[]): Procedure | undefined {
  if (!isRecord(raw)) {
    problems.push(`${at} must be an object with code, name and nameEn`);
    return undefined;
  }
  onlyKeys(raw, ['code', 'name', 'nameEn', 'law'], at, problems);
  const ref = itemRef(raw, at, problems);
  const { law } = raw;
  if (law !== undefined && !isDisplayText(law)) {
    problems.push(`${at}.law must be trimmed text of 1–200 characters`);
    return undefined;
  }
  return ref ? { ...ref, ...(typeof law === 'string' ? { law } : {}) } : undefined;
}
