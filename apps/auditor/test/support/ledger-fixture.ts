import Database from 'better-sqlite3';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { formatVerifierKey, generateSigningKey, type Hash } from '#audit-log';
import {
  MerkleTreeProjection,
  SqliteEventStore,
  canonicalEnvelope,
  checkpointAppendRequest,
  defaultCheckpointOrigin,
  signedCheckpointData,
  type RecordedEvent,
} from '#ledger';

export interface LedgerFixture {
  readonly path: string;
  readonly origin: string;
  readonly verifierKey: string;
  readonly privateKey: Uint8Array;
  /** Positions of the CheckpointSigned events, in order. */
  readonly checkpointPositions: number[];
}

export const tmp = (prefix: string) => mkdtempSync(join(tmpdir(), prefix));

const meta = { actor: 'agency:pension-service', correlationId: 'c' };

/**
 * A real ledger file written by SqliteEventStore: `linkages` three-event serials (query received,
 * provision requested, provision completed), a signed checkpoint after every `checkpointEvery` events,
 * and the hub's tree projection caught up to the end, exactly as a running hub leaves it.
 */
export async function buildLedger(dir: string, linkages = 40, checkpointEvery = 30): Promise<LedgerFixture> {
  const path = join(dir, `ledger-${Math.random().toString(36).slice(2)}.sqlite`);
  const origin = defaultCheckpointOrigin(1);
  const key = generateSigningKey();
  let clock = Date.parse('2026-11-22T01:00:00.000Z');
  const store = new SqliteEventStore({ path, nodeId: 1, now: () => new Date((clock += 7)) });
  const tree = new MerkleTreeProjection({ source: path });
  const checkpointPositions: number[] = [];
  let lastCheckpoint = 0;
  for (let i = 0; i < linkages; i++) {
    const streamId = `linkage-${i}`;
    const first = await store.append({ streamId, expectedRevision: 'no_stream', serial: { allocate: true }, events: [{ type: 'QueryReceived', data: { i, note: 'provision record: 室蘭市 → 日本年金機構, é' } }], metadata: meta });
    const serial = { continue: first.serial };
    await store.append({ streamId, expectedRevision: 0, serial, events: [{ type: 'ProvisionRequested', data: { i } }], metadata: meta });
    const last = await store.append({ streamId, expectedRevision: 1, serial, events: [{ type: 'ProvisionCompleted', data: { i, answerBytes: 100 + i }, terminal: 'completed' }], metadata: meta });
    if (last.lastPosition + 1 - lastCheckpoint >= checkpointEvery) {
      tree.catchUp();
      const data = signedCheckpointData(origin, tree.size, tree.root(), clock, key.privateKey);
      const cp = await store.append(checkpointAppendRequest(data, { actor: 'system:checkpoint', correlationId: 'cp' }));
      checkpointPositions.push(cp.firstPosition);
      lastCheckpoint = cp.firstPosition + 1;
    }
  }
  await store.close();
  tree.catchUp();
  tree.close();
  return { path, origin, verifierKey: formatVerifierKey({ name: origin, publicKey: key.publicKey }), privateKey: key.privateKey, checkpointPositions };
}

let laterClock = Date.parse('2027-01-01T00:00:00.000Z');

/**
 * Signs a checkpoint over the log as it is now (with the fixture's key, at a time after every earlier
 * one) and appends it through `store`, as the hub's signer does. Returns its position and size.
 */
export async function appendCheckpoint(f: LedgerFixture, store: SqliteEventStore): Promise<{ position: number; size: number }> {
  const tree = new MerkleTreeProjection({ source: f.path });
  try {
    tree.catchUp();
    const data = signedCheckpointData(f.origin, tree.size, tree.root(), (laterClock += 1000), f.privateKey);
    const cp = await store.append(checkpointAppendRequest(data, { actor: 'system:checkpoint', correlationId: 'cp' }));
    return { position: cp.firstPosition, size: data.size };
  } finally {
    tree.close();
  }
}

/** A raw connection with the append-only guard removed: the attacker's view of the file. */
export function tamper(path: string): Database.Database {
  const db = new Database(path);
  db.exec('DROP TRIGGER IF EXISTS events_append_only_update; DROP TRIGGER IF EXISTS events_append_only_delete;');
  return db;
}

export function envelopeAt(db: Database.Database, position: number): RecordedEvent {
  return JSON.parse(db.prepare('SELECT envelope FROM events WHERE position = ?').pluck().get(position) as string) as RecordedEvent;
}

/** Appends a canonical row directly (as a buggy or malicious writer would), bypassing the store's rules. */
export function insertRow(db: Database.Database, event: Omit<RecordedEvent, 'position'>): number {
  const position = (db.prepare('SELECT max(position) + 1 FROM events').pluck().get() as number) ?? 0;
  const full = { ...event, position } as RecordedEvent;
  db.prepare('INSERT INTO events (position, stream_id, stream_revision, serial, envelope) VALUES (?, ?, ?, ?, ?)').run(position, full.streamId, full.streamRevision, full.serial, canonicalEnvelope(full));
  return position;
}

export type { Hash };
