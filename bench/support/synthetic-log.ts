/**
 * A synthetic log for the benches that read one (bench:audit, bench:self-check): canonical envelopes
 * exactly as the ledger stores them, written with a bare better-sqlite3 transaction; the authorization
 * table published first, then linkages of three events on one serial and stream (an accepted query with
 * the hub's clear fields, its provision requested, its provision completed), and a CheckpointSigned event
 * with a real signed note every `checkpointEvery` events.
 */
import Database from 'better-sqlite3';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { CompactRange, leafHash } from '#audit-log';
import {
  CHECKPOINT_SIGNED,
  CHECKPOINT_STREAM,
  LEDGER_DDL,
  canonicalEnvelope,
  formatSerialNumber,
  signedCheckpointData,
  type EventId,
  type RecordedEvent,
  type SerialNumber,
} from '#ledger';

export interface SyntheticLogOptions {
  readonly path: string;
  readonly events: number;
  readonly checkpointEvery: number;
  /** The checkpoints' origin and Ed25519 private key. */
  readonly origin: string;
  readonly privateKey: Uint8Array;
}

export interface SyntheticLog {
  readonly checkpoints: number;
  readonly seconds: number;
  /** Characters of envelope text written. */
  readonly bytes: number;
}

export function writeSyntheticLog(options: SyntheticLogOptions): SyntheticLog {
  const { path, origin, privateKey } = options;
  const EVENTS = options.events;
  const EVERY = options.checkpointEvery;
  const started = process.hrtime.bigint();
  const db = new Database(path);
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = OFF');
  db.exec(LEDGER_DDL);
  db.prepare(`INSERT INTO ledger_meta (key, value) VALUES ('schema_version', '1')`).run();
  const insert = db.prepare('INSERT INTO events (position, stream_id, stream_revision, serial, envelope) VALUES (?, ?, ?, ?, ?)');
  const range = CompactRange.empty();
  let rows: [number, string, number, string, string][] = [];
  const flush = db.transaction((batch: typeof rows) => {
    for (const r of batch) insert.run(r);
  });
  let position = 0;
  let sequence = 0;
  let checkpoints = 0;
  let nextCheckpoint = EVERY;
  let bytes = 0;
  const baseMs = Date.parse('2026-11-22T01:00:00.000Z');
  const write = (event: Omit<RecordedEvent, 'position' | 'eventId' | 'recordedAt'>) => {
    const full: RecordedEvent = {
      ...event,
      eventId: `0194f7a2-${String(position).padStart(4, '0').slice(-4)}-7000-8000-${String(position).padStart(12, '0')}` as EventId,
      position,
      recordedAt: new Date(baseMs + position).toISOString(),
    };
    const text = canonicalEnvelope(full);
    bytes += text.length;
    range.append(leafHash(text));
    rows.push([position, full.streamId, full.streamRevision, full.serial, text]);
    position += 1;
    if (rows.length >= 50_000) {
      flush(rows);
      rows = [];
    }
  };
  const serial = () => formatSerialNumber({ day: '20261122', nodeId: 1, sequence: ++sequence }) as SerialNumber;
  let linkage = 0;
  // The authorization table the queries below are judged by, published as the hub publishes it.
  const table = JSON.parse(readFileSync(join(import.meta.dirname, '../../schemas/authorization/authorization-table.v1.json'), 'utf8')) as { $schema?: string; version: number; effectiveFrom: string };
  delete table.$schema;
  write({ type: 'AuthorizationTablePublished', schemaVersion: 1, streamId: 'authorization-table', streamRevision: 0, serial: serial(), terminal: 'completed', data: { version: table.version, effectiveFrom: table.effectiveFrom, digest: 'c0'.repeat(32), publishedAt: '2026-11-22T00:00:00.000Z', table }, metadata: { actor: 'system:hub', correlationId: 'table-1' } });
  while (position < EVENTS) {
    if (position >= nextCheckpoint) {
      const data = signedCheckpointData(origin, range.size, range.root(), baseMs + position, privateKey);
      write({ type: CHECKPOINT_SIGNED, schemaVersion: 1, streamId: CHECKPOINT_STREAM, streamRevision: checkpoints++, serial: serial(), terminal: 'completed', data, metadata: { actor: 'system:checkpoint', correlationId: `cp-${checkpoints}` } });
      nextCheckpoint += EVERY;
      continue;
    }
    // One linkage: query accepted, provision requested, provision completed, all on one serial and stream.
    const s = serial();
    const streamId = `linkage-${String(++linkage).padStart(12, '0')}`;
    const steps = EVENTS - position >= 3 ? 3 : 1;
    for (let r = 0; r < steps; r++) {
      write({
        type: ['QueryAccepted', 'ProvisionRequested', 'ProvisionCompleted'][steps === 1 ? 2 : r]!,
        schemaVersion: 1,
        streamId,
        streamRevision: r,
        serial: s,
        ...(r === steps - 1 ? { terminal: 'completed' as const } : {}),
        data: r === 0 && steps === 3 ? {
          queryId: `q-${linkage}`,
          requesterAgencyId: 'jpn-pension-service',
          requesterKind: 'pension-service',
          providerAgencyId: 'muroran-city',
          providerKind: 'municipality',
          procedureCode: 'pension-award-claim',
          itemCodes: ['local-tax'],
          tableVersion: 1,
          subjectId: `0194f7a2-0000-7000-8000-${String(linkage).padStart(12, '0')}`,
          requesterCodeDigest: 'a3f1c9e0b4d2'.repeat(6).slice(0, 64),
          acceptedAt: new Date(baseMs + position).toISOString(),
        } : {
          requester: 'agency:pension-service',
          provider: 'agency:012050',
          procedure: 'child-allowance-application',
          items: ['local-tax-information'],
          requesterCode: `code-${linkage.toString(36).padStart(10, '0')}`,
          answerDigest: 'a3f1c9e0b4d2'.repeat(6).slice(0, 64),
          answerBytes: 1834,
        },
        metadata: { actor: 'agency:pension-service', correlationId: `corr-${linkage}-${r}` },
      });
    }
  }
  if (rows.length > 0) flush(rows);
  db.pragma('wal_checkpoint(TRUNCATE)');
  db.close();
  return { checkpoints, seconds: Number(process.hrtime.bigint() - started) / 1e9, bytes };
}

