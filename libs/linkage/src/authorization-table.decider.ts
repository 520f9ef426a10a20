import { parseAuthorizationTable, type AuthorizationTable } from './authorization-table.js';
import type { Decider, Evolvable, LinkageCommand, LinkageEvent } from './decider.js';
import { LinkageError, unreachable } from './errors.js';
import { requireDigest, requireInstant, type Sha256Hex } from './identifiers.js';

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
export type AuthorizationTableCommand = PublishAuthorizationTable;

export interface AuthorizationTablePublishedData {
  readonly version: number;
  readonly effectiveFrom: string;
  readonly digest: Sha256Hex;
  readonly publishedAt: string;
  readonly table: AuthorizationTable;
}
export type AuthorizationTablePublished = LinkageEvent<'AuthorizationTablePublished', AuthorizationTablePublishedData>;
export type AuthorizationTableEvent = AuthorizationTablePublished;

export interface PublishedTable {
  readonly version: number;
  readonly effectiveFrom: string;
  readonly effectiveFromMs: number;
  readonly digest: Sha256Hex;
  readonly publishedAt: string;
  readonly table: AuthorizationTable;
}

export interface NoTablePublished {
  readonly status: 'unpublished';
}
export interface TablesPublished {
  readonly status: 'published';
  /** In publication order, which is also version order and effective-from order. */
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
    default:
      return unreachable(event.type, 'type');
  }
}

export function decideAuthorizationTables(command: AuthorizationTableCommand, state: AuthorizationTablesState): readonly AuthorizationTableEvent[] {
  switch (command.type) {
    case 'PublishAuthorizationTable':
      return [publish(command.data, state)];
    default:
      return unreachable(command.type, 'type');
  }
}

export const authorizationTablesDecider: Decider<AuthorizationTablesState, AuthorizationTableCommand, AuthorizationTableEvent, Evolvable<AuthorizationTableEvent>> = {
  initialState: initialAuthorizationTablesState,
  evolve: evolveAuthorizationTables,
  decide: decideAuthorizationTables,
};

/**
 * The version in force at `at`: the published version with the latest `effectiveFrom` not after `at`
 * (the higher version when two take effect at the same instant), or undefined when none is.
 */
export function tableInForce(state: AuthorizationTablesState, at: string): PublishedTable | undefined {
  if (state.status === 'unpublished') return undefined;
  const atMs = Date.parse(at);
  if (Number.isNaN(atMs)) throw new LinkageError('MALFORMED', 'at must be an RFC 3339 timestamp');
  let best: PublishedTable | undefined;
  for (const v of state.versions) {
    if (v.effectiveFromMs > atMs) continue;
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
      const effectiveMs = Date.parse(table.effectiveFrom);
      if (effectiveMs < latest.effectiveFromMs) {
        throw new LinkageError(
          'TABLE_NOT_EFFECTIVE',
          `version ${table.version} would take effect (${table.effectiveFrom}) before version ${latest.version} (${latest.effectiveFrom}); versions take effect in order`,
          { version: table.version, effectiveFrom: table.effectiveFrom },
        );
      }
      if (effectiveMs < Date.parse(publishedAt)) {
        throw new LinkageError(
          'TABLE_NOT_EFFECTIVE',
          `version ${table.version} would take effect at ${table.effectiveFrom}, before its publication at ${publishedAt}: queries already decided under version ${latest.version} cannot be re-judged; set effectiveFrom to now or later`,
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
