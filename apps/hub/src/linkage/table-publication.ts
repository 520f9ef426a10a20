import type { Logger } from '@nestjs/common';
import type { EventBus } from '@nestjs/cqrs';
import { createHash, randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { canonicalize, type EventStore, type NewEvent } from '#ledger';
import { LinkageError } from '#linkage';
import { EventsAppended } from '../ledger/events-appended.event.js';
import { leadershipOf } from '../leadership/leader-gated-event-store.js';
import { loadStream, type Fold } from '../ledger/load-stream.js';

/** What a table's published versions fold to: none yet, or every version with its digest, oldest first. */
type TablesState = { readonly status: 'unpublished' } | { readonly status: 'published'; readonly versions: readonly { readonly version: number; readonly digest: string; readonly withdrawnAt?: string }[] };

export interface TablePublication<S extends TablesState, E extends { readonly type: string }> {
  /** What the table is called in messages, e.g. "authorization table". */
  readonly name: string;
  readonly streamId: string;
  readonly actor: string;
  readonly fold: Fold<S, E>;
  /** The events that publish `table` (its canonical digest given) on top of `state`. */
  decide(table: unknown, digest: string, publishedAt: string, state: S): readonly NewEvent[];
}

/**
 * Publishes the table in `file` at start when its version is newer than every published one: publication
 * is an event with its own serial, so the version in force at any instant is rebuilt from the log. The
 * same version with other content is refused (a published version never changes: publish a new version);
 * an older version is left unpublished with a warning, and so, with an error logged, is a newer version
 * whose effectiveFrom has already passed (the hub starts on the log's version instead of not at all).
 *
 * Only the hub that leads writes the log (KurrentDB, several hubs): a leader publishes at start, and a
 * standby checks the file against the log at start (the same refusal of a changed version) and publishes
 * it at each takeover, before it takes a command; meanwhile it serves the tables in force from the log.
 */
export async function publishTableAtStart<S extends TablesState, E extends { readonly type: string }>(
  publication: TablePublication<S, E>,
  file: string,
  deps: { readonly store: EventStore; readonly eventBus: EventBus; readonly logger: Logger; readonly now: () => Date },
): Promise<void> {
  const table: unknown = JSON.parse(readFileSync(file, 'utf8'));
  const digest = createHash('sha256').update(canonicalize(table) ?? '', 'utf8').digest('hex');
  const leadership = leadershipOf(deps.store);
  if (leadership === null) {
    await publishIfNewer(publication, file, table, digest, deps);
    return;
  }
  // Registered before the role is read: a takeover that begins after this line publishes it.
  leadership.onTakeover(async () => {
    try {
      await publishIfNewer(publication, file, table, digest, deps);
    } catch (error) {
      // The takeover goes on: the table in force stays the log's until the file is corrected.
      deps.logger.error(`${publication.name} from ${file} not published at takeover: ${(error as Error).message}`);
    }
  });
  if (leadership.role === 'leader') {
    await publishIfNewer(publication, file, table, digest, deps);
    return;
  }
  const pending = await publishIfNewer(publication, file, table, digest, deps, { dryRun: true });
  if (pending) deps.logger.log(`standing by: ${publication.name} version ${String((table as { version?: unknown }).version)} of ${file} is published when this hub leads; the version in force is the log's`);
}

/** Publishes unless the log has this version (or a newer one); with `dryRun`, only says whether it would. */
async function publishIfNewer<S extends TablesState, E extends { readonly type: string }>(
  publication: TablePublication<S, E>,
  file: string,
  table: unknown,
  digest: string,
  deps: { readonly store: EventStore; readonly eventBus: EventBus; readonly logger: Logger; readonly now: () => Date },
  options: { readonly dryRun?: boolean } = {},
): Promise<boolean> {
  const { state, expectedRevision } = await loadStream(deps.store, publication.streamId, publication.fold);
  const version = (table as { version?: unknown }).version;
  const versions = state.status === 'published' ? state.versions : [];
  const same = versions.find((v) => v.version === version);
  if (same !== undefined) {
    if (same.digest !== digest) {
      throw new Error(`${file} holds ${publication.name} version ${String(version)} with content other than the published version ${String(version)} (digest ${same.digest}); publish changes as a new version`);
    }
    // Withdrawn through the API (docs/authorization-table-rollout.md): it stays withdrawn, whatever the file says.
    if (same.withdrawnAt !== undefined && options.dryRun !== true) deps.logger.warn(`${file} holds ${publication.name} version ${String(version)}, withdrawn at ${same.withdrawnAt}: nothing published; number the corrected table ${versions.at(-1)!.version + 1} or higher`);
    return false;
  }
  const latest = versions.at(-1)?.version ?? 0;
  if (typeof version === 'number' && version < latest) {
    deps.logger.warn(`${file} holds version ${version}, older than the published version ${latest}: nothing published`);
    return false;
  }
  let events: readonly NewEvent[];
  try {
    events = publication.decide(table, digest, deps.now().toISOString(), state);
  } catch (error) {
    // A version whose effectiveFrom has already passed (a hub upgraded on a log that holds an earlier
    // version) cannot be published: queries were decided under the version in force since. The hub starts
    // with the log's version rather than not at all, and says what to do.
    if (!(error instanceof LinkageError) || error.code !== 'TABLE_NOT_EFFECTIVE') throw error;
    deps.logger.error(`${publication.name} version ${String(version)} of ${file} not published: ${error.message}. The version in force stays the log's (version ${latest}); give the file a later effectiveFrom (and a new version number) to publish it`);
    return false;
  }
  if (options.dryRun === true) return true;
  const result = await deps.store.append({
    streamId: publication.streamId,
    expectedRevision,
    events,
    serial: { allocate: true },
    metadata: { actor: publication.actor, correlationId: `publish-${randomUUID()}` },
  });
  deps.eventBus.publish(EventsAppended.of(publication.streamId, result, events.map((e) => e.type)));
  deps.logger.log(`published ${publication.name} version ${String(version)} (serial ${result.serial})`);
  return true;
}
