import Database from 'better-sqlite3';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { canonicalize, type ReadAllOptions, type RecordedEvent } from '#ledger';
import { catchUp, PROJECTIONS_FILE, ProjectionError, SqliteProvisionStore, type ProvisionRecord } from '#projections';
import type { EventSealer } from '#sealing';
import { AuditorError } from '../errors.js';
import { liveSnapshot } from './snapshot.js';

/** Where the hub keeps its projections unless told otherwise: beside the ledger file. */
export function defaultProjectionsPath(ledgerPath: string): string {
  return join(dirname(ledgerPath), PROJECTIONS_FILE);
}

export interface RecordDifference {
  readonly serial: string;
  /** Top-level fields that differ (every field when one side has no such record). */
  readonly fields: readonly string[];
  readonly live: ProvisionRecord | null;
  readonly rebuilt: ProvisionRecord | null;
}

export interface ProvisionRecordsDiff {
  readonly projection: 'provision-records';
  readonly ok: boolean;
  readonly path: string;
  /** Set when there was nothing to compare (no live file at the default path): not a failure. */
  readonly skipped?: string;
  /** The live projection's checkpoint: the rebuild stops there, so that both cover the same events. */
  readonly liveCheckpoint: number;
  readonly rebuiltCheckpoint: number;
  readonly liveRecords: number;
  readonly rebuiltRecords: number;
  readonly liveDigest: string | null;
  readonly rebuiltDigest: string | null;
  readonly differingRecords: number;
  /** The first differing record in serial order. */
  readonly firstDifference: RecordDifference | null;
  /** Events of the folded types whose keys were shredded (retention, erasure): skipped by the rebuild, as by the hub. */
  readonly shreddedSkipped?: number;
}

/** The event types the provision records fold reads opened (the hub's ProvisionRecords reads the same): an erasure's subject. */
const OPENED_TYPES: ReadonlySet<string> = new Set(['KeysShredded']);
/** The types whose person the fold reads from the key reference. */
const QUERY_TYPES: ReadonlySet<string> = new Set(['QueryAccepted', 'QueryDenied']);

/** The ledger file read-only, as the projection runner reads an event store; with the read key, the folded types opened. */
function ledgerReader(db: Database.Database, sealer: EventSealer, counts: { shredded: number }): { readAll(options?: ReadAllOptions): Promise<readonly RecordedEvent[]> } {
  const page = db.prepare('SELECT envelope FROM events WHERE position >= ? ORDER BY position LIMIT ?').pluck();
  const open = (e: RecordedEvent): RecordedEvent => {
    if (QUERY_TYPES.has(e.type) && sealer.referenceOf(e) === 'shredded') counts.shredded += 1;
    return OPENED_TYPES.has(e.type) ? sealer.open(e).event : e;
  };
  return { readAll: async (o = {}) => (page.all(o.fromPosition ?? 0, o.maxCount ?? -1) as string[]).map((text) => open(JSON.parse(text) as RecordedEvent)) };
}

/** How the projection files a person (the id of their key), as the hub does. */
function peopleOf(sealer: EventSealer): { subjectRef: (subjectId: string) => string; personOf: (event: RecordedEvent) => string | null | 'shredded' } {
  return { subjectRef: (subjectId) => sealer.personRef(subjectId), personOf: (event) => sealer.referenceOf(event) };
}

/**
 * Rebuilds the provision records from the raw events into a fresh store, up to the live projection's
 * checkpoint, and diffs every record with the live file (I8). `required`: the path was given
 * explicitly, so a missing file is an error rather than "nothing to compare".
 */
export async function replayProvisionRecords(ledgerPath: string, projectionsPath: string, required: boolean, sealer?: EventSealer): Promise<ProvisionRecordsDiff> {
  const skipped = (why: string): ProvisionRecordsDiff => ({ projection: 'provision-records', ok: true, path: projectionsPath, skipped: why, liveCheckpoint: -1, rebuiltCheckpoint: -1, liveRecords: 0, rebuiltRecords: 0, liveDigest: null, rebuiltDigest: null, differingRecords: 0, firstDifference: null });
  if (!existsSync(projectionsPath)) {
    if (required) throw new AuditorError('SOURCE_UNREADABLE', `no provision record projection at ${projectionsPath}; give the hub's projections file with --projections`);
    return skipped('no live projection file beside the ledger');
  }
  // Rows are filed by a keyed reference of the person, folded from sealed subjects (I10): without the read key there is nothing to rebuild them from.
  if (sealer === undefined) return skipped('the records are folded from sealed fields: give the hub\'s read key (--key-file) and key ring (--keyring) to rebuild them');
  const people = peopleOf(sealer);
  // The live file as of one instant: its checkpoint and its records agree while the hub keeps writing.
  const snapshot = liveSnapshot(projectionsPath);
  let live: SqliteProvisionStore;
  try {
    live = new SqliteProvisionStore({ path: snapshot.path, readonly: true, ...people });
  } catch (error) {
    snapshot.dispose();
    throw new AuditorError('SOURCE_UNREADABLE', `cannot read ${projectionsPath} as a provision record projection: ${error instanceof ProjectionError ? error.message : (error as Error).message}`);
  }
  const ledger = new Database(ledgerPath, { readonly: true, fileMustExist: true });
  const scratch = mkdtempSync(join(tmpdir(), 'auditor-replay-records-'));
  const rebuilt = new SqliteProvisionStore({ path: join(scratch, 'projections.sqlite'), ...people });
  const counts = { shredded: 0 };
  try {
    const liveCheckpoint = await live.checkpoint();
    const rebuiltCheckpoint = await catchUp(ledgerReader(ledger, sealer, counts), rebuilt, { pageSize: 10_000, toPosition: liveCheckpoint });
    const diff = await diffRecords(live, rebuilt);
    const [liveDigest, rebuiltDigest] = [await live.digest(), await rebuilt.digest()];
    return {
      projection: 'provision-records',
      ok: rebuiltCheckpoint === liveCheckpoint && diff.differingRecords === 0 && liveDigest === rebuiltDigest,
      path: projectionsPath,
      liveCheckpoint,
      rebuiltCheckpoint,
      liveDigest,
      rebuiltDigest,
      ...diff,
      shreddedSkipped: counts.shredded,
    };
  } finally {
    await Promise.all([live.close(), rebuilt.close()]);
    ledger.close();
    rmSync(scratch, { recursive: true, force: true });
    snapshot.dispose();
  }
}

/** Walks both stores in serial order, a page at a time, counting differing records and keeping the first. */
async function diffRecords(live: SqliteProvisionStore, rebuilt: SqliteProvisionStore): Promise<Pick<ProvisionRecordsDiff, 'liveRecords' | 'rebuiltRecords' | 'differingRecords' | 'firstDifference'>> {
  const PAGE = 2000;
  const cursor = (store: SqliteProvisionStore) => {
    let buffer: ProvisionRecord[] = [];
    let after: string | undefined;
    let done = false;
    return async (): Promise<ProvisionRecord | undefined> => {
      if (buffer.length === 0 && !done) {
        buffer = await store.records({ ...(after === undefined ? {} : { afterSerial: after }), limit: PAGE });
        if (buffer.length < PAGE) done = true;
        if (buffer.length > 0) after = buffer[buffer.length - 1]!.serial;
      }
      return buffer.shift();
    };
  };
  const nextLive = cursor(live);
  const nextRebuilt = cursor(rebuilt);
  let a = await nextLive();
  let b = await nextRebuilt();
  let liveRecords = 0;
  let rebuiltRecords = 0;
  let differingRecords = 0;
  let firstDifference: RecordDifference | null = null;
  const differ = (d: RecordDifference) => {
    differingRecords += 1;
    firstDifference ??= d;
  };
  while (a !== undefined || b !== undefined) {
    if (b === undefined || (a !== undefined && a.serial < b.serial)) {
      differ({ serial: a!.serial, fields: Object.keys(a!), live: a!, rebuilt: null });
      liveRecords += 1;
      a = await nextLive();
    } else if (a === undefined || b.serial < a.serial) {
      differ({ serial: b.serial, fields: Object.keys(b), live: null, rebuilt: b });
      rebuiltRecords += 1;
      b = await nextRebuilt();
    } else {
      const fields = (Object.keys(a) as (keyof ProvisionRecord)[]).filter((k) => canonicalize(a![k]) !== canonicalize(b![k]));
      if (fields.length > 0) differ({ serial: a.serial, fields, live: a, rebuilt: b });
      liveRecords += 1;
      rebuiltRecords += 1;
      a = await nextLive();
      b = await nextRebuilt();
    }
  }
  return { liveRecords, rebuiltRecords, differingRecords, firstDifference };
}
