import type { InformationItemRef } from './authorization-table.js';
import type { Decider, Evolvable, LinkageCommand, LinkageEvent } from './decider.js';
import { LinkageError, unreachable } from './errors.js';
import { AGENCY_KINDS, isAgencyKind, isDisplayText, isInstant, isTableCode, requireDigest, requireInstant, type AgencyKind, type Sha256Hex } from './identifiers.js';

/**
 * The self-disclosure table (自己情報表示, 番号法附則第6条第6項第1号): per kind of providing agency, the
 * information items it discloses to the person themself through the hub. Its own published table, not a
 * column of the authorization table: that one is written in (requester kind, procedure, provider kind)
 * and answers "may this agency ask that one"; this one has no requesting agency at all and answers "may a
 * person see what this kind of agency holds about them". The content of
 * `schemas/authorization/self-disclosure-table.v*.json`; item codes are those of the authorization table.
 */
export interface SelfDisclosureRow {
  readonly providerKind: AgencyKind;
  readonly items: readonly InformationItemRef[];
}

export interface SelfDisclosureTable {
  readonly version: number;
  /** RFC 3339 instant from which this version is in force. */
  readonly effectiveFrom: string;
  readonly title?: string;
  readonly source?: string;
  readonly rows: readonly SelfDisclosureRow[];
}

/** The procedure code every self-information request carries in its events (and provision request). */
export const SELF_INFORMATION_PROCEDURE = 'self-information';

function isRecord(x: unknown): x is Record<string, unknown> {
  return typeof x === 'object' && x !== null && !Array.isArray(x);
}

/**
 * Checks a parsed table: shape, one row per provider kind, an item at most once per row, and one name per
 * item code across rows. Throws one INVALID_SELF_DISCLOSURE_TABLE error listing every problem.
 */
export function parseSelfDisclosureTable(json: unknown): SelfDisclosureTable {
  if (!isRecord(json)) throw new LinkageError('INVALID_SELF_DISCLOSURE_TABLE', 'the self-disclosure table must be a JSON object with "version", "effectiveFrom" and "rows"');
  const problems: string[] = [];
  for (const k of Object.keys(json)) if (!['$schema', 'version', 'effectiveFrom', 'title', 'source', 'rows'].includes(k)) problems.push(`table: unknown field "${k}"`);
  const { version, effectiveFrom, title, source } = json;
  if (typeof version !== 'number' || !Number.isSafeInteger(version) || version < 1) problems.push('"version" must be an integer ≥ 1');
  if (!isInstant(effectiveFrom)) problems.push('"effectiveFrom" must be an RFC 3339 timestamp with an offset');
  if (title !== undefined && !isDisplayText(title, 300)) problems.push('"title" must be trimmed text of at most 300 characters');
  if (source !== undefined && (typeof source !== 'string' || source.length === 0 || source.length > 2000)) problems.push('"source" must be text of at most 2000 characters');
  const rawRows = Array.isArray(json['rows']) ? (json['rows'] as unknown[]) : (problems.push('"rows" must be an array'), []);
  if (Array.isArray(json['rows']) && rawRows.length === 0) problems.push('"rows" must hold at least one row');
  const rows: SelfDisclosureRow[] = [];
  const kinds = new Set<string>();
  const names = new Map<string, InformationItemRef>();
  rawRows.forEach((raw, i) => {
    const at = `rows[${i}]`;
    if (!isRecord(raw)) return void problems.push(`${at} must be an object`);
    for (const k of Object.keys(raw)) if (k !== 'providerKind' && k !== 'items') problems.push(`${at}: unknown field "${k}"`);
    const kind = raw['providerKind'];
    if (!isAgencyKind(kind)) problems.push(`${at}.providerKind must be one of ${AGENCY_KINDS.join(', ')}`);
    else if (kinds.has(kind)) problems.push(`${at}: a second row for provider kind "${kind}"; merge their items into one row`);
    else kinds.add(kind);
    const rawItems = raw['items'];
    if (!Array.isArray(rawItems) || rawItems.length === 0) problems.push(`${at}.items must list at least one information item`);
    const items: InformationItemRef[] = [];
    (Array.isArray(rawItems) ? (rawItems as unknown[]) : []).forEach((r, j) => {
      const itemAt = `${at}.items[${j}]`;
      if (!isRecord(r)) return void problems.push(`${itemAt} must be an object`);
      for (const k of Object.keys(r)) if (!['code', 'name', 'nameEn'].includes(k)) problems.push(`${itemAt}: unknown field "${k}"`);
      const { code, name, nameEn } = r;
      if (!isTableCode(code)) return void problems.push(`${itemAt}.code must be a kebab-case item code of the authorization table`);
      if (!isDisplayText(name) || !isDisplayText(nameEn)) return void problems.push(`${itemAt}: name and nameEn must be trimmed text of 1–200 characters`);
      if (items.some((x) => x.code === code)) return void problems.push(`${itemAt}: item "${code}" is listed twice in this row`);
      const known = names.get(code);
      if (known !== undefined && (known.name !== name || known.nameEn !== nameEn)) problems.push(`${itemAt}: item "${code}" is named differently in an earlier row; an item code names one item`);
      const ref = { code, name, nameEn };
      names.set(code, ref);
      items.push(ref);
    });
    if (isAgencyKind(kind)) rows.push({ providerKind: kind, items });
  });
  if (problems.length > 0) {
    throw new LinkageError('INVALID_SELF_DISCLOSURE_TABLE', `the self-disclosure table has ${problems.length} problem(s): ${problems.join('; ')}`, { problems });
  }
  return {
    version: version as number,
    effectiveFrom: effectiveFrom as string,
    ...(typeof title === 'string' ? { title } : {}),
    ...(typeof source === 'string' ? { source } : {}),
    rows,
  };
}

// ---- the policy ----

/** One version of the self-disclosure table, indexed: provider kind → the items it discloses. */
export interface SelfDisclosurePolicy {
  readonly version: number;
  readonly effectiveFrom: string;
  readonly effectiveFromMs: number;
  readonly byKind: ReadonlyMap<AgencyKind, readonly InformationItemRef[]>;
}

export function compileSelfDisclosurePolicy(table: SelfDisclosureTable): SelfDisclosurePolicy {
  return {
    version: table.version,
    effectiveFrom: table.effectiveFrom,
    effectiveFromMs: Date.parse(table.effectiveFrom),
    byKind: new Map(table.rows.map((r) => [r.providerKind, r.items])),
  };
}

/** Why a self-information request is refused by the table. Each is the reason of a QueryDenied (I6). */
export type SelfDisclosureRefusalCode = 'SELF_DISCLOSURE_TABLE_NOT_IN_FORCE' | 'SELF_DISCLOSURE_NOT_ALLOWED';

export type SelfDisclosureDecision =
  | { readonly allowed: true; readonly tableVersion: number; readonly item: InformationItemRef }
  | {
      readonly allowed: false;
      readonly reason: SelfDisclosureRefusalCode;
      readonly message: string;
      /** The version in force, when there is one. */
      readonly tableVersion?: number;
      /** SELF_DISCLOSURE_NOT_ALLOWED: what the provider's kind does disclose (empty: nothing). */
      readonly allowedItems?: readonly string[];
    };

/** The items a provider of this kind discloses under `policy` (none when no version is in force). */
export function disclosedItems(policy: SelfDisclosurePolicy | undefined, providerKind: AgencyKind): readonly InformationItemRef[] {
  return policy?.byKind.get(providerKind) ?? [];
}

/**
 * May a person see `itemCode` as held by a provider of `providerKind`, under `policy` (the version in
 * force at `at`; undefined when none is)? Checks in order: a version in force, then the row of the kind
 * and its items. Throws MALFORMED only for a request that cannot be judged (an ill-formed code or instant).
 */
export function authorizeSelfDisclosure(policy: SelfDisclosurePolicy | undefined, request: { readonly providerKind: AgencyKind; readonly itemCode: string; readonly at: string }): SelfDisclosureDecision {
  const { providerKind, itemCode, at } = request;
  if (!isTableCode(itemCode)) throw new LinkageError('MALFORMED', 'itemCode must be a kebab-case information item code of the authorization table, e.g. "local-tax"');
  const atMs = Date.parse(at);
  if (!isInstant(at) || Number.isNaN(atMs)) throw new LinkageError('MALFORMED', 'at must be an RFC 3339 timestamp');
  if (policy === undefined) {
    return { allowed: false, reason: 'SELF_DISCLOSURE_TABLE_NOT_IN_FORCE', message: 'no self-disclosure table version is in force at this time; no self-information request can be allowed until one is published' };
  }
  if (policy.effectiveFromMs > atMs) {
    return { allowed: false, reason: 'SELF_DISCLOSURE_TABLE_NOT_IN_FORCE', message: `self-disclosure table version ${policy.version} takes effect only at ${policy.effectiveFrom}`, tableVersion: policy.version };
  }
  const items = policy.byKind.get(providerKind);
  if (items === undefined) {
    return {
      allowed: false,
      reason: 'SELF_DISCLOSURE_NOT_ALLOWED',
      message: `under self-disclosure table version ${policy.version} a ${providerKind} discloses no information to the person themself`,
      tableVersion: policy.version,
      allowedItems: [],
    };
  }
  const item = items.find((i) => i.code === itemCode);
  if (item === undefined) {
    return {
      allowed: false,
      reason: 'SELF_DISCLOSURE_NOT_ALLOWED',
      message: `under self-disclosure table version ${policy.version} a ${providerKind} discloses ${items.map((i) => i.code).join(', ')} to the person themself, not ${itemCode}`,
      tableVersion: policy.version,
      allowedItems: items.map((i) => i.code),
    };
  }
  return { allowed: true, tableVersion: policy.version, item };
}

// ---- publication: one stream, each version an event holding the whole table ----

export const SELF_DISCLOSURE_TABLE_STREAM = 'self-disclosure-table';

export interface PublishSelfDisclosureTableData {
  /** The table as read from its JSON file; the decider validates it (parseSelfDisclosureTable). */
  readonly table: unknown;
  /** SHA-256 of the table's RFC 8785 canonical JSON, computed by the caller. */
  readonly digest: string;
  readonly publishedAt: string;
}
export type PublishSelfDisclosureTable = LinkageCommand<'PublishSelfDisclosureTable', PublishSelfDisclosureTableData>;

export interface SelfDisclosureTablePublishedData {
  readonly version: number;
  readonly effectiveFrom: string;
  readonly digest: Sha256Hex;
  readonly publishedAt: string;
  readonly table: SelfDisclosureTable;
}
export type SelfDisclosureTablePublished = LinkageEvent<'SelfDisclosureTablePublished', SelfDisclosureTablePublishedData>;

export interface PublishedSelfDisclosureTable {
  readonly version: number;
  readonly effectiveFrom: string;
  readonly effectiveFromMs: number;
  readonly digest: Sha256Hex;
  readonly publishedAt: string;
  readonly table: SelfDisclosureTable;
}

export type SelfDisclosureTablesState =
  | { readonly status: 'unpublished' }
  /** In publication order, which is also version order and effective-from order. */
  | { readonly status: 'published'; readonly versions: readonly PublishedSelfDisclosureTable[] };

export function initialSelfDisclosureTablesState(): SelfDisclosureTablesState {
  return { status: 'unpublished' };
}

export function evolveSelfDisclosureTables(state: SelfDisclosureTablesState, event: Evolvable<SelfDisclosureTablePublished>): SelfDisclosureTablesState {
  switch (event.type) {
    case 'SelfDisclosureTablePublished': {
      const d = event.data;
      const published: PublishedSelfDisclosureTable = { version: d.version, effectiveFrom: d.effectiveFrom, effectiveFromMs: Date.parse(d.effectiveFrom), digest: d.digest, publishedAt: d.publishedAt, table: d.table };
      return { status: 'published', versions: state.status === 'published' ? [...state.versions, published] : [published] };
    }
    default:
      return unreachable(event.type, 'type');
  }
}

export function decideSelfDisclosureTables(command: PublishSelfDisclosureTable, state: SelfDisclosureTablesState): readonly SelfDisclosureTablePublished[] {
  switch (command.type) {
    case 'PublishSelfDisclosureTable':
      return [publish(command.data, state)];
    default:
      return unreachable(command.type, 'type');
  }
}

export const selfDisclosureTablesDecider: Decider<SelfDisclosureTablesState, PublishSelfDisclosureTable, SelfDisclosureTablePublished, Evolvable<SelfDisclosureTablePublished>> = {
  initialState: initialSelfDisclosureTablesState,
  evolve: evolveSelfDisclosureTables,
  decide: decideSelfDisclosureTables,
};

/** The version in force at `at` (the latest effectiveFrom not after it; the higher version on a tie), or undefined. */
export function selfDisclosureTableInForce(state: SelfDisclosureTablesState, at: string): PublishedSelfDisclosureTable | undefined {
  if (state.status === 'unpublished') return undefined;
  const atMs = Date.parse(at);
  if (Number.isNaN(atMs)) throw new LinkageError('MALFORMED', 'at must be an RFC 3339 timestamp');
  let best: PublishedSelfDisclosureTable | undefined;
  for (const v of state.versions) {
    if (v.effectiveFromMs > atMs) continue;
    if (!best || v.effectiveFromMs > best.effectiveFromMs || (v.effectiveFromMs === best.effectiveFromMs && v.version > best.version)) best = v;
  }
  return best;
}

function publish(c: PublishSelfDisclosureTableData, state: SelfDisclosureTablesState): SelfDisclosureTablePublished {
  const table = parseSelfDisclosureTable(c.table);
  const digest = requireDigest(c.digest, 'digest');
  const publishedAt = requireInstant(c.publishedAt, 'publishedAt');
  if (state.status === 'published') {
    const latest = state.versions[state.versions.length - 1]!;
    if (table.version <= latest.version) {
      throw new LinkageError('TABLE_VERSION_NOT_NEWER', `self-disclosure table version ${table.version} is not newer than the latest published version ${latest.version}; number the new table ${latest.version + 1} or higher`, {
        version: table.version,
        latestVersion: latest.version,
      });
    }
    const effectiveMs = Date.parse(table.effectiveFrom);
    if (effectiveMs < latest.effectiveFromMs || effectiveMs < Date.parse(publishedAt)) {
      throw new LinkageError(
        'TABLE_NOT_EFFECTIVE',
        `self-disclosure table version ${table.version} would take effect at ${table.effectiveFrom}, before version ${latest.version} (${latest.effectiveFrom}) or before its own publication (${publishedAt}): requests already decided cannot be re-judged; set effectiveFrom to now or later`,
        { version: table.version, effectiveFrom: table.effectiveFrom },
      );
    }
  }
  return {
    type: 'SelfDisclosureTablePublished',
    schemaVersion: 1,
    data: { version: table.version, effectiveFrom: table.effectiveFrom, digest, publishedAt, table },
    terminal: 'completed',
  };
}
