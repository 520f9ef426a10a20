import type { AuthorizationRow, AuthorizationTable, Procedure } from './authorization-table.js';
import { LinkageError } from './errors.js';
import { isTableCode, type AgencyKind } from './identifiers.js';

/**
 * The authorization policy (情報連携の可否判断): one table version, indexed for lookups. Pure data, built
 * once per published version and reused for every query decided under it.
 */
export interface AuthorizationPolicy {
  readonly version: number;
  readonly effectiveFrom: string;
  readonly effectiveFromMs: number;
  readonly procedures: ReadonlyMap<string, Procedure>;
  /** procedure code → requester kinds that may use it. */
  readonly requesterKinds: ReadonlyMap<string, readonly AgencyKind[]>;
  /** `requesterKind|procedure` → provider kinds of its rows, in table order. */
  readonly providerKinds: ReadonlyMap<string, readonly AgencyKind[]>;
  /** `requesterKind|procedure|providerKind` → its row. */
  readonly rows: ReadonlyMap<string, AuthorizationRow>;
}

export interface AuthorizationRequest {
  readonly requesterKind: AgencyKind;
  readonly procedureCode: string;
  readonly providerKind: AgencyKind;
  readonly itemCodes: readonly string[];
  /** The instant the query is decided at. */
  readonly at: string;
  /** The version the requester says it works under; refused when it is not the one in force. */
  readonly requestedTableVersion?: number;
}

/** Why the policy refuses. Each is recorded as the reason of a QueryDenied event (I6). */
export type AuthorizationRefusalCode =
  | 'TABLE_VERSION_NOT_IN_FORCE'
  | 'UNKNOWN_PROCEDURE'
  | 'REQUESTER_KIND_NOT_ALLOWED'
  | 'PROVIDER_KIND_NOT_ALLOWED'
  | 'ITEM_NOT_ALLOWED';

export interface AuthorizationGranted {
  readonly allowed: true;
  readonly tableVersion: number;
  readonly row: AuthorizationRow;
}

export interface AuthorizationRefused {
  readonly allowed: false;
  readonly reason: AuthorizationRefusalCode;
  readonly message: string;
  /** The version in force, when there is one. */
  readonly tableVersion?: number;
  /** ITEM_NOT_ALLOWED: the requested items that the row does not allow (unknown ones included). */
  readonly notAllowedItems?: readonly string[];
  /** ITEM_NOT_ALLOWED: what the row allows. */
  readonly allowedItems?: readonly string[];
  /** PROVIDER_KIND_NOT_ALLOWED: whom this procedure may ask. */
  readonly allowedProviderKinds?: readonly AgencyKind[];
  /** REQUESTER_KIND_NOT_ALLOWED: which kinds carry out this procedure. */
  readonly allowedRequesterKinds?: readonly AgencyKind[];
}

export type AuthorizationDecision = AuthorizationGranted | AuthorizationRefused;

const rowKey = (requester: AgencyKind, procedure: string, provider: AgencyKind): string => `${requester}|${procedure}|${provider}`;

/** Indexes a parsed table (see parseAuthorizationTable). */
export function compileAuthorizationPolicy(table: AuthorizationTable): AuthorizationPolicy {
  const procedures = new Map<string, Procedure>();
  const requesterKinds = new Map<string, AgencyKind[]>();
  const providerKinds = new Map<string, AgencyKind[]>();
  const rows = new Map<string, AuthorizationRow>();
  for (const row of table.rows) {
    const code = row.procedure.code;
    if (!procedures.has(code)) procedures.set(code, row.procedure);
    const requesters = requesterKinds.get(code) ?? [];
    if (!requesters.includes(row.requesterKind)) requesters.push(row.requesterKind);
    requesterKinds.set(code, requesters);
    const pk = `${row.requesterKind}|${code}`;
    const providers = providerKinds.get(pk) ?? [];
    providers.push(row.providerKind);
    providerKinds.set(pk, providers);
    rows.set(rowKey(row.requesterKind, code, row.providerKind), row);
  }
  return { version: table.version, effectiveFrom: table.effectiveFrom, effectiveFromMs: Date.parse(table.effectiveFrom), procedures, requesterKinds, providerKinds, rows };
}

/**
 * Decides whether a requester of one kind may ask a provider of another kind for these items, for this
 * procedure, under `policy`: the version in force at `request.at` (pass undefined when none is). Checks
 * in order: version in force, procedure, requester kind, provider kind, items; the first failure is the
 * reason. Throws MALFORMED only for a request that cannot be judged (no items, duplicate or ill-formed codes).
 */
export function authorize(policy: AuthorizationPolicy | undefined, request: AuthorizationRequest): AuthorizationDecision {
  const { requesterKind, procedureCode, providerKind, itemCodes, at, requestedTableVersion } = request;
  if (!Array.isArray(itemCodes) || itemCodes.length === 0) {
    throw new LinkageError('MALFORMED', 'itemCodes must list at least one information item code');
  }
  const bad = itemCodes.filter((c) => !isTableCode(c));
  if (bad.length > 0 || !isTableCode(procedureCode)) {
    throw new LinkageError('MALFORMED', 'procedure and item codes are kebab-case codes from the authorization table, e.g. "local-tax"');
  }
  if (new Set(itemCodes).size !== itemCodes.length) {
    throw new LinkageError('MALFORMED', 'itemCodes lists an item more than once');
  }
  const atMs = Date.parse(at);
  if (Number.isNaN(atMs)) throw new LinkageError('MALFORMED', 'at must be an RFC 3339 timestamp');

  if (policy === undefined) {
    return refuse('TABLE_VERSION_NOT_IN_FORCE', 'no authorization table version is in force at this time; no query can be allowed until one is published');
  }
  const version = policy.version;
  if (policy.effectiveFromMs > atMs) {
    return refuse('TABLE_VERSION_NOT_IN_FORCE', `authorization table version ${version} takes effect only at ${policy.effectiveFrom}`, { tableVersion: version });
  }
  if (requestedTableVersion !== undefined && requestedTableVersion !== version) {
    return refuse(
      'TABLE_VERSION_NOT_IN_FORCE',
      `authorization table version ${requestedTableVersion} is not in force; version ${version} is: update the procedure definitions and ask again`,
      { tableVersion: version },
    );
  }
  const procedure = policy.procedures.get(procedureCode);
  if (!procedure) {
    return refuse('UNKNOWN_PROCEDURE', `procedure "${procedureCode}" is not in authorization table version ${version}`, { tableVersion: version });
  }
  const requesters = policy.requesterKinds.get(procedureCode) ?? [];
  if (!requesters.includes(requesterKind)) {
    return refuse(
      'REQUESTER_KIND_NOT_ALLOWED',
      `procedure "${procedureCode}" (${procedure.name}) is carried out by ${requesters.join(', ')}, not by a ${requesterKind}`,
      { tableVersion: version, allowedRequesterKinds: requesters },
    );
  }
  const row = policy.rows.get(rowKey(requesterKind, procedureCode, providerKind));
  if (!row) {
    const providers = policy.providerKinds.get(`${requesterKind}|${procedureCode}`) ?? [];
    return refuse(
      'PROVIDER_KIND_NOT_ALLOWED',
      `for procedure "${procedureCode}" a ${requesterKind} may ask ${providers.join(', ')}, not a ${providerKind}`,
      { tableVersion: version, allowedProviderKinds: providers },
    );
  }
  const allowed = row.items.map((i) => i.code);
  const notAllowed = itemCodes.filter((c) => !allowed.includes(c));
  if (notAllowed.length > 0) {
    return refuse(
      'ITEM_NOT_ALLOWED',
      `for procedure "${procedureCode}" a ${requesterKind} may ask a ${providerKind} for ${allowed.join(', ')} only; not allowed: ${notAllowed.join(', ')}`,
      { tableVersion: version, notAllowedItems: notAllowed, allowedItems: allowed },
    );
  }
  return { allowed: true, tableVersion: version, row };
}

function refuse(reason: AuthorizationRefusalCode, message: string, extra: Omit<AuthorizationRefused, 'allowed' | 'reason' | 'message'> = {}): AuthorizationRefused {
  return { allowed: false, reason, message, ...extra };
}

/** Why the policy refuses a subscription: a query's reasons, or PUSH_NOT_AUTHORIZED (the row allows the item to be queried but not pushed). */
export type PushRefusalCode = AuthorizationRefusalCode | 'PUSH_NOT_AUTHORIZED';

export interface PushRefused extends Omit<AuthorizationRefused, 'reason'> {
  readonly reason: PushRefusalCode;
  /** PUSH_NOT_AUTHORIZED: the requested items the row allows no push for. */
  readonly notPushableItems?: readonly string[];
  /** PUSH_NOT_AUTHORIZED: the items of the row open to push (possibly none). */
  readonly pushableItems?: readonly string[];
}

export type PushDecision = AuthorizationGranted | PushRefused;

/**
 * May a requester of one kind subscribe to these items of a provider of another kind for this procedure
 * (format 2, `push`)? First every check of a query (`authorize`: version in force, procedure, kinds, items:
 * an item that may not even be queried is refused as for a query), then each item must be in the row's
 * `push`. Throws MALFORMED as `authorize` does.
 */
export function authorizePush(policy: AuthorizationPolicy | undefined, request: AuthorizationRequest): PushDecision {
  const decision = authorize(policy, request);
  if (!decision.allowed) return decision;
  const pushable = decision.row.push ?? [];
  const notPushable = request.itemCodes.filter((c) => !pushable.includes(c));
  if (notPushable.length > 0) {
    const { requesterKind, procedureCode, providerKind } = request;
    return {
      allowed: false,
      reason: 'PUSH_NOT_AUTHORIZED',
      message:
        pushable.length === 0
          ? `authorization table version ${decision.tableVersion} allows a ${requesterKind} no push from a ${providerKind} for procedure "${procedureCode}"; query instead`
          : `for procedure "${procedureCode}" a ${requesterKind} may subscribe to ${pushable.join(', ')} of a ${providerKind} only; no push for: ${notPushable.join(', ')}`,
      tableVersion: decision.tableVersion,
      notPushableItems: notPushable,
      pushableItems: pushable,
    };
  }
  return decision;
}

/** Whether `policy` (the version in force) still allows push of every one of `itemCodes` for this row; the items it no longer allows otherwise. */
export function pushWithdrawn(policy: AuthorizationPolicy | undefined, row: { readonly requesterKind: AgencyKind; readonly procedureCode: string; readonly providerKind: AgencyKind; readonly itemCodes: readonly string[] }): readonly string[] {
  if (policy === undefined) return row.itemCodes;
  const pushable = policy.rows.get(rowKey(row.requesterKind, row.procedureCode, row.providerKind))?.push ?? [];
  return row.itemCodes.filter((c) => !pushable.includes(c));
}
