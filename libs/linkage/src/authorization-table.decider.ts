import { parseAuthorizationTable, type AuthorizationTable } from './authorization-table.js';
import type { Decider, Evolvable, LinkageCommand, LinkageEvent } from './decider.js';
import { LinkageError, unreachable } from './errors.js';
import { isDisplayText, requireDigest, requireInstant, type Sha256Hex } from './identifiers.js';

/**
 * Publication of authorization table versions: one stream, `authorization-table`. Each version is an
 * event holding the whole table, so the version in force at any instant can be rebuilt from the log (I8)
 * and every query's events name the version it was decided under.
 */
export const AUTHORIZATION_TABLE_STREAM = 'authorization-table';

export interface PublishAuthorizationTableData {
  /** The table as read from its JSON file; the decider validates it (parseAuthorizationTable). */
  readonly table: unknown;
  /** SHA-256 of the table's RFC 8785 canonical JSON, computed by the caller. */
  readonly digest: string;
  readonly publishedAt: string;
}
export type PublishAuthorizationTable = LinkageCommand<'PublishAuthorizationTable', PublishAuthorizationTableData>;

export interface WithdrawAuthorizationTableData {
  readonly version: number;
  /** Why (operator text, public: kept in clear in the log). */
  readonly reason: string;
  readonly withdrawnAt: string;
}
/** Withdraws a published version before it takes effect: it never comes into force (docs/authorization-table-rollout.md). */
export type WithdrawAuthorizationTable = LinkageCommand<'WithdrawAuthorizationTable', WithdrawAuthorizationTableData>;
export type AuthorizationTableCommand = PublishAuthorizationTable | WithdrawAuthorizationTable;

export interface AuthorizationTablePublishedData {
  readonly version: number;
  readonly effectiveFrom: string;
  readonly digest: Sha256Hex;
  readonly publishedAt: string;
  readonly table: AuthorizationTable;
}
export type AuthorizationTablePublished = LinkageEvent<'AuthorizationTablePublished', AuthorizationTablePublishedData>;

export interface AuthorizationTableWithdrawnData {
  readonly version: number;
  /** The withdrawn version's digest, so the event names exactly what was withdrawn. */
  readonly digest: Sha256Hex;
  readonly effectiveFrom: string;
  readonly reason: string;
  readonly withdrawnAt: string;
}
export type AuthorizationTableWithdrawn = LinkageEvent<'AuthorizationTableWithdrawn', AuthorizationTableWithdrawnData>;
export type AuthorizationTableEvent = AuthorizationTablePublished | AuthorizationTableWithdrawn;

export interface PublishedTable {
  readonly version: number;
  readonly effectiveFrom: string;
  readonly effectiveFromMs: number;
  readonly digest: Sha256Hex;
  readonly publishedAt: string;
  readonly table: AuthorizationTable;
  /** Set once the version was withdrawn before it took effect: it is never in force. */
  readonly withdrawnAt?: string;
  readonly withdrawalReason?: string;
}

export interface NoTablePublished {
  readonly status: 'unpublished';
}
export interface TablesPublished {
  readonly status: 'published';
  /**
   * In publication order, which is also version order; withdrawn versions stay listed (marked), and the
   * versions not withdrawn are in effective-from order.
   */
  readonly versions: readonly PublishedTable[];
}
export type AuthorizationTablesState = NoTablePublished | TablesPublished;

export function initialAuthorizationTablesState(): AuthorizationTablesState {
  return { status: 'unpublished' };
}

export function evolveAuthorizationTables(state: AuthorizationTablesState, event: Evolvable<AuthorizationTableEvent>): AuthorizationTablesState {
  switch (event.type) {
    case 'AuthorizationTablePublished': {
      const d = event.data;
      const published: PublishedTable = {
        version: d.version,
        effectiveFrom: d.effectiveFrom,
        effectiveFromMs: Date.parse(d.effectiveFrom),
        digest: d.digest,
        publishedAt: d.publishedAt,
        table: d.table,
      };
      return { status: 'published', versions: state.status === 'published' ? [...state.versions, published] : [published] };
    }
    case 'AuthorizationTableWithdrawn': {
      if (state.status !== 'published') return state;
      const d = event.data;
      return { status: 'published', versions: state.versions.map((v) => (v.version === d.version ? { ...v, withdrawnAt: d.withdrawnAt, withdrawalReason: d.reason } : v)) };
    }
    default:
      return unreachable(event, 'type');
  }
}

export function decideAuthorizationTables(command: AuthorizationTableCommand, state: AuthorizationTablesState): readonly AuthorizationTableEvent[] {
  switch (command.type) {
    case 'PublishAuthorizationTable':
      return [publish(command.data, state)];
    case 'WithdrawAuthorizationTable':
      return [withdraw(command.data, state)];
    default:
      return unreachable(command, 'type');
  }
}

export const authorizationTablesDecider: Decider<AuthorizationTablesState, AuthorizationTableCommand, AuthorizationTableEvent, Evolvable<AuthorizationTableEvent>> = {
  initialState: initialAuthorizationTablesState,
  evolve: evolveAuthorizationTables,
  decide: decideAuthorizationTables,
};

/**
 * The version in force at `at`: the published, not withdrawn version with the latest `effectiveFrom` not
 * after `at` (the higher version when two take effect at the same instant), or undefined when none is.
 */
export function tableInForce(state: AuthorizationTablesState, at: string): PublishedTable | undefined {
  if (state.status === 'unpublished') return undefined;
  const atMs = Date.parse(at);
  if (Number.isNaN(atMs)) throw new LinkageError('MALFORMED', 'at must be an RFC 3339 timestamp');
  let best: PublishedTable | undefined;
  for (const v of state.versions) {
    if (v.effectiveFromMs > atMs || v.withdrawnAt !== undefined) continue;
    if (!best || v.effectiveFromMs > best.effectiveFromMs || (v.effectiveFromMs === best.effectiveFromMs && v.version > best.version)) best = v;
  }
  return best;
}

function publish(c: PublishAuthorizationTableData, state: AuthorizationTablesState): AuthorizationTablePublished {
  const table = parseAuthorizationTable(c.table);
  const digest = requireDigest(c.digest, 'digest');
  const publishedAt = requireInstant(c.publishedAt, 'publishedAt');
  switch (state.status) {
    case 'unpublished':
      // The first version may take effect in the past: nothing was decided before it.
      break;
    case 'published': {
      const latest = state.versions[state.versions.length - 1]!;
      if (table.version <= latest.version) {
        throw new LinkageError(
          'TABLE_VERSION_NOT_NEWER',
          `authorization table version ${table.version} is not newer than the latest published version ${latest.version}; number the new table ${latest.version + 1} or higher`,
          { version: table.version, latestVersion: latest.version },
        );
      }
      // Withdrawn versions never took effect: the order and the past are judged against the others.
      const active = state.versions.filter((v) => v.withdrawnAt === undefined);
      const latestActive = active[active.length - 1];
      if (latestActive === undefined) break; // every earlier version was withdrawn: nothing was ever decided
      const effectiveMs = Date.parse(table.effectiveFrom);
      if (effectiveMs < latestActive.effectiveFromMs) {
        throw new LinkageError(
          'TABLE_NOT_EFFECTIVE',
          `version ${table.version} would take effect (${table.effectiveFrom}) before version ${latestActive.version} (${latestActive.effectiveFrom}); versions take effect in order (withdraw version ${latestActive.version} first if it has not taken effect)`,
          { version: table.version, effectiveFrom: table.effectiveFrom },
        );
      }
      if (effectiveMs < Date.parse(publishedAt)) {
        throw new LinkageError(
          'TABLE_NOT_EFFECTIVE',
          `version ${table.version} would take effect at ${table.effectiveFrom}, before its publication at ${publishedAt}: queries already decided under version ${latestActive.version} cannot be re-judged; set effectiveFrom to now or later`,
          { version: table.version, effectiveFrom: table.effectiveFrom },
        );
      }
      break;
    }
    default:
      return unreachable(state, 'status');
  }
  return {
    type: 'AuthorizationTablePublished',
    schemaVersion: 1,
    data: { version: table.version, effectiveFrom: table.effectiveFrom, digest, publishedAt, table },
    terminal: 'completed',
  };
}

/**
 * Withdraws a version that has not taken effect: refused for a version never published, one withdrawn
 * already, and one whose effectiveFrom is not after `withdrawnAt` (in force, or superseded: queries were
 * decided under it, and a version in force is replaced only by publishing a newer one).
 */
function withdraw(c: WithdrawAuthorizationTableData, state: AuthorizationTablesState): AuthorizationTableWithdrawn {
  const withdrawnAt = requireInstant(c.withdrawnAt, 'withdrawnAt');
  if (!Number.isSafeInteger(c.version) || c.version < 1) throw new LinkageError('MALFORMED', 'version must be an integer ≥ 1', { field: 'version' });
  if (!isDisplayText(c.reason, 500)) throw new LinkageError('MALFORMED', 'reason must be trimmed text of 1–500 characters', { field: 'reason' });
  const target = state.status === 'published' ? state.versions.find((v) => v.version === c.version) : undefined;
  if (target === undefined) {
    throw new LinkageError('TABLE_VERSION_NOT_FOUND', `authorization table version ${c.version} was never published`, { version: c.version });
  }
  if (target.withdrawnAt !== undefined) {
    throw new LinkageError('TABLE_VERSION_WITHDRAWN', `authorization table version ${c.version} was already withdrawn at ${target.withdrawnAt}`, { version: c.version, withdrawnAt: target.withdrawnAt });
  }
  if (target.effectiveFromMs <= Date.parse(withdrawnAt)) {
    throw new LinkageError(
      'TABLE_VERSION_IN_FORCE',
      `authorization table version ${c.version} took effect at ${target.effectiveFrom}: a version that has taken effect cannot be withdrawn (queries were decided under it); publish a newer version instead`,
      { version: c.version, effectiveFrom: target.effectiveFrom },
    );
  }
  return {
    type: 'AuthorizationTableWithdrawn',
    schemaVersion: 1,
    data: { version: target.version, digest: target.digest, effectiveFrom: target.effectiveFrom, reason: c.reason, withdrawnAt },
    terminal: 'completed',
  };
}

/** What a version's life is at an instant (GET /v1/authorization-tables). */
export type TableVersionState = 'scheduled' | 'in-force' | 'superseded' | 'withdrawn';

/** Every published version with its state at `at`, in version order. */
export function tableVersionStates(state: AuthorizationTablesState, at: string): readonly { readonly table: PublishedTable; readonly state: TableVersionState }[] {
  if (state.status === 'unpublished') return [];
  const inForce = tableInForce(state, at);
  const atMs = Date.parse(at);
  return state.versions.map((v) => ({
    table: v,
    state: v.withdrawnAt !== undefined ? 'withdrawn' : v === inForce ? 'in-force' : v.effectiveFromMs > atMs ? 'scheduled' : 'superseded',
  }));
}
