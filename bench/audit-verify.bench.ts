/**
 * The auditor's `verify` over a 1,000,000-event log: the log is written with a bare better-sqlite3
 * transaction (canonical envelopes exactly as the ledger stores them, real signed checkpoints every
 * 100,000 events, the authorization table published first and one QueryAccepted with the hub's clear
 * fields in every three events), then verifyLog reads, hashes and checks all of it, the lawfulness of
 * each accepted query included, in several rounds over the same file (the median is the figure: one
 * round on a shared machine can be a second off). Last line: one JSON object.
 *   npm run bench:audit [-- --events 1000000 --checkpoint-every 100000 --threads 2 --rounds 3]
 */
import Database from 'better-sqlite3';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { CompactRange, formatVerifierKey, leafHash, publicKeyOf } from '#audit-log';
import {
  CHECKPOINT_SIGNED,
  CHECKPOINT_STREAM,
  LEDGER_DDL,
  canonicalEnvelope,
  defaultCheckpointOrigin,
  formatSerialNumber,
  signedCheckpointData,
  type EventId,
  type RecordedEvent,
  type SerialNumber,
} from '#ledger';
import { verifyLog } from '../apps/auditor/src/verify/verify-log.js';

const { values } = parseArgs({
  options: {
    events: { type: 'string', default: '1000000' },
    'checkpoint-every': { type: 'string', default: '100000' },
    threads: { type: 'string' },
    rounds: { type: 'string', default: '3' },
    keep: { type: 'boolean', default: false },
  },
});
const EVENTS = Number(values.events);
const EVERY = Number(values['checkpoint-every']);
const dir = mkdtempSync(join(tmpdir(), 'bench-audit-'));
const path = join(dir, 'ledger.sqlite');
const origin = defaultCheckpointOrigin(1);
// A fixed bench key (never a real one), so a kept log can be verified again with the CLI.
const key = { privateKey: new Uint8Array(32).fill(7), publicKey: publicKeyOf(new Uint8Array(32).fill(7)) };
const verifierKey = formatVerifierKey({ name: origin, publicKey: key.publicKey });

function buildLog(): { checkpoints: number; seconds: number; bytes: number } {
  const started = process.hrtime.bigint();
  const db = new Database(path);
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = OFF');
  db.exec(LEDGER_DDL);
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
  const table = JSON.parse(readFileSync(join(import.meta.dirname, '../schemas/authorization/authorization-table.v1.json'), 'utf8')) as { $schema?: string; version: number; effectiveFrom: string };
  delete table.$schema;
  write({ type: 'AuthorizationTablePublished', schemaVersion: 1, streamId: 'authorization-table', streamRevision: 0, serial: serial(), terminal: 'completed', data: { version: table.version, effectiveFrom: table.effectiveFrom, digest: 'c0'.repeat(32), publishedAt: '2026-11-22T00:00:00.000Z', table }, metadata: { actor: 'system:hub', correlationId: 'table-1' } });
  while (position < EVENTS) {
    if (position >= nextCheckpoint) {
      const data = signedCheckpointData(origin, range.size, range.root(), baseMs + position, key.privateKey);
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

try {
  const built = buildLog();
  console.log(`built a ${EVENTS.toLocaleString('en')}-event log (${(built.bytes / 1e6).toFixed(0)} MB of envelopes, ${built.checkpoints} signed checkpoints) in ${built.seconds.toFixed(1)} s`);
  const threads = values.threads === undefined ? undefined : Number(values.threads);
  const rounds = Math.max(1, Number(values.rounds));
  const seconds: number[] = [];
  let report: Awaited<ReturnType<typeof verifyLog>> | undefined;
  for (let round = 1; round <= rounds; round++) {
    report = await verifyLog({ source: { kind: 'db', path }, verifierKey, ...(threads !== undefined ? { threads } : {}) });
    if (!report.ok) {
      console.error(`verify FAILED on a log that should be valid: ${JSON.stringify(report.firstFailure)}`);
      process.exitCode = 1;
      break;
    }
    seconds.push(report.seconds);
    console.log(`round ${round}: verified ${report.events.toLocaleString('en')} events, ${report.checkpoints.verified}/${report.checkpoints.seen} checkpoints, in ${report.seconds.toFixed(2)} s`);
  }
  if (report !== undefined && report.ok) {
    const median = [...seconds].sort((a, b) => a - b)[Math.floor(seconds.length / 2)]!;
    const rate = report.events / median;
    console.log(`verify: ${report.events.toLocaleString('en')} events, root ${report.rootHex}`);
    console.log(`verify, median of ${seconds.length}: ${median.toFixed(2)} s, ${Math.round(rate).toLocaleString('en')} events/s (bar: ≤ 5 s for 1,000,000): ${median <= 5 * (report.events / 1_000_000) ? 'met' : 'NOT met'}`);
    console.log(JSON.stringify({ bench: 'audit-verify', events: report.events, rounds: seconds.length, seconds: Number(median.toFixed(3)), rounds_seconds: seconds.map((s) => Number(s.toFixed(3))), events_per_s: Math.round(rate) }));
  }
} finally {
  if (!values.keep) rmSync(dir, { recursive: true, force: true });
  else console.error(`kept ${path}; verifier key ${verifierKey}`);
}
