import Database from 'better-sqlite3';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { canonicalize, type ReadAllOptions, type RecordedEvent } from '#ledger';
import { CORPORATE_REGISTRY_FILE, NOTICE_INBOX_FILE, ProjectionError, SqliteCorporateRegistry, SqliteNoticeInbox, catchUp, type FoldRow, type SqliteFold, type SqliteFoldOptions } from '#projections';
import type { EventSealer } from '#sealing';
import { AuditorError } from '../errors.js';
import { liveSnapshot } from './snapshot.js';

/**
 * The projections in SQLite folds the hub keeps beside its ledger, and how to open each. `sealer`: the
 * read key, for folds filed by a keyed handle of the person or folded from sealed fields (I10); a fold
 * that needs it is skipped without it.
 */
export const FOLDS = {
  'corporate-registry': { file: CORPORATE_REGISTRY_FILE, option: '--registry', needsKey: false, open: (o: SqliteFoldOptions) => new SqliteCorporateRegistry(o) },
  'notice-inbox': {
    file: NOTICE_INBOX_FILE,
    option: '--notices',
    needsKey: true,
    open: (o: SqliteFoldOptions, sealer?: EventSealer) =>
      new SqliteNoticeInbox({ ...o, subjectRef: (s) => sealer!.personRef(s), personOf: (e) => sealer!.referenceOf(e), open: (e) => sealer!.open(e).event }),
  },
} as const satisfies Record<string, { file: string; option: string; needsKey: boolean; open: (o: SqliteFoldOptions, sealer?: EventSealer) => SqliteFold }>;
export type FoldName = keyof typeof FOLDS;

export interface RowDifference {
  /** The value of the row's key column. */
  readonly key: string;
  /** Columns that differ (every column when one side has no such row). */
  readonly fields: readonly string[];
  readonly live: FoldRow | null;
  readonly rebuilt: FoldRow | null;
}

export interface FoldDiff {
  readonly projection: FoldName;
  readonly ok: boolean;
  readonly path: string;
  /** Set when there was nothing to compare (no live file at the default path): not a failure. */
  readonly skipped?: string;
  /** The live file's checkpoint: the rebuild stops there, so that both cover the same events. */
  readonly liveCheckpoint: number;
  readonly rebuiltCheckpoint: number;
  readonly liveRows: number;
  readonly rebuiltRows: number;
  readonly liveDigest: string | null;
  readonly rebuiltDigest: string | null;
  readonly differingRows: number;
  /** The first difference in the fold's canonical row order. */
  readonly firstDifference: RowDifference | null;
}

/** Where the hub keeps a fold unless told otherwise: beside the ledger file. */
export function defaultFoldPath(name: FoldName, ledgerPath: string): string {
  return join(dirname(ledgerPath), FOLDS[name].file);
}

function ledgerReader(db: Database.Database): { readAll(options?: ReadAllOptions): Promise<readonly RecordedEvent[]> } {
  const page = db.prepare('SELECT envelope FROM events WHERE position >= ? ORDER BY position LIMIT ?').pluck();
  return { readAll: async (o = {}) => (page.all(o.fromPosition ?? 0, o.maxCount ?? -1) as string[]).map((text) => JSON.parse(text) as RecordedEvent) };
}

/**
 * Rebuilds one fold from the raw events into a fresh file, up to the live file's checkpoint, and compares
 * every row (I8): digests first, and on a difference both files walked in row order to name the first.
 * `required`: the path was given explicitly, so a missing file is an error rather than "nothing to compare".
 */
export async function replayFold(name: FoldName, ledgerPath: string, livePath: string, required: boolean, sealer?: EventSealer): Promise<FoldDiff> {
  const fold = FOLDS[name];
  const skipped = (why: string): FoldDiff => ({ projection: name, ok: true, path: livePath, skipped: why, liveCheckpoint: -1, rebuiltCheckpoint: -1, liveRows: 0, rebuiltRows: 0, liveDigest: null, rebuiltDigest: null, differingRows: 0, firstDifference: null });
  if (!existsSync(livePath)) {
    if (required) throw new AuditorError('SOURCE_UNREADABLE', `no ${name} at ${livePath}; give the hub's file with ${fold.option}`);
    return skipped(`no live ${name} file beside the ledger`);
  }
  if (fold.needsKey && sealer === undefined) return skipped(`the ${name} is filed by sealed fields: give the hub's read key (--key-file) and key ring (--keyring) to rebuild it`);
  // The live file as of one instant: its checkpoint and its rows agree while the hub keeps writing.
  const snapshot = liveSnapshot(livePath);
  let live: SqliteFold;
  try {
    live = fold.open({ path: snapshot.path, readonly: true }, sealer);
  } catch (error) {
    snapshot.dispose();
    throw new AuditorError('SOURCE_UNREADABLE', `cannot read ${livePath} as ${name}: ${error instanceof ProjectionError ? error.message : (error as Error).message}`);
  }
  const ledger = new Database(ledgerPath, { readonly: true, fileMustExist: true });
  const scratch = mkdtempSync(join(tmpdir(), `auditor-replay-${name}-`));
  const rebuilt = fold.open({ path: join(scratch, fold.file) }, sealer);
  try {
    const liveCheckpoint = await live.checkpoint();
    const rebuiltCheckpoint = await catchUp(ledgerReader(ledger), rebuilt, { pageSize: 10_000, toPosition: liveCheckpoint });
    const [a, b] = [await live.digest(), await rebuilt.digest()];
    const diff = a.hex === b.hex ? { differingRows: 0, firstDifference: null } : diffRows(live, rebuilt);
    return {
      projection: name,
      ok: rebuiltCheckpoint === liveCheckpoint && a.hex === b.hex,
      path: livePath,
      liveCheckpoint,
      rebuiltCheckpoint,
      liveRows: a.rows,
      rebuiltRows: b.rows,
      liveDigest: a.hex,
      rebuiltDigest: b.hex,
      ...diff,
    };
  } finally {
    await Promise.all([live.close(), rebuilt.close()]);
    ledger.close();
    rmSync(scratch, { recursive: true, force: true });
    snapshot.dispose();
  }
}

/** Walks both files in their canonical row order, counting differing rows and keeping the first. */
function diffRows(live: SqliteFold, rebuilt: SqliteFold): Pick<FoldDiff, 'differingRows' | 'firstDifference'> {
  const keyOf = (row: FoldRow): string => String(row[live.rowKey]);
  const [liveRows, rebuiltRows] = [live.rows(), rebuilt.rows()];
  const next = (rows: Generator<FoldRow>): FoldRow | undefined => {
    const r = rows.next();
    return r.done === true ? undefined : r.value;
  };
  let [a, b] = [next(liveRows), next(rebuiltRows)];
  let differingRows = 0;
  let firstDifference: RowDifference | null = null;
  const differ = (d: RowDifference) => {
    differingRows += 1;
    firstDifference ??= d;
  };
  // Both sides are in the same order of the same query, so equal keys meet; a key on one side only is a missing row.
  const seenRebuilt = new Map<string, FoldRow>();
  const seenLive = new Map<string, FoldRow>();
  while (a !== undefined || b !== undefined) {
    if (a !== undefined && b !== undefined && keyOf(a) === keyOf(b)) {
      const fields = Object.keys(a).filter((k) => canonicalize(a![k]) !== canonicalize(b![k]));
      if (fields.length > 0) differ({ key: keyOf(a), fields, live: a, rebuilt: b });
      [a, b] = [next(liveRows), next(rebuiltRows)];
      continue;
    }
    // Out of step: pair rows by key as they come, so one missing row is one difference.
    if (a !== undefined) {
      const match = seenRebuilt.get(keyOf(a));
      if (match === undefined) seenLive.set(keyOf(a), a);
      else {
        seenRebuilt.delete(keyOf(a));
        const fields = Object.keys(a).filter((k) => canonicalize(a![k]) !== canonicalize(match[k]));
        if (fields.length > 0) differ({ key: keyOf(a), fields, live: a, rebuilt: match });
      }
      a = next(liveRows);
    }
    if (b !== undefined) {
      const match = seenLive.get(keyOf(b));
      if (match === undefined) seenRebuilt.set(keyOf(b), b);
      else {
        seenLive.delete(keyOf(b));
        const fields = Object.keys(b).filter((k) => canonicalize(match[k]) !== canonicalize(b![k]));
        if (fields.length > 0) differ({ key: keyOf(b), fields, live: match, rebuilt: b });
      }
      b = next(rebuiltRows);
    }
  }
  for (const [key, row] of seenLive) differ({ key, fields: Object.keys(row), live: row, rebuilt: null });
  for (const [key, row] of seenRebuilt) differ({ key, fields: Object.keys(row), live: null, rebuilt: row });
  return { differingRows, firstDifference };
}
