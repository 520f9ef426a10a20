import {
  type AuthorizationDecision,
  type AuthorizationPolicy,
  type AuthorizationRequest,
  type AuthorizationTablePublished,
  type AuthorizationTableWithdrawn,
  type AuthorizationTablesState,
  LinkageError,
  type PublishedTable,
  type PublishedSelfDisclosureTable,
  type SelfDisclosureDecision,
  type SelfDisclosurePolicy,
  type SelfDisclosureTablePublished,
  type SelfDisclosureTablesState,
  SELF_INFORMATION_PROCEDURE,
  authorize,
  authorizeSelfDisclosure,
  compileAuthorizationPolicy,
  compileSelfDisclosurePolicy,
  evolveAuthorizationTables,
  evolveSelfDisclosureTables,
  initialAuthorizationTablesState,
  initialSelfDisclosureTablesState,
  isAgencyKind,
  parseAuthorizationTable,
  parseSelfDisclosureTable,
  selfDisclosureTableInForce,
  tableInForce,
} from '#linkage';
import type { FindingCode } from './findings.js';

/**
 * QueryAccepted schema versions whose clear fields this auditor reads (2 adds a sealed object beside them;
 * 3 is a citizen's own self-information request, judged against the self-disclosure table in force).
 */
export const QUERY_ACCEPTED_SCHEMA_VERSIONS: readonly number[] = [1, 2, 3];
/** The schema version of a self-information request's QueryAccepted. */
export const SELF_INFORMATION_SCHEMA_VERSION = 3;

/** The clear fields a query is judged by, with their types checked. */
export interface ClearFields {
  readonly schemaVersion: number;
  readonly tableVersion: number;
  readonly requesterKind: string;
  readonly procedureCode: string;
  readonly providerKind: string;
  readonly itemCodes: readonly string[];
}

/** One distinct shape of accepted query (see ChunkQueries): its fields, or why they cannot be read, and its decision once made. */
export interface QueryShape {
  readonly fields: ClearFields | string;
  decision?: AuthorizationDecision | SelfDisclosureDecision | string;
}

/** Why a query is not shown lawful: a finding's code, message, what the table says and what the query says. */
export interface Unlawful {
  readonly code: Extract<FindingCode, 'QUERY_NOT_LAWFUL' | 'QUERY_TABLE_VERSION_NOT_IN_FORCE' | 'QUERY_MALFORMED'>;
  readonly message: string;
  readonly expected: string | number | null;
  readonly calculated: string | number | null;
  readonly field?: string;
}

/**
 * The clear fields of a shape text, the JSON of [schemaVersion, tableVersion, requesterKind,
 * procedureCode, providerKind, itemCodes] (or "!" and why the worker could not read them), or why they
 * cannot be judged.
 */
export function readShape(text: string): ClearFields | string {
  if (text.startsWith('!')) return text.slice(1);
  const [schemaVersion, tableVersion, requesterKind, procedureCode, providerKind, itemCodes] = JSON.parse(text) as unknown[];
  if (!QUERY_ACCEPTED_SCHEMA_VERSIONS.includes(schemaVersion as number)) {
    return `QueryAccepted of schema version ${String(schemaVersion)}: this auditor reads versions ${QUERY_ACCEPTED_SCHEMA_VERSIONS.join(' and ')}`;
  }
  const illTyped = [
    typeof requesterKind === 'string' ? undefined : 'requesterKind',
    typeof procedureCode === 'string' ? undefined : 'procedureCode',
    typeof providerKind === 'string' ? undefined : 'providerKind',
    Array.isArray(itemCodes) && itemCodes.every((c) => typeof c === 'string') ? undefined : 'itemCodes',
    Number.isSafeInteger(tableVersion) ? undefined : 'tableVersion',
  ].filter((f) => f !== undefined);
  if (illTyped.length > 0) return `its clear fields ${illTyped.join(', ')} are missing or ill-typed, so it cannot be judged`;
  if (schemaVersion === SELF_INFORMATION_SCHEMA_VERSION) {
    if (requesterKind !== 'citizen' || procedureCode !== SELF_INFORMATION_PROCEDURE || (itemCodes as unknown[]).length !== 1) {
      return `QueryAccepted of schema version 3 is a citizen's self-information request: requesterKind "citizen", procedureCode "${SELF_INFORMATION_PROCEDURE}" and one item, not ${JSON.stringify([requesterKind, procedureCode, itemCodes])}`;
    }
  }
  return { schemaVersion, tableVersion, requesterKind, procedureCode, providerKind, itemCodes } as ClearFields;
}

/**
 * The authorization table versions published so far in the log, in log order, and the judgement of each
 * accepted query against the version in force at its acceptedAt (I6; I10: from the raw log alone).
 * Policies are compiled once per version, each distinct query shape is decided once: a log holds few
 * shapes, so a million queries cost the main thread a million look-ups.
 */
export class Lawfulness {
  private state: AuthorizationTablesState = initialAuthorizationTablesState();
  /** From each instant a version takes effect, the version then in force (tableInForce's rule), latest first. */
  private inForceFrom: { readonly fromMs: number; readonly table: PublishedTable }[] = [];
  private readonly policies = new Map<number, AuthorizationPolicy>();
  private readonly shapes = new Map<string, QueryShape>();
  private selfDisclosure: SelfDisclosureTablesState = initialSelfDisclosureTablesState();
  private selfDisclosureFrom: { readonly fromMs: number; readonly table: PublishedSelfDisclosureTable }[] = [];
  private readonly selfDisclosurePolicies = new Map<number, SelfDisclosurePolicy>();

  /** Adds a published version; returns why it cannot be used, or undefined. */
  publish(data: unknown): string | undefined {
    const d = data as Partial<AuthorizationTablePublished['data']> | undefined;
    let table;
    try {
      table = parseAuthorizationTable(d?.table);
    } catch (error) {
      return `its table is not a valid authorization table: ${(error as Error).message}`;
    }
    if (d?.version !== table.version || d.effectiveFrom !== table.effectiveFrom) {
      return `its fields (version ${String(d?.version)}, effectiveFrom ${String(d?.effectiveFrom)}) differ from its table's (version ${table.version}, effectiveFrom ${table.effectiveFrom})`;
    }
    if (this.state.status === 'published' && this.state.versions.some((v) => v.version === table.version)) return `version ${table.version} was already published earlier in the log`;
    this.state = evolveAuthorizationTables(this.state, { type: 'AuthorizationTablePublished', data: { ...d, table } as AuthorizationTablePublished['data'] });
    this.#inForceInstants();
    return undefined;
  }

  /**
   * Withdraws a version before it took effect (AuthorizationTableWithdrawn): it is never in force. Returns
   * why the withdrawal cannot be honoured (the version then stays as published), or undefined.
   */
  withdraw(data: unknown): string | undefined {
    const d = data as Partial<AuthorizationTableWithdrawn['data']> | undefined;
    const target = this.state.status === 'published' ? this.state.versions.find((v) => v.version === d?.version) : undefined;
    if (target === undefined) return `it withdraws version ${String(d?.version)}, which was not published earlier in the log`;
    if (target.withdrawnAt !== undefined) return `version ${target.version} was withdrawn already`;
    const atMs = typeof d?.withdrawnAt === 'string' ? Date.parse(d.withdrawnAt) : Number.NaN;
    if (!(atMs < target.effectiveFromMs)) return `it withdraws version ${target.version} at ${String(d?.withdrawnAt)}, not before its effectiveFrom ${target.effectiveFrom}: a version that took effect cannot be withdrawn`;
    this.state = evolveAuthorizationTables(this.state, { type: 'AuthorizationTableWithdrawn', data: d as AuthorizationTableWithdrawn['data'] });
    this.#inForceInstants();
    return undefined;
  }

  /** The version in force changes only at the instants versions take effect: one tableInForce per instant (none when all are withdrawn). */
  #inForceInstants(): void {
    const state = this.state;
    const instants = state.status === 'published' ? [...new Set(state.versions.map((v) => v.effectiveFromMs))].sort((a, b) => b - a) : [];
    this.inForceFrom = instants.flatMap((fromMs) => {
      const table = tableInForce(state, new Date(fromMs).toISOString());
      return table === undefined ? [] : [{ fromMs, table }];
    });
  }

  /** Adds a published self-disclosure table version (自己情報表示); returns why it cannot be used, or undefined. */
  publishSelfDisclosure(data: unknown): string | undefined {
    const d = data as Partial<SelfDisclosureTablePublished['data']> | undefined;
    let table;
    try {
      table = parseSelfDisclosureTable(d?.table);
    } catch (error) {
      return `its table is not a valid self-disclosure table: ${(error as Error).message}`;
    }
    if (d?.version !== table.version || d.effectiveFrom !== table.effectiveFrom) {
      return `its fields (version ${String(d?.version)}, effectiveFrom ${String(d?.effectiveFrom)}) differ from its table's (version ${table.version}, effectiveFrom ${table.effectiveFrom})`;
    }
    if (this.selfDisclosure.status === 'published' && this.selfDisclosure.versions.some((v) => v.version === table.version)) return `version ${table.version} was already published earlier in the log`;
    this.selfDisclosure = evolveSelfDisclosureTables(this.selfDisclosure, { type: 'SelfDisclosureTablePublished', data: { ...d, table } as SelfDisclosureTablePublished['data'] });
    const state = this.selfDisclosure;
    const instants = state.status === 'published' ? [...new Set(state.versions.map((v) => v.effectiveFromMs))].sort((a, b) => b - a) : [];
    this.selfDisclosureFrom = instants.map((fromMs) => ({ fromMs, table: selfDisclosureTableInForce(state, new Date(fromMs).toISOString())! }));
    return undefined;
  }

  /** The shape of a worker's shape text, read once per distinct text. */
  shape(text: string): QueryShape {
    let shape = this.shapes.get(text);
    if (shape === undefined) this.shapes.set(text, (shape = { fields: readShape(text) }));
    return shape;
  }

  /** The version in force at an instant, as tableInForce says. */
  inForceAt(atMs: number): PublishedTable | undefined {
    for (const v of this.inForceFrom) if (v.fromMs <= atMs) return v.table;
    return undefined;
  }

  /** Judges one accepted query: undefined when the version in force at its time allowed it. */
  judge(shape: QueryShape, atMs: number): Unlawful | undefined {
    const fields = shape.fields;
    if (typeof fields === 'string') return { code: 'QUERY_MALFORMED', message: fields, expected: null, calculated: null };
    if (Number.isNaN(atMs)) return { code: 'QUERY_MALFORMED', message: 'its acceptedAt is missing or not an RFC 3339 timestamp, so it cannot be judged', expected: null, calculated: null, field: 'acceptedAt' };
    if (fields.schemaVersion === SELF_INFORMATION_SCHEMA_VERSION) return this.judgeSelfInformation(shape, fields, atMs);
    // No closure here: this runs once per accepted query.
    const inForce = this.inForceAt(atMs);
    if (inForce === undefined || inForce.version !== fields.tableVersion) {
      return {
        code: 'QUERY_TABLE_VERSION_NOT_IN_FORCE',
        message:
          inForce === undefined
            ? `it was accepted at ${new Date(atMs).toISOString()} under authorization table version ${fields.tableVersion}, but no version published earlier in the log is in force at that time`
            : `it was accepted at ${new Date(atMs).toISOString()} under authorization table version ${fields.tableVersion}, but the version in force then (published earlier in the log) is ${inForce.version}, effective from ${inForce.effectiveFrom}`,
        expected: inForce?.version ?? 'no version in force',
        calculated: fields.tableVersion,
        field: 'tableVersion',
      };
    }
    // The shape names its version, and that version is in force: its decision holds whenever it is.
    shape.decision ??= this.decide(fields, inForce, new Date(atMs).toISOString());
    const decision = shape.decision as AuthorizationDecision | string;
    if (typeof decision === 'string') return { code: 'QUERY_MALFORMED', message: decision, expected: null, calculated: null };
    return decision.allowed ? undefined : unlawful(decision, fields);
  }

  /** A citizen's self-information request: the self-disclosure table in force at its time discloses the item from the provider's kind. */
  private judgeSelfInformation(shape: QueryShape, fields: ClearFields, atMs: number): Unlawful | undefined {
    let inForce: PublishedSelfDisclosureTable | undefined;
    for (const v of this.selfDisclosureFrom) {
      if (v.fromMs <= atMs) {
        inForce = v.table;
        break;
      }
    }
    if (inForce === undefined || inForce.version !== fields.tableVersion) {
      return {
        code: 'QUERY_TABLE_VERSION_NOT_IN_FORCE',
        message:
          inForce === undefined
            ? `the self-information request was accepted at ${new Date(atMs).toISOString()} under self-disclosure table version ${fields.tableVersion}, but no version published earlier in the log is in force at that time`
            : `the self-information request was accepted at ${new Date(atMs).toISOString()} under self-disclosure table version ${fields.tableVersion}, but the version in force then (published earlier in the log) is ${inForce.version}, effective from ${inForce.effectiveFrom}`,
        expected: inForce?.version ?? 'no version in force',
        calculated: fields.tableVersion,
        field: 'tableVersion',
      };
    }
    if (shape.decision === undefined) {
      let policy = this.selfDisclosurePolicies.get(inForce.version);
      if (policy === undefined) this.selfDisclosurePolicies.set(inForce.version, (policy = compileSelfDisclosurePolicy(inForce.table)));
      try {
        shape.decision = isAgencyKind(fields.providerKind)
          ? authorizeSelfDisclosure(policy, { providerKind: fields.providerKind, itemCode: fields.itemCodes[0]!, at: new Date(atMs).toISOString() })
          : { allowed: false, reason: 'SELF_DISCLOSURE_NOT_ALLOWED', message: `"${fields.providerKind}" is not a kind of agency`, tableVersion: inForce.version, allowedItems: [] };
      } catch (error) {
        if (!(error instanceof LinkageError)) throw error;
        shape.decision = `its request cannot be judged: ${error.message}`;
      }
    }
    const decision = shape.decision;
    if (typeof decision === 'string') return { code: 'QUERY_MALFORMED', message: decision, expected: null, calculated: null };
    if (decision.allowed) return undefined;
    const message = `self-disclosure table version ${fields.tableVersion} does not allow it (${decision.reason}): ${decision.message}`;
    const allowedItems = 'allowedItems' in decision ? decision.allowedItems : undefined;
    if (decision.reason === 'SELF_DISCLOSURE_TABLE_NOT_IN_FORCE') return { code: 'QUERY_TABLE_VERSION_NOT_IN_FORCE', message, expected: decision.tableVersion ?? 'no version in force', calculated: fields.tableVersion, field: 'tableVersion' };
    if (decision.reason === 'SELF_DISCLOSURE_NOT_ALLOWED') return { code: 'QUERY_NOT_LAWFUL', message, expected: (allowedItems ?? []).join(', '), calculated: fields.itemCodes.join(', '), field: 'itemCodes' };
    return { code: 'QUERY_NOT_LAWFUL', message, expected: null, calculated: fields.itemCodes.join(', '), field: 'itemCodes' };
  }

  private decide(fields: ClearFields, table: PublishedTable, at: string): AuthorizationDecision | string {
    let policy = this.policies.get(table.version);
    if (policy === undefined) this.policies.set(table.version, (policy = compileAuthorizationPolicy(table.table)));
    const { requesterKind, procedureCode, providerKind, itemCodes } = fields;
    try {
      // The hub's own rule; a kind outside AGENCY_KINDS is in no row, so it is refused like any kind not allowed.
      return authorize(policy, { requesterKind, procedureCode, providerKind, itemCodes, at } as AuthorizationRequest);
    } catch (error) {
      if (!(error instanceof LinkageError)) throw error;
      return `its request cannot be judged: ${error.message}`;
    }
  }
}

/** What the table allows against what the query asked, for the refusal the policy gives. */
function unlawful(d: Extract<AuthorizationDecision, { allowed: false }>, q: ClearFields): Unlawful {
  const message = `authorization table version ${q.tableVersion} does not allow it (${d.reason}): ${d.message}`;
  switch (d.reason) {
    case 'UNKNOWN_PROCEDURE':
      return { code: 'QUERY_NOT_LAWFUL', message, expected: `a procedure of version ${q.tableVersion}`, calculated: q.procedureCode, field: 'procedureCode' };
    case 'REQUESTER_KIND_NOT_ALLOWED':
      return { code: 'QUERY_NOT_LAWFUL', message, expected: (d.allowedRequesterKinds ?? []).join(', '), calculated: q.requesterKind, field: 'requesterKind' };
    case 'PROVIDER_KIND_NOT_ALLOWED':
      return { code: 'QUERY_NOT_LAWFUL', message, expected: (d.allowedProviderKinds ?? []).join(', '), calculated: q.providerKind, field: 'providerKind' };
    case 'ITEM_NOT_ALLOWED':
      return { code: 'QUERY_NOT_LAWFUL', message, expected: (d.allowedItems ?? []).join(', '), calculated: q.itemCodes.join(', '), field: 'itemCodes' };
    case 'TABLE_VERSION_NOT_IN_FORCE':
      return { code: 'QUERY_TABLE_VERSION_NOT_IN_FORCE', message, expected: d.tableVersion ?? 'no version in force', calculated: q.tableVersion, field: 'tableVersion' };
    default: {
      const never: never = d.reason;
      throw new Error(`unknown refusal ${String(never)}`);
    }
  }
}
