import Database from 'better-sqlite3';
import { createHash } from 'node:crypto';
import type { LedgerIndex, StoredIdempotency } from './append-planner.js';
import type { EventId, RecordedEvent } from './envelope.js';
import type { AppendResult } from './event-store.port.js';
import type { SerialNumber } from './serial-number.js';

/** Version of the file's tables: a file of another version is rebuilt from the log. */
const INDEX_VERSION = '1';

const DDL = `
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) STRICT;
CREATE TABLE IF NOT EXISTS stream_events (
  stream_id TEXT NOT NULL, revision INTEGER NOT NULL, position INTEGER NOT NULL,
  PRIMARY KEY (stream_id, revision)
) STRICT, WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS serial_events (
  serial TEXT NOT NULL, position INTEGER NOT NULL,
  PRIMARY KEY (serial, position)
) STRICT, WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS open_serials (serial TEXT PRIMARY KEY) STRICT, WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS claims (digest BLOB PRIMARY KEY) STRICT, WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS idempotency (digest BLOB PRIMARY KEY, request_digest TEXT NOT NULL, result TEXT NOT NULL) STRICT, WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS sequences (prefix TEXT PRIMARY KEY, sequence INTEGER NOT NULL) STRICT, WITHOUT ROWID;
`;

/** Appends whose stamp has been seen but not all of whose events yet (while applying events in order). */
interface OpenStamp {
  readonly key: string;
  readonly requestDigest: string;
  readonly events: number;
  readonly firstPosition: number;
  readonly eventIds: EventId[];
}

/** Where the index stands: the log's events [0, through) are in it; the last one's id tells the log apart. */
export interface LogIndexMark {
  readonly through: number;
  readonly lastEventId: string | undefined;
}

/**
 * The index the append planner checks on KurrentDB (stream revisions and positions, serials and their
 * positions, open serials, claims, idempotency outcomes, daily sequences), kept as a local projection of
 * the log in a SQLite file with its checkpoint (`through`) in the same transactions as its rows: a store
 * that opens again reads only the log's tail beyond it, and nothing of the log is held in memory (I11).
 * The file is per process and rebuilt from the log when it is missing, of another log or behind a log
 * that was replaced (see KurrentDbEventStore.open). Claims and idempotency keys are kept as SHA-256
 * digests, never as given. Without a path the index lives in memory and is rebuilt at every open.
 */
export class KurrentLogIndex implements LedgerIndex {
  private readonly db: Database.Database;
  private readonly stmt;
  private stamp: OpenStamp | undefined;
  private mark: LogIndexMark;
  /** Applies a page of events, the next in position order, in one transaction with the new checkpoint. */
  readonly applyAll: (events: readonly RecordedEvent[]) => void;

  constructor(
    readonly path: string | undefined,
    private readonly logStream: string,
  ) {
    this.db = new Database(path ?? ':memory:');
    if (path !== undefined) {
      this.db.pragma('journal_mode = WAL');
      // A transaction lost in a crash is read again from the log: the checkpoint commits with its rows.
      this.db.pragma('synchronous = NORMAL');
    }
    this.db.exec(DDL);
    this.stmt = {
      getMeta: this.db.prepare('SELECT value FROM meta WHERE key = ?').pluck(),
      setMeta: this.db.prepare('INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value'),
      deleteMeta: this.db.prepare('DELETE FROM meta WHERE key = ?'),
      addStreamEvent: this.db.prepare('INSERT OR REPLACE INTO stream_events (stream_id, revision, position) VALUES (?, ?, ?)'),
      streamRevision: this.db.prepare('SELECT max(revision) FROM stream_events WHERE stream_id = ?').pluck(),
      streamPositions: this.db.prepare('SELECT position FROM stream_events WHERE stream_id = ? AND revision >= ? ORDER BY revision LIMIT ?').pluck(),
      addSerialEvent: this.db.prepare('INSERT OR IGNORE INTO serial_events (serial, position) VALUES (?, ?)'),
      serialPositions: this.db.prepare('SELECT position FROM serial_events WHERE serial = ? ORDER BY position').pluck(),
      serialKnown: this.db.prepare('SELECT 1 FROM serial_events WHERE serial = ? LIMIT 1').pluck(),
      openSerial: this.db.prepare('INSERT OR IGNORE INTO open_serials (serial) VALUES (?)'),
      closeSerial: this.db.prepare('DELETE FROM open_serials WHERE serial = ?'),
      isOpen: this.db.prepare('SELECT 1 FROM open_serials WHERE serial = ?').pluck(),
      openSerials: this.db.prepare('SELECT serial FROM open_serials ORDER BY serial').pluck(),
      addClaim: this.db.prepare('INSERT OR IGNORE INTO claims (digest) VALUES (?)'),
      claimHeld: this.db.prepare('SELECT 1 FROM claims WHERE digest = ?').pluck(),
      addKey: this.db.prepare('INSERT OR REPLACE INTO idempotency (digest, request_digest, result) VALUES (?, ?, ?)'),
      key: this.db.prepare('SELECT request_digest, result FROM idempotency WHERE digest = ?'),
      sequence: this.db.prepare('SELECT sequence FROM sequences WHERE prefix = ?').pluck(),
      setSequence: this.db.prepare('INSERT INTO sequences (prefix, sequence) VALUES (?, ?) ON CONFLICT (prefix) DO UPDATE SET sequence = max(sequence, excluded.sequence)'),
    };
    this.mark = this.readMark();
    this.applyAll = this.db.transaction((events: readonly RecordedEvent[]) => {
      for (const event of events) this.applyOne(event);
      this.writeMark();
    });
  }

  /** What the index holds: the log's first `through` events (the last one's id to recognise the log by). */
  get indexed(): LogIndexMark {
    return this.mark;
  }

  /** Empties the index (of another log, or of a log that was replaced): the store reads the log from the start. */
  clear(): void {
    this.stamp = undefined;
    this.mark = { through: 0, lastEventId: undefined };
    this.db.transaction(() => {
      this.clearRows();
      this.writeMark();
    })();
  }

  private readMark(): LogIndexMark {
    const version = this.stmt.getMeta.get('version') as string | undefined;
    const stream = this.stmt.getMeta.get('log_stream') as string | undefined;
    const through = Number((this.stmt.getMeta.get('through') as string | undefined) ?? '0');
    if (version !== INDEX_VERSION || stream !== this.logStream || !Number.isSafeInteger(through) || through <= 0) {
      if (version !== undefined || stream !== undefined) this.clearRows();
      return { through: 0, lastEventId: undefined };
    }
    const stamp = this.stmt.getMeta.get('open_stamp') as string | undefined;
    this.stamp = stamp === undefined ? undefined : (JSON.parse(stamp) as OpenStamp);
    return { through, lastEventId: this.stmt.getMeta.get('last_event_id') as string | undefined };
  }

  private clearRows(): void {
    for (const table of ['stream_events', 'serial_events', 'open_serials', 'claims', 'idempotency', 'sequences', 'meta']) this.db.exec(`DELETE FROM ${table}`);
  }

  private writeMark(): void {
    this.stmt.setMeta.run('version', INDEX_VERSION);
    this.stmt.setMeta.run('log_stream', this.logStream);
    this.stmt.setMeta.run('through', String(this.mark.through));
    if (this.mark.lastEventId === undefined) this.stmt.deleteMeta.run('last_event_id');
    else this.stmt.setMeta.run('last_event_id', this.mark.lastEventId);
    if (this.stamp === undefined) this.stmt.deleteMeta.run('open_stamp');
    else this.stmt.setMeta.run('open_stamp', JSON.stringify(this.stamp));
  }

  private applyOne(event: RecordedEvent): void {
    const position = event.position;
    if (position !== this.mark.through) throw new Error(`the log index expected position ${this.mark.through}, not ${position}`);
    this.stmt.addStreamEvent.run(event.streamId, event.streamRevision, position);
    this.stmt.addSerialEvent.run(event.serial, position);
    if (event.terminal !== undefined) this.stmt.closeSerial.run(event.serial);
    else this.stmt.openSerial.run(event.serial);
    if (event.claims !== undefined) for (const claim of event.claims) this.stmt.addClaim.run(digestOf(claim));
    this.stmt.setSequence.run(event.serial.slice(0, 10), Number(event.serial.slice(10)));
    const stamp = event.metadata.idempotency;
    if (stamp !== undefined) this.stamp = { key: stamp.key, requestDigest: stamp.requestDigest, events: stamp.events, firstPosition: position, eventIds: [] };
    const open = this.stamp;
    if (open !== undefined) {
      open.eventIds.push(event.eventId);
      if (open.eventIds.length === open.events) {
        const result: AppendResult = {
          status: 'appended',
          serial: event.serial,
          firstPosition: open.firstPosition,
          lastPosition: position,
          nextExpectedRevision: event.streamRevision,
          eventIds: open.eventIds,
        };
        this.stmt.addKey.run(digestOf(open.key), open.requestDigest, JSON.stringify(result));
        this.stamp = undefined;
      }
    }
    this.mark = { through: position + 1, lastEventId: event.eventId };
  }

  streamRevision(streamId: string): number | undefined {
    const revision = this.stmt.streamRevision.get(streamId) as number | null | undefined;
    return revision ?? undefined;
  }

  serialState(serial: SerialNumber): 'open' | 'closed' | undefined {
    if (this.stmt.isOpen.get(serial) !== undefined) return 'open';
    return this.stmt.serialKnown.get(serial) !== undefined ? 'closed' : undefined;
  }

  claimHeld(claim: string): boolean {
    return this.stmt.claimHeld.get(digestOf(claim)) !== undefined;
  }

  idempotency(key: string): StoredIdempotency | undefined {
    const row = this.stmt.key.get(digestOf(key)) as { request_digest: string; result: string } | undefined;
    return row === undefined ? undefined : { requestDigest: row.request_digest, result: JSON.parse(row.result) as AppendResult };
  }

  lastSequence(day: string, nodeId: number): number {
    return (this.stmt.sequence.get(`${day}${String(nodeId).padStart(2, '0')}`) as number | undefined) ?? 0;
  }

  /** Log positions of a stream's events from revision `from` on, at most `maxCount`. */
  streamPositions(streamId: string, from: number, maxCount: number | undefined): number[] {
    return this.stmt.streamPositions.all(streamId, from, maxCount ?? -1) as number[];
  }

  serialPositions(serial: string): number[] {
    return this.stmt.serialPositions.all(serial) as number[];
  }

  openSerials(): SerialNumber[] {
    return this.stmt.openSerials.all() as SerialNumber[];
  }

  close(): void {
    if (this.db.open) this.db.close();
  }
}

function digestOf(text: string): Buffer {
  return createHash('sha256').update(text, 'utf8').digest();
}
