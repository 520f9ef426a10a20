import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';
import type { Finding } from './findings.js';

/**
 * Leaves per chunk: a power of two, so every chunk is a perfect subtree of the log's tree and the
 * workers' chunk trees join without rehashing.
 */
export const CHUNK_HEIGHT = 14;
export const CHUNK_LEAVES = 2 ** CHUNK_HEIGHT;

export const FLAG_TERMINAL_MASK = 7;
export const TERMINAL_CODES = ['', 'completed', 'denied', 'failed', 'voided'] as const;
export const FLAG_SERIAL_VOIDED = 8;
export const FLAG_CHECKPOINT = 16;
export const FLAG_QUERY_ACCEPTED = 32;
export const FLAG_TABLE_PUBLISHED = 64;
/** A SelfDisclosureTablePublished event (自己情報表示): a special, like an authorization table. */
export const FLAG_SELF_DISCLOSURE_PUBLISHED = 128;

/** An event the main thread parses itself, in log order: its row in the chunk, position and envelope. */
export interface Special {
  readonly index: number;
  readonly position: number;
  readonly envelope: string;
}

/**
 * The QueryAccepted events of a chunk, as compact columns: for each, its row in the chunk, its acceptedAt
 * in epoch ms (NaN when it has none) and the index of its shape in `shapes`. A shape is the JSON text of
 * [schemaVersion, tableVersion, requesterKind, procedureCode, providerKind, itemCodes] as the clear
 * fields hold them, or "!" and why they could not be read: a log holds few distinct shapes, so the main
 * thread reads and judges each shape once and each query costs it a look-up.
 */
export interface ChunkQueries {
  readonly count: number;
  readonly rows: Uint32Array;
  readonly atMs: Float64Array;
  readonly shapeOf: Uint32Array;
  readonly shapes: string[];
}

/** What a worker returns for one chunk of the log. */
export interface ChunkResult {
  readonly id: number;
  readonly from: number;
  /** Rows read (fewer than asked means positions are missing). */
  readonly count: number;
  /** Every complete node of the chunk's tree, level by level from the leaves up, 32 bytes each. */
  readonly nodes: Uint8Array;
  /** Position of each row (the stored column; from a hub, the envelope's own). */
  readonly positions: Float64Array;
  /** The envelope serial of each row, 20 ASCII digits each. */
  readonly serials: Uint8Array;
  /** Each stream the chunk touches: its first and last revision in the chunk and where it first appears. */
  readonly streams: { readonly names: string[]; readonly first: number[]; readonly last: number[]; readonly positions: number[] };
  readonly flags: Uint8Array;
  readonly findings: Finding[];
  /** In log order: the envelopes the main thread parses (SerialVoided, CheckpointSigned, CheckpointKeyRotated, AuthorizationTablePublished and AuthorizationTableWithdrawn, SelfDisclosureTablePublished). */
  readonly specials: Special[];
  readonly queries: ChunkQueries;
}

export type ChunkRequest =
  | { readonly kind: 'range'; readonly from: number; readonly to: number }
  | { readonly kind: 'texts'; readonly from: number; readonly texts: string };

// Plain JavaScript run by each worker (eval'd, so it loads the same way from sources, dist and tsx).
// The leaf hash MUST equal #audit-log's leafHash: SHA-256(0x00 ‖ UTF-8 of the stored text); a test pins it.
const WORKER_SOURCE = String.raw`
const { parentPort, workerData } = require('node:worker_threads');
const { hash } = require('node:crypto');
let select;
if (workerData.path) {
  const Database = require(workerData.driver);
  const db = new Database(workerData.path, { readonly: true, fileMustExist: true });
  db.pragma('busy_timeout = 5000');
  // Pages are read straight from the OS cache instead of being copied into SQLite's own.
  db.pragma('mmap_size = ' + workerData.mmapBytes);
  // char(0) || envelope is the leaf input itself (0x00 ‖ UTF-8 text), built by SQLite without a JS copy.
  select = db.prepare('SELECT position, stream_id, stream_revision, serial, char(0) || envelope FROM events WHERE position >= ? AND position < ? ORDER BY position').raw();
}
// The top-level fields after "metadata" are plain values in a fixed (sorted) order: they are read from
// the tail of the text, in place, without allocating (a million events leave no garbage behind).
const tail = { n: 0, positionAt: 0, position: 0, schemaVersion: 0, serialAt: 0, streamAt: 0, streamEnd: 0, revision: 0, terminal: 0, kind: 0 };
const TERMINALS = ['completed', 'denied', 'failed', 'voided'];
function digits(s, p) {
  let n = 0;
  let q = p;
  for (let c = s.charCodeAt(q); c >= 48 && c <= 57; c = s.charCodeAt(++q)) n = n * 10 + c - 48;
  const d = q - p;
  if (d === 0 || d > 15 || (d > 1 && s.charCodeAt(p) === 48)) return -1;
  tail.n = n;
  return q;
}
function parseTail(s) {
  let p = s.lastIndexOf(',"position":');
  if (p < 0) return false;
  tail.positionAt = p;
  if ((p = digits(s, p + 12)) < 0) return false;
  tail.position = tail.n;
  if (!s.startsWith(',"recordedAt":"', p)) return false;
  p = s.indexOf('"', p + 15);
  if (p < 0 || !s.startsWith('","schemaVersion":', p)) return false;
  if ((p = digits(s, p + 18)) < 0) return false;
  tail.schemaVersion = tail.n;
  if (!s.startsWith(',"serial":"', p)) return false;
  p += 11;
  tail.serialAt = p;
  for (let k = 0; k < 20; k++) {
    const c = s.charCodeAt(p + k);
    if (c < 48 || c > 57) return false;
  }
  p += 20;
  if (!s.startsWith('","streamId":"', p)) return false;
  tail.streamAt = p + 14;
  p = s.indexOf('"', p + 14);
  if (p < 0) return false;
  tail.streamEnd = p;
  if (!s.startsWith('","streamRevision":', p)) return false;
  if ((p = digits(s, p + 19)) < 0) return false;
  tail.revision = tail.n;
  if (s.charCodeAt(p) !== 44) return false;
  p += 1;
  tail.terminal = 0;
  if (s.startsWith('"terminal":"', p)) {
    p += 12;
    for (let t = 0; t < 4; t++) {
      if (s.startsWith(TERMINALS[t], p) && s.startsWith('",', p + TERMINALS[t].length)) {
        tail.terminal = t + 1;
        p += TERMINALS[t].length + 2;
        break;
      }
    }
    if (tail.terminal === 0) return false;
  }
  if (!s.startsWith('"type":"', p)) return false;
  p += 8;
  const end = s.length - 2;
  if (s.indexOf('"', p) !== end || s.charCodeAt(end + 1) !== 125) return false;
  // The type's length first: most events are none of these, and are told so by one comparison.
  const length = end - p;
  tail.kind =
    length === 12 && s.startsWith('SerialVoided', p) ? 8
    : length === 16 && s.startsWith('CheckpointSigned', p) ? 16
    : length === 20 && s.startsWith('CheckpointKeyRotated', p) ? 16
    : length === 13 && s.startsWith('QueryAccepted', p) ? 32
    : length === 27 && (s.startsWith('AuthorizationTablePublished', p) || s.startsWith('AuthorizationTableWithdrawn', p)) ? 64
    : length === 28 && s.startsWith('SelfDisclosureTablePublished', p) ? 128
    : 0;
  return true;
}
// The shape of a QueryAccepted (see ChunkQueries): only its clear fields go to the main thread, never a
// sealed part (schema version 2).
//
// The hub writes a QueryAccepted in one canonical form per schema version, which one anchored regular
// expression reads in half the time of JSON.parse and JSON.stringify: data with exactly the keys of
// QueryAcceptedData in order (batch optional; version 1 with the subject and the requester's code digest
// in clear, version 2 with them in the sealed section), every string plain (nothing escaped), then the
// event id and the metadata. It is taken only when the rest holds too (the metadata parses as one object
// ending where the tail starts, the tail has nothing escaped), so the envelope is then exactly the JSON
// this reading says, with no repeated key; any other form is read with JSON.parse, as every reader does.
const PLAIN = '[^"\\\\\\u0000-\\u001f\\ud800-\\udfff]*';
const NUMBER = '(?:0|[1-9][0-9]{0,14})';
const CANONICAL_QUERY = new RegExp(
  '^\\u0000\\{"data":\\{"acceptedAt":"(' + PLAIN + ')",' +
    '(?:"batch":\\{"batchId":"' + PLAIN + '","index":' + NUMBER + ',"size":' + NUMBER + '\\},)?' +
    '"itemCodes":\\[("' + PLAIN + '"(?:,"' + PLAIN + '")*)\\],"procedureCode":"(' + PLAIN + ')","providerAgencyId":"' + PLAIN + '",' +
    '"providerKind":"(' + PLAIN + ')","queryId":"' + PLAIN + '","requesterAgencyId":"' + PLAIN + '",(?:"requesterCodeDigest":"' + PLAIN + '",)?' +
    '"requesterKind":"(' + PLAIN + ')",' +
    // Schema version 2: the subject and the requester's code sealed (libs/sealing's sealed section v1).
    '(?:"sealed":\\{"box":"' + PLAIN + '","commitments":\\{"requesterCode":"' + PLAIN + '","subjectId":"' + PLAIN + '"\\},"keyRef":"' + PLAIN + '","nonce":"' + PLAIN + '","v":' + NUMBER + '\\},)?' +
    '(?:"subjectId":"' + PLAIN + '",)?"tableVersion":(' + NUMBER + ')\\},"eventId":"[0-9a-f-]{36}","metadata":\\{',
);
const ESCAPED = /[\\\u0000-\u001f]/g;
const query = { shape: '', atMs: NaN };
function readCanonicalQuery(text) {
  const m = CANONICAL_QUERY.exec(text);
  if (m === null) return false;
  ESCAPED.lastIndex = tail.positionAt;
  if (ESCAPED.test(text)) return false;
  let metadata;
  try {
    metadata = JSON.parse(text.slice(m[0].length - 1, tail.positionAt));
  } catch {
    return false;
  }
  if (metadata === null || typeof metadata !== 'object' || Array.isArray(metadata)) return false;
  // Plain strings and plain integers: this is the text JSON.stringify gives for the same values.
  query.shape = '[' + tail.schemaVersion + ',' + m[6] + ',"' + m[5] + '","' + m[3] + '","' + m[4] + '",[' + m[2] + ']]';
  query.atMs = Date.parse(m[1]);
  return true;
}
function readQuery(text) {
  query.atMs = NaN;
  if (readCanonicalQuery(text)) return;
  let d;
  try {
    d = JSON.parse(text.slice(1)).data;
  } catch {
    query.shape = '!the envelope is not JSON';
    return;
  }
  if (d === null || typeof d !== 'object' || Array.isArray(d)) {
    query.shape = '!the envelope has no data object';
    return;
  }
  query.shape = JSON.stringify([tail.schemaVersion, d.tableVersion, d.requesterKind, d.procedureCode, d.providerKind, d.itemCodes]);
  if (typeof d.acceptedAt === 'string') query.atMs = Date.parse(d.acceptedAt);
}
const node = Buffer.alloc(65);
node[0] = 1;
// Hashes come back as 32-character latin1 strings (one char per byte), written straight into the node
// array: crypto.hash returns a string in a fraction of the time it takes to return a Buffer. The leaf
// input is the text itself (it starts with U+0000, whose UTF-8 is the byte 0x00).
function leafOf(text) {
  return hash('sha256', text, 'latin1');
}

function run(m) {
  const columns = m.kind === 'range';
  const texts = columns ? null : m.texts.length === 0 ? [] : m.texts.split('\n');
  const capacity = columns ? m.to - m.from : texts.length;
  let total = 0;
  for (let w = capacity; w >= 1; w = Math.floor(w / 2)) total += w;
  const nodes = new Uint8Array(total * 32);
  const nodeBytes = Buffer.from(nodes.buffer, nodes.byteOffset, nodes.byteLength);
  const positions = new Float64Array(capacity);
  const flags = new Uint8Array(capacity);
  const serials = Buffer.alloc(capacity * 20, 48);
  // Streams are summarised per chunk: first and last revision, so the main thread sees each stream once.
  const streamIndex = new Map();
  const streams = [];
  const streamFirst = [];
  const streamLast = [];
  const streamPosition = [];
  const findings = [];
  const specials = [];
  const queryRows = new Uint32Array(capacity);
  const queryAt = new Float64Array(capacity);
  const queryShape = new Uint32Array(capacity);
  const shapeIndex = new Map();
  const shapes = [];
  let queries = 0;
  let previous = m.from - 1;
  let i = 0;
  const visit = (position0, colStream, colRevision, colSerial, text) => {
    nodeBytes.write(leafOf(text), i * 32, 32, 'latin1');
    const ok = parseTail(text);
    const ordinal = m.from + i;
    const position = columns ? position0 : ok ? tail.position : ordinal;
    positions[i] = position;
    if (columns && position !== previous + 1) {
      findings.push({ code: 'POSITION_MISSING', position: previous + 1, serial: null, message: 'positions ' + (previous + 1) + (position - 1 > previous + 1 ? '..' + (position - 1) : '') + ' are missing from the log (the next stored row is position ' + position + '): events were deleted (I1)', expected: previous + 1, calculated: position });
    }
    previous = position;
    let serial = colSerial;
    let stream = colStream;
    let revision = colRevision;
    if (!ok) {
      findings.push({ code: 'ENVELOPE_MALFORMED', position, serial: colSerial, message: 'the stored envelope at position ' + position + ' does not end with the canonical top-level fields (position … type): it is not an RFC 8785 envelope of this ledger', expected: null, calculated: null });
      if (!columns) {
        i++;
        return;
      }
      if (/^[0-9]{20}$/.test(colSerial)) serials.write(colSerial, i * 20, 'latin1');
    } else {
      for (let k = 0; k < 20; k++) serials[i * 20 + k] = text.charCodeAt(tail.serialAt + k);
      flags[i] = tail.terminal | tail.kind;
      if (tail.kind === 32) {
        readQuery(text);
        let k = shapeIndex.get(query.shape);
        if (k === undefined) {
          k = shapes.length;
          shapeIndex.set(query.shape, k);
          shapes.push(query.shape);
        }
        queryRows[queries] = i;
        queryAt[queries] = query.atMs;
        queryShape[queries] = k;
        queries++;
      } else if (tail.kind !== 0) specials.push({ index: i, position, envelope: text.slice(1) });
      if (columns) {
        if (tail.position !== position) findings.push({ code: 'FIELD_MISMATCH', position, serial: colSerial, message: 'the envelope stored at position ' + position + ' says position ' + tail.position + ' (events were moved or swapped)', field: 'position', expected: position, calculated: tail.position });
        if (!text.startsWith(colSerial, tail.serialAt) || colSerial.length !== 20) {
          serial = text.slice(tail.serialAt, tail.serialAt + 20);
          findings.push({ code: 'FIELD_MISMATCH', position, serial: colSerial, message: 'at position ' + position + ' the serial column is ' + colSerial + ' but the envelope says ' + serial, field: 'serial', expected: colSerial, calculated: serial });
        }
        if (tail.streamEnd - tail.streamAt !== colStream.length || !text.startsWith(colStream, tail.streamAt)) {
          stream = text.slice(tail.streamAt, tail.streamEnd);
          findings.push({ code: 'FIELD_MISMATCH', position, serial: colSerial, message: 'at position ' + position + ' the stream column is ' + colStream + ' but the envelope says ' + stream, field: 'streamId', expected: colStream, calculated: stream });
        }
        if (tail.revision !== colRevision) {
          findings.push({ code: 'FIELD_MISMATCH', position, serial: colSerial, message: 'at position ' + position + ' the revision column is ' + colRevision + ' but the envelope says ' + tail.revision, field: 'streamRevision', expected: colRevision, calculated: tail.revision });
          revision = tail.revision;
        }
      } else {
        serial = text.slice(tail.serialAt, tail.serialAt + 20);
        stream = text.slice(tail.streamAt, tail.streamEnd);
        revision = tail.revision;
        if (tail.position !== ordinal) findings.push({ code: 'FIELD_MISMATCH', position: ordinal, serial, message: 'entry ' + ordinal + ' of the log says position ' + tail.position + ' (events were moved, removed or swapped)', field: 'position', expected: ordinal, calculated: tail.position });
      }
    }
    const s = streamIndex.get(stream);
    if (s === undefined) {
      streamIndex.set(stream, streams.length);
      streams.push(stream);
      streamFirst.push(revision);
      streamLast.push(revision);
      streamPosition.push(position);
    } else {
      if (revision !== streamLast[s] + 1) {
        findings.push({ code: 'STREAM_REVISION_GAP', position, serial, message: 'stream ' + stream + ' goes from revision ' + streamLast[s] + ' to ' + revision + ' (I1: revisions are contiguous from 0)', expected: streamLast[s] + 1, calculated: revision });
      }
      streamLast[s] = revision;
    }
    i++;
  };
  if (columns) {
    // Small reads: rows die young, which keeps the garbage collector cheap (one big read is 3x slower).
    for (let f = m.from; f < m.to; f += 1024) {
      const part = select.all(f, Math.min(m.to, f + 1024));
      for (let k = 0; k < part.length; k++) {
        const r = part[k];
        visit(r[0], r[1], r[2], r[3], r[4]);
      }
    }
  } else {
    for (let k = 0; k < texts.length; k++) visit(null, null, null, null, '\u0000' + texts[k]);
  }
  const n = i;
  if (columns && previous < m.to - 1) {
    findings.push({ code: 'POSITION_MISSING', position: previous + 1, serial: null, message: 'positions ' + (previous + 1) + '..' + (m.to - 1) + ' are missing from the log: events were deleted (I1)', expected: previous + 1, calculated: null });
  }
  // The chunk's tree, level by level: level h holds floor(n / 2^h) complete nodes.
  let below = 0;
  let width = n;
  let offset = n * 32;
  while (width >= 2) {
    const count = Math.floor(width / 2);
    for (let j = 0; j < count; j++) {
      nodeBytes.copy(node, 1, below + 2 * j * 32, below + (2 * j + 2) * 32);
      nodeBytes.write(hash('sha256', node, 'latin1'), offset + j * 32, 32, 'latin1');
    }
    below = offset;
    offset += count * 32;
    width = count;
  }
  const serialBytes = new Uint8Array(serials.buffer, serials.byteOffset, serials.byteLength);
  const q = { count: queries, rows: queryRows.slice(0, queries), atMs: queryAt.slice(0, queries), shapeOf: queryShape.slice(0, queries), shapes };
  return { id: m.id, from: m.from, count: n, nodes, positions, serials: serialBytes, flags, findings, specials, queries: q, streams: { names: streams, first: streamFirst, last: streamLast, positions: streamPosition } };
}

parentPort.on('message', (m) => {
  try {
    const result = run(m);
    const q = result.queries;
    parentPort.postMessage(result, [result.nodes.buffer, result.positions.buffer, result.flags.buffer, result.serials.buffer, q.rows.buffer, q.atMs.buffer, q.shapeOf.buffer]);
  } catch (e) {
    parentPort.postMessage({ id: m.id, error: String((e && e.stack) || e) });
  }
});
`;

/** A pool of hashing workers; each reads its chunks itself (from a file) or gets their texts (from a hub). */
export class ChunkWorkers {
  private readonly workers: Worker[];
  private readonly idle: Worker[];
  private readonly queue: { request: ChunkRequest & { id: number }; resolve: (r: ChunkResult) => void; reject: (e: Error) => void }[] = [];
  private readonly busy = new Map<Worker, { resolve: (r: ChunkResult) => void; reject: (e: Error) => void }>();
  private nextId = 0;

  constructor(threads: number, dbPath?: string) {
    const driver = createRequire(import.meta.url).resolve('better-sqlite3');
    this.workers = Array.from({ length: threads }, () => new Worker(WORKER_SOURCE, { eval: true, workerData: { path: dbPath, driver, mmapBytes: 1 << 30 }, resourceLimits: { maxYoungGenerationSizeMb: 64 } }));
    this.idle = [...this.workers];
    for (const w of this.workers) {
      w.on('message', (m: ChunkResult & { error?: string }) => {
        const job = this.busy.get(w);
        this.busy.delete(w);
        this.idle.push(w);
        if (m.error !== undefined) job?.reject(new Error(`hashing worker failed: ${m.error}`));
        else job?.resolve(m);
        this.pump();
      });
      w.on('error', (e) => {
        const job = this.busy.get(w);
        this.busy.delete(w);
        job?.reject(e);
      });
    }
  }

  run(request: ChunkRequest): Promise<ChunkResult> {
    return new Promise((resolve, reject) => {
      this.queue.push({ request: { ...request, id: this.nextId++ }, resolve, reject });
      this.pump();
    });
  }

  async close(): Promise<void> {
    await Promise.all(this.workers.map((w) => w.terminate()));
  }

  private pump(): void {
    while (this.idle.length > 0 && this.queue.length > 0) {
      const w = this.idle.pop()!;
      const job = this.queue.shift()!;
      this.busy.set(w, job);
      w.postMessage(job.request);
    }
  }
}
