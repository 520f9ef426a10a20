import Database from 'better-sqlite3';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { AuditorError } from '../errors.js';

/** A copy of a live SQLite file as of one instant, and its removal. */
export interface Snapshot {
  readonly path: string;
  dispose(): void;
}

/**
 * Copies a file the hub keeps writing as it is at one instant: VACUUM INTO reads it in one read
 * transaction (WAL mode gives that transaction a fixed snapshot), so the copy holds one committed state,
 * its stored checkpoint and every row with it, whatever is committed meanwhile. The projection's own
 * class then reads the copy, in its own layout.
 */
export function liveSnapshot(livePath: string): Snapshot {
  const dir = mkdtempSync(join(tmpdir(), 'auditor-snapshot-'));
  const path = join(dir, basename(livePath));
  let db: Database.Database | undefined;
  try {
    db = new Database(livePath, { readonly: true, fileMustExist: true });
    db.pragma('busy_timeout = 5000');
    db.prepare('VACUUM INTO ?').run(path);
  } catch (error) {
    rmSync(dir, { recursive: true, force: true });
    throw new AuditorError('SOURCE_UNREADABLE', `cannot read ${livePath} as a SQLite file: ${(error as Error).message}`);
  } finally {
    db?.close();
  }
  return { path, dispose: () => rmSync(dir, { recursive: true, force: true }) };
}
