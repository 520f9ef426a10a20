import Database from 'better-sqlite3';
import { availableParallelism } from 'node:os';
import {
  CHECKPOINT_KEY_ROTATED,
  type ChainKey,
  type Checkpoint,
  CheckpointKeyChain,
  type Hash,
  MemoryTree,
  type VerifierKey,
  consistencyProof,
  hashesEqual,
  noteParts,
  parseCheckpoint,
  parseVerifierKey,
  rootAt,
  toHex,
  verifyCheckpoint,
  verifyConsistency,
} from '#audit-log';
import { type CheckpointSignedData, TileTable, tileSubtreeHash } from '#ledger';
import {
  CHUNK_HEIGHT,
  CHUNK_LEAVES,
  type ChunkRequest,
  type ChunkResult,
  ChunkWorkers,
  FLAG_SERIAL_VOIDED,
  FLAG_TERMINAL_MASK,
  TERMINAL_CODES,
} from './chunk-worker.js';
import { type Finding, type FindingCode, byPosition } from './findings.js';
import { Lawfulness, type QueryShape } from './lawfulness.js';
import { firstAlteredPrefix, leafWitness, prefixMatches, signedLeafHash } from './locate-leaf.js';
import { HubClient } from '../hub-client.js';
import { KurrentDBClient } from '@kurrent/kurrentdb-client';
import { LedgerError } from '#ledger';
import { type KurrentLogClient, logStreamLength, readLogTexts } from '#ledger/kurrentdb-event-store';
import { AuditorError } from '../errors.js';

export { AuditorError };

/** Where the log is read from: a ledger file, or a hub's audit endpoints with the auditor's token. */
export type LogSource =
  | { readonly kind: 'db'; readonly path: string }
  | { readonly kind: 'hub'; readonly url: string; readonly token?: string }
  /** The log stream of a KurrentDB-backed ledger (KurrentDbEventStore), read directly; `client` in tests. */
  | { readonly kind: 'kurrentdb'; readonly url: string; readonly stream?: string; readonly client?: KurrentLogClient };

/** The log stream KurrentDbEventStore writes unless told otherwise. */
export const DEFAULT_LOG_STREAM = 'linkage-ledger';

export interface VerifyOptions {
  readonly source: LogSource;
  /** The hub's verifier key text (`<name>+<key id>+<base64>`). */
  readonly verifierKey: string;
  /** The checkpoint origin to accept; default: the verifier key's name. */
  readonly origin?: string;
  /**
   * Signed checkpoint notes obtained out of band (an earlier audit, a witness): the log MUST still
   * hold every event they cover, with the same root. This is what detects a truncated tail.
   */
  readonly trustedCheckpoints?: readonly string[];
  /** Hashing threads; default: the number of cores. */
  readonly threads?: number;
  readonly onProgress?: (done: number, total: number) => void;
  /** Findings kept in the report (all are counted). */
  readonly maxFindings?: number;
}

export interface CheckpointSummary {
  readonly size: number;
  readonly rootHex: string;
  readonly timeMs: number | null;
  readonly position: number | null;
}

export interface VerifyReport {
  readonly ok: boolean;
  readonly source: string;
  readonly events: number;
  /** Root of the whole log as stored (null when a hole makes it meaningless). */
  readonly rootHex: string | null;
  readonly checkpoints: { readonly seen: number; readonly verified: number; readonly latest: CheckpointSummary | null };
  /** When the log rotated its checkpoint key: the chain of keys from the given one, as announced in the log. */
  readonly keys?: readonly ChainKey[];
  /**
   * Serials with no terminal event at the head of the log: open (a query waiting for its provider), not an
   * error. A serial open at a checkpoint that ends later is normal and is not listed.
   */
  readonly openSerials: readonly { readonly serial: string; readonly firstPosition: number }[];
  readonly firstFailure: Finding | null;
  readonly findings: readonly Finding[];
  readonly findingCount: number;
  readonly seconds: number;
  readonly eventsPerSecond: number;
}

interface RetainedChunk {
  readonly from: number;
  readonly count: number;
  readonly nodes: Uint8Array;
  readonly levelOffsets: readonly number[];
  readonly serials: string;
}

interface SignedCheckpoint extends Checkpoint {
  readonly position: number | null;
}

/**
 * Verifies a whole log from its raw events (I1, I2, I3): every leaf is recomputed from the stored
 * envelope text, the root at every checkpoint's size is recomputed and compared with the signed one
 * (signature first), consecutive checkpoints are checked for consistency, positions, stream revisions
 * and serials are checked for gaps and order. Never throws for a bad log: it reports findings.
 */
export async function verifyLog(options: VerifyOptions): Promise<VerifyReport> {
  const started = process.hrtime.bigint();
  let key: VerifierKey;
  try {
    key = parseVerifierKey(options.verifierKey.trim());
  } catch (error) {
    throw new AuditorError('VERIFIER_KEY_INVALID', `the verifier key is not valid: ${(error as Error).message}`);
  }
  const run = new Verification(key, options.origin ?? key.name, options.maxFindings ?? 100);
  for (const note of options.trustedCheckpoints ?? []) run.addTrusted(note, null, 'given with --checkpoint');
  const threads = Math.max(1, options.threads ?? availableParallelism());
  const source = options.source;
  const disposers: (() => Promise<void>)[] = [];
  let total: number;
  let label: string;
  let requests: AsyncIterable<ChunkRequest>;
  let workers: ChunkWorkers;
  if (source.kind === 'db') {
    label = source.path;
    const meta = readDbMeta(source.path);
    total = meta.head;
    run.stored = meta;
    for (const c of meta.checkpointsBeyond) run.addTrusted(c.note, c.position, `recorded by the hub's tree projection (CheckpointSigned at position ${c.position})`);
    workers = new ChunkWorkers(threads, source.path);
    requests = rangeRequests(total);
  } else if (source.kind === 'hub') {
    label = source.url;
    const hub = new HubClient(source.url, source.token);
    run.hub = hub;
    total = await hub.head();
    workers = new ChunkWorkers(threads);
    requests = hubRequests(hub, total);
  } else {
    const stream = source.stream ?? DEFAULT_LOG_STREAM;
    label = `${source.url} (stream ${stream})`;
    const client: KurrentLogClient = source.client ?? KurrentDBClient.connectionString(source.url);
    if (source.client === undefined) disposers.push(() => client.dispose());
    try {
      total = await logStreamLength(client, stream);
    } catch (error) {
      await Promise.all(disposers.map((d) => d()));
      throw new AuditorError('SOURCE_UNREADABLE', `cannot read the log stream ${stream} at ${source.url}: ${error instanceof LedgerError ? error.message : String(error)}`);
    }
    workers = new ChunkWorkers(threads);
    requests = kurrentRequests(client, stream, total);
  }
  run.total = total;
  try {
    await run.process(workers, requests, total, threads, options.onProgress);
  } finally {
    await workers.close();
    await Promise.all(disposers.map((d) => d()));
  }
  await run.locateOverHub();
  run.finish(total);
  const meta = run.stored;
  if (meta !== undefined && meta.treeSize > meta.head) {
    // Unsigned evidence, so it comes after any signed checkpoint that shows the same truncation.
    run.add('TREE_AHEAD_OF_LOG', meta.head, null, `the hub's tree projection in this file covers ${meta.treeSize} events but the log holds ${meta.head}: events at the end of the log were removed`, meta.treeSize, meta.head);
  }
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  const findings = run.findings.sort(byPosition);
  return {
    ok: findings.length === 0,
    source: label,
    events: total,
    rootHex: run.rootHex,
    checkpoints: { seen: run.seen, verified: run.verified, latest: run.latestSummary() },
    ...(run.keysAnnounced > 0 ? { keys: run.chain.keys } : {}),
    openSerials: run.openAtHead,
    firstFailure: findings[0] ?? null,
    findings: findings.slice(0, run.maxFindings),
    findingCount: findings.length,
    seconds,
    eventsPerSecond: seconds > 0 ? total / seconds : 0,
  };
}

async function* rangeRequests(total: number): AsyncIterable<ChunkRequest> {
  for (let from = 0; from < total; from += CHUNK_LEAVES) yield { kind: 'range', from, to: Math.min(total, from + CHUNK_LEAVES) };
}

async function* hubRequests(hub: HubClient, total: number): AsyncIterable<ChunkRequest> {
  for (let from = 0; from < total; from += CHUNK_LEAVES) {
    const to = Math.min(total, from + CHUNK_LEAVES);
    const texts: string[] = [];
    while (from + texts.length < to) {
      const page = await hub.entries(from + texts.length, to - from - texts.length);
      if (page.length === 0) break;
      texts.push(...page);
    }
    yield { kind: 'texts', from, texts: texts.join('\n') };
  }
}

/** Revisions of the log stream in chunks, as the texts KurrentDB holds (revision r = position r). */
async function* kurrentRequests(client: KurrentLogClient, stream: string, total: number): AsyncIterable<ChunkRequest> {
  for (let from = 0; from < total; from += CHUNK_LEAVES) {
    const to = Math.min(total, from + CHUNK_LEAVES);
    let texts: string[];
    try {
      texts = await readLogTexts(client, stream, from, to);
    } catch (error) {
      throw new AuditorError('SOURCE_UNREADABLE', `cannot read the log stream ${stream}: ${error instanceof Error ? error.message : String(error)}`);
    }
    yield { kind: 'texts', from, texts: texts.join('\n') };
  }
}

interface DbMeta {
  readonly head: number;
  readonly treeSize: number;
  readonly tiles: TileTable | undefined;
  readonly db: Database.Database;
  readonly checkpointsBeyond: readonly { position: number; note: string }[];
}

function readDbMeta(path: string): DbMeta {
  let db: Database.Database;
  try {
    db = new Database(path, { readonly: true, fileMustExist: true });
    const head = (db.prepare('SELECT max(position) + 1 FROM events').pluck().get() as number | null) ?? 0;
    if (!TileTable.exists(db)) return { head, treeSize: 0, tiles: undefined, db, checkpointsBeyond: [] };
    const treeSize = (db.prepare('SELECT size FROM tree_state WHERE id = 1').pluck().get() as number | undefined) ?? 0;
    const checkpointsBeyond = db
      .prepare('SELECT position, note FROM tree_checkpoints WHERE position >= ? OR size > ? ORDER BY size')
      .all(head, head) as { position: number; note: string }[];
    return { head, treeSize, tiles: new TileTable(db), db, checkpointsBeyond };
  } catch (error) {
    throw new AuditorError('SOURCE_UNREADABLE', `cannot read the ledger file ${path}: ${(error as Error).message}`);
  }
}

class Verification {
  readonly findings: Finding[] = [];
  stored: DbMeta | undefined;
  /** The hub the log is read from: its proofs, from its stored tree, locate an altered event. */
  hub: HubClient | undefined;
  /** The first checkpoint whose root did not match, and the verified size below it, to locate over the hub. */
  private toLocate: { readonly cp: SignedCheckpoint; readonly lo: number } | undefined;
  seen = 0;
  verified = 0;
  rootHex: string | null = null;
  openAtHead: { serial: string; firstPosition: number }[] = [];
  private readonly chunks = new Map<number, RetainedChunk>();
  private readonly chunkTree = new MemoryTree();
  /** First position from which the tree is not the log's (a hole): roots beyond are not checked. */
  private brokenAt = Number.POSITIVE_INFINITY;
  private covered = 0;
  total = 0;
  private lastSigned: SignedCheckpoint | undefined;
  private lastVerified: SignedCheckpoint | undefined;
  /** Trusted checkpoints; `note` is set on one signed by a later key, verified with the chain once the log reaches it. */
  private readonly trusted: { checkpoint: SignedCheckpoint; origin: string; note?: string }[] = [];
  /** The checkpoint keys from the given one, each later one announced in the log (CheckpointKeyRotated). */
  readonly chain: CheckpointKeyChain;
  keysAnnounced = 0;
  private readonly lastSequence = new Map<number, number>();
  /** Serials without a terminal event yet: day+node → sequence → first position. */
  private readonly open = new Map<number, Map<number, number>>();
  private readonly revisions = new Map<string, number>();
  private readonly lawfulness = new Lawfulness();

  constructor(
    private readonly key: VerifierKey,
    private readonly origin: string,
    readonly maxFindings: number,
  ) {
    this.chain = new CheckpointKeyChain(`${key.name}+${toHex(key.keyId)}+${Buffer.concat([Uint8Array.of(1), key.publicKey]).toString('base64')}`, origin);
  }

  add(code: FindingCode, position: number | null, serial: string | null, message: string, expected: string | number | null = null, calculated: string | number | null = null, field?: string): void {
    this.findings.push({ code, position, serial, message, expected, calculated, ...(field !== undefined ? { field } : {}) });
  }

  /** A CheckpointKeyRotated event: the next key of the chain, if it names the chain's newest key as the previous one. */
  private announceKey(position: number, serial: string | null, data: Record<string, unknown> | undefined): void {
    const problem = this.chain.announce({ verifierKey: String(data?.['verifierKey']), previousKeyId: String(data?.['previousKeyId']) }, position);
    if (problem !== undefined) this.add('CHECKPOINT_KEY_ANNOUNCEMENT_INVALID', position, serial, `the CheckpointKeyRotated event at position ${position} does not extend the key chain: ${problem}`);
    else this.keysAnnounced++;
  }

  addTrusted(note: string, position: number | null, origin: string): void {
    try {
      const checkpoint = verifyCheckpoint(note, this.key, this.origin);
      this.trusted.push({ checkpoint: { ...checkpoint, position }, origin });
      this.trusted.sort((a, b) => a.checkpoint.size - b.checkpoint.size);
    } catch (error) {
      if ((error as { code?: string }).code === 'NOTE_NOT_SIGNED') {
        // Perhaps signed by a later key of the chain: checked when the log has announced it.
        try {
          const body = parseCheckpoint(noteParts(note).text);
          if (body.origin === this.origin) {
            this.trusted.push({ checkpoint: { ...body, position }, origin, note });
            this.trusted.sort((a, b) => a.checkpoint.size - b.checkpoint.size);
            return;
          }
        } catch {
          // reported below
        }
      }
      this.add('CHECKPOINT_SIGNATURE_INVALID', position, null, `a checkpoint ${origin} does not verify with the given key: ${(error as Error).message}`, this.keyText(), (error as { code?: string }).code ?? null);
    }
  }

  async process(workers: ChunkWorkers, requests: AsyncIterable<ChunkRequest>, total: number, threads: number, onProgress?: (done: number, total: number) => void): Promise<void> {
    // Up to two chunks per thread in flight; results are merged strictly in log order.
    const inFlight: Promise<ChunkResult>[] = [];
    const iterator = requests[Symbol.asyncIterator]();
    let exhausted = false;
    const fill = async () => {
      while (!exhausted && inFlight.length < threads * 2) {
        const next = await iterator.next();
        if (next.done) exhausted = true;
        else inFlight.push(workers.run(next.value));
      }
    };
    await fill();
    while (inFlight.length > 0) {
      const result = await inFlight.shift()!;
      const refill = fill();
      this.merge(result);
      onProgress?.(Math.min(total, result.from + CHUNK_LEAVES), total);
      await refill;
    }
  }

  private merge(r: ChunkResult): void {
    for (const f of r.findings) this.findings.push(f);
    const expected = Math.min(CHUNK_LEAVES, this.total - r.from);
    if (r.count < expected) {
      // Missing rows shift every later leaf: the hole is reported, roots beyond it are not compared.
      const missing = r.findings.find((f) => f.code === 'POSITION_MISSING');
      if (missing === undefined) {
        this.add('POSITION_MISSING', r.from + r.count, null, `the source returned ${r.count} of the ${expected} events from position ${r.from}`, r.from + r.count, null);
      }
      this.brokenAt = Math.min(this.brokenAt, missing?.position ?? r.from + r.count);
    }
    const levelOffsets: number[] = [0];
    for (let w = r.count, offset = 0; w >= 1; w = Math.floor(w / 2)) {
      offset += w * 32;
      levelOffsets.push(offset);
    }
    this.chunks.set(r.from / CHUNK_LEAVES, { from: r.from, count: r.count, nodes: r.nodes, levelOffsets, serials: Buffer.from(r.serials.buffer, r.serials.byteOffset, r.serials.byteLength).toString('latin1') });
    if (r.count === CHUNK_LEAVES) this.chunkTree.append(this.nodeOf(r.from / CHUNK_LEAVES, CHUNK_HEIGHT, 0));
    this.covered = r.from + r.count;
    this.checkEvents(r);
    // Specials and accepted queries in log order: a table published before a query applies to it.
    const queries = r.queries;
    const shapes = queries.shapes.map((text) => this.lawfulness.shape(text));
    let q = 0;
    for (const s of r.specials) {
      for (; q < queries.count && queries.rows[q]! < s.index; q++) this.checkQuery(r, queries.rows[q]!, shapes[queries.shapeOf[q]!]!, queries.atMs[q]!);
      this.checkSpecial(s.position, s.envelope);
    }
    for (; q < queries.count; q++) this.checkQuery(r, queries.rows[q]!, shapes[queries.shapeOf[q]!]!, queries.atMs[q]!);
    this.checkTrusted();
    this.release();
  }

  /** I2 event by event in log order (serials read as bytes, no allocation), then stream revisions per chunk summary. */
  private checkEvents(r: ChunkResult): void {
    const bytes = r.serials;
    const text = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const serialAt = (i: number) => text.toString('latin1', i * 20, i * 20 + 20);
    for (let i = 0; i < r.count; i++) {
      const position = r.positions[i]!;
      const flags = r.flags[i]!;
      const o = i * 20;
      let dayNode = 0;
      for (let k = 0; k < 10; k++) dayNode = dayNode * 10 + bytes[o + k]! - 48;
      let sequence = 0;
      for (let k = 10; k < 20; k++) sequence = sequence * 10 + bytes[o + k]! - 48;
      const terminal = flags & FLAG_TERMINAL_MASK;
      const isVoid = (flags & FLAG_SERIAL_VOIDED) !== 0;
      const last = this.lastSequence.get(dayNode) ?? 0;
      let open = this.open.get(dayNode);
      if (sequence > last) {
        if (sequence !== last + 1) {
          const serial = serialAt(i);
          const expected = `${serial.slice(0, 10)}${String(last + 1).padStart(10, '0')}`;
          const gap = sequence - last - 1;
          this.add('SERIAL_GAP', position, serial, `serial ${serial} is allocated after ${last === 0 ? 'none' : `${serial.slice(0, 10)}${String(last).padStart(10, '0')}`} on node ${serial.slice(8, 10)}, day ${serial.slice(0, 8)}: ${gap} serial(s) are missing (I2: gap-free per node and day)`, expected, serial);
        }
        this.lastSequence.set(dayNode, sequence);
        if (isVoid) this.add('SERIAL_VOID_UNEXPLAINED', position, serialAt(i), `SerialVoided is the first event of serial ${serialAt(i)}: it voids a serial that had no event, so it explains nothing`);
        if (terminal === 0) {
          if (open === undefined) this.open.set(dayNode, (open = new Map()));
          open.set(sequence, position);
        }
      } else if (open?.has(sequence)) {
        if (terminal !== 0) open.delete(sequence);
      } else if (terminal !== 0) {
        const serial = serialAt(i);
        this.add('SERIAL_TERMINAL_DUPLICATE', position, serial, `serial ${serial} was already ended by an earlier terminal event; this ${TERMINAL_CODES[terminal]} event is a second one (I2: exactly one terminal event per serial)`, 'no event after the terminal one', TERMINAL_CODES[terminal]);
      } else {
        const serial = serialAt(i);
        this.add('SERIAL_EVENT_AFTER_TERMINAL', position, serial, `serial ${serial} was already ended by a terminal event; this event continues it (I2)`, 'no event after the terminal one', 'an event');
      }
      if (isVoid !== (terminal === 4)) {
        this.add('SERIAL_VOID_UNEXPLAINED', position, serialAt(i), `a SerialVoided event MUST end its serial with terminal "voided" and only it may: found terminal "${TERMINAL_CODES[terminal] || 'none'}" on a ${isVoid ? 'SerialVoided' : 'non-SerialVoided'} event`, isVoid ? 'voided' : 'not voided', TERMINAL_CODES[terminal] || 'none');
      }
    }
    const s = r.streams;
    for (let k = 0; k < s.names.length; k++) {
      const stream = s.names[k]!;
      const previous = this.revisions.get(stream);
      const want = previous === undefined ? 0 : previous + 1;
      if (s.first[k] !== want) {
        this.add('STREAM_REVISION_GAP', s.positions[k]!, null, `stream ${stream} goes from revision ${previous ?? '(none)'} to ${s.first[k]} (I1: revisions are contiguous from 0)`, want, s.first[k]!);
      }
      this.revisions.set(stream, s.last[k]!);
    }
  }

  /** I6 from the raw log: the version in force at the query's time, published earlier in the log, allowed it. */
  private checkQuery(r: ChunkResult, row: number, shape: QueryShape, atMs: number): void {
    const unlawful = this.lawfulness.judge(shape, atMs);
    if (unlawful === undefined) return;
    const position = r.positions[row]!;
    const serial = Buffer.from(r.serials.buffer, r.serials.byteOffset, r.serials.byteLength).toString('latin1', row * 20, row * 20 + 20);
    this.add(unlawful.code, position, serial, `the query accepted at position ${position} (serial ${serial}) is not shown lawful: ${unlawful.message}`, unlawful.expected, unlawful.calculated, unlawful.field);
  }

  private checkSpecial(position: number, envelope: string): void {
    let event: { serial?: unknown; type?: unknown; data?: Record<string, unknown> };
    try {
      event = JSON.parse(envelope) as typeof event;
    } catch {
      this.add('ENVELOPE_MALFORMED', position, null, `the envelope at position ${position} is not JSON`);
      return;
    }
    const serial = typeof event.serial === 'string' ? event.serial : null;
    if (event.type === 'SerialVoided') {
      if (event.data?.['serial'] !== serial) {
        this.add('SERIAL_VOID_UNEXPLAINED', position, serial, `SerialVoided names serial ${String(event.data?.['serial'])} in its data but belongs to serial ${serial}`, serial, String(event.data?.['serial']));
      }
      return;
    }
    if (event.type === CHECKPOINT_KEY_ROTATED) {
      this.announceKey(position, serial, event.data);
      return;
    }
    if (event.type === 'AuthorizationTablePublished') {
      const unusable = this.lawfulness.publish(event.data);
      if (unusable !== undefined) this.add('AUTHORIZATION_TABLE_INVALID', position, serial, `the authorization table published at position ${position} cannot be used to judge queries: ${unusable}`);
      return;
    }
    if (event.type === 'AuthorizationTableWithdrawn') {
      const invalid = this.lawfulness.withdraw(event.data);
      if (invalid !== undefined) this.add('AUTHORIZATION_TABLE_WITHDRAWAL_INVALID', position, serial, `the authorization table withdrawal at position ${position} cannot be honoured: ${invalid}`);
      return;
    }
    if (event.type === 'SelfDisclosureTablePublished') {
      const unusable = this.lawfulness.publishSelfDisclosure(event.data);
      if (unusable !== undefined) this.add('SELF_DISCLOSURE_TABLE_INVALID', position, serial, `the self-disclosure table published at position ${position} cannot be used to judge self-information requests: ${unusable}`);
      return;
    }
    this.checkCheckpointEvent(position, serial, event.data as Partial<CheckpointSignedData> | undefined);
  }

  private checkCheckpointEvent(position: number, serial: string | null, data: Partial<CheckpointSignedData> | undefined): void {
    this.seen++;
    if (typeof data?.note !== 'string') {
      this.add('CHECKPOINT_MALFORMED', position, serial, 'the CheckpointSigned event carries no signed note');
      return;
    }
    let cp: Checkpoint;
    try {
      // Signature before body: nothing of the note is trusted until this passes. The key is the one the
      // chain from the given key names for the checkpoint's size (a rotated key once the log announced it).
      cp = this.chain.verify(data.note);
    } catch (error) {
      const code = (error as { code?: string }).code ?? null;
      const finding = code === 'CHECKPOINT_KEY_UNANNOUNCED' ? 'CHECKPOINT_KEY_UNANNOUNCED' : code === 'CHECKPOINT_HANDOVER_UNSIGNED' ? 'CHECKPOINT_HANDOVER_UNSIGNED' : 'CHECKPOINT_SIGNATURE_INVALID';
      this.add(finding, position, serial, `the checkpoint does not verify with the hub's key chain from ${this.keyText()}: ${(error as Error).message}`, this.keyText(), code);
      return;
    }
    const rootHex = toHex(cp.root);
    if (data.size !== cp.size || data.rootHex !== rootHex || data.timeMs !== cp.timeMs || data.origin !== cp.origin) {
      this.add('CHECKPOINT_FIELDS_MISMATCH', position, serial, 'the event fields (origin, size, rootHex, timeMs) differ from its signed note', `${cp.origin} ${cp.size} ${rootHex} ${cp.timeMs}`, `${data.origin} ${data.size} ${data.rootHex} ${data.timeMs}`);
    }
    if (cp.timeMs === undefined) this.add('CHECKPOINT_MALFORMED', position, serial, 'the signed checkpoint has no time line');
    if (cp.size > position) {
      this.add('CHECKPOINT_BEYOND_ITS_POSITION', position, serial, `a checkpoint at position ${position} cannot cover ${cp.size} events (it would cover itself or later events)`, `≤ ${position}`, cp.size);
    }
    const previous = this.lastSigned;
    if (previous !== undefined) {
      if (cp.size <= previous.size) this.add('CHECKPOINT_NOT_INCREASING', position, serial, `checkpoint size ${cp.size} does not exceed the previous checkpoint's ${previous.size}`, `> ${previous.size}`, cp.size);
      if ((cp.timeMs ?? 0) <= (previous.timeMs ?? 0)) this.add('CHECKPOINT_NOT_INCREASING', position, serial, `checkpoint time ${cp.timeMs} does not exceed the previous checkpoint's ${previous.timeMs}`, `> ${previous.timeMs}`, cp.timeMs ?? null);
    }
    const signed: SignedCheckpoint = { ...cp, position };
    this.lastSigned = signed;
    if (cp.size <= position) this.checkRoot(signed, serial, 'signed in the log');
  }

  /** Trusted checkpoints whose size the merged chunks now reach; the rest wait (or mean truncation). */
  private checkTrusted(): void {
    while (this.trusted.length > 0 && this.trusted[0]!.checkpoint.size <= this.covered && (this.trusted[0]!.checkpoint.position ?? 0) < this.covered) {
      const { checkpoint, origin, note } = this.trusted.shift()!;
      if (note !== undefined) {
        try {
          this.chain.verify(note);
        } catch (error) {
          this.add('CHECKPOINT_SIGNATURE_INVALID', checkpoint.position, null, `a checkpoint ${origin} does not verify with the key chain the log announces from ${this.keyText()}: ${(error as Error).message}`, this.keyText(), (error as { code?: string }).code ?? null);
          continue;
        }
      }
      this.checkRoot(checkpoint, null, origin, false);
    }
  }

  private checkRoot(cp: SignedCheckpoint, serial: string | null, origin: string, chain = true): void {
    if (cp.size > this.brokenAt) return; // the hole is already reported; roots beyond it mean nothing
    const calculated = rootAt(cp.size, this.subtreeHash);
    if (!hashesEqual(calculated, cp.root)) {
      this.add('CHECKPOINT_ROOT_MISMATCH', cp.position, serial, `the root of the first ${cp.size} events differs from the root of the checkpoint ${origin}: an event below position ${cp.size} was altered, removed or reordered`, toHex(cp.root), toHex(calculated));
      this.locate(cp);
      return;
    }
    if (!chain) return;
    this.verified++;
    const previous = this.lastVerified;
    if (previous !== undefined && previous.size < cp.size) {
      try {
        verifyConsistency(previous.size, cp.size, consistencyProof(previous.size, cp.size, this.subtreeHash), previous.root, cp.root);
      } catch (error) {
        this.add('CHECKPOINT_INCONSISTENT', cp.position, serial, `checkpoint ${cp.size} is not consistent with checkpoint ${previous.size}: ${(error as Error).message}`, (error as { expected?: string }).expected ?? null, (error as { calculated?: string }).calculated ?? null);
      }
    }
    if (previous === undefined || cp.size > previous.size) this.lastVerified = cp;
  }

  /** Finds the first altered leaf below a mismatching checkpoint, against the hub's stored tree when there is one. */
  private locate(cp: SignedCheckpoint): void {
    const stored = this.stored;
    const lo = this.lastVerified !== undefined && this.lastVerified.size < cp.size ? this.lastVerified.size : 0;
    if (stored?.tiles === undefined || stored.treeSize < cp.size) {
      // Over a hub the bisection needs its proofs (HTTP), after the chunks are merged; the first mismatch locates the leaf.
      if (this.hub !== undefined) this.toLocate ??= { cp, lo };
      else this.add('LEAF_MISMATCH', null, null, `an event at a position in [${lo}, ${cp.size}) differs from what was signed; this source has no stored tree to pinpoint which`, null, null);
      return;
    }
    const storedHash = tileSubtreeHash(stored.treeSize, (level, idx) => stored.tiles!.read(level, idx));
    const storedAgrees = hashesEqual(rootAt(cp.size, storedHash), cp.root);
    for (let p = lo; p < cp.size; p++) {
      const mine = this.leaf(p);
      if (mine === undefined) break;
      const theirs = storedHash(p, p + 1);
      if (!hashesEqual(mine, theirs)) {
        const chunk = this.chunks.get(Math.floor(p / CHUNK_LEAVES))!;
        const serial = chunk.serials.slice((p - chunk.from) * 20, (p - chunk.from) * 20 + 20);
        this.add(
          'LEAF_MISMATCH',
          p,
          serial,
          `the event stored at position ${p} is not the one that was hashed into the log: its leaf hash differs from the hub's tree (which ${storedAgrees ? 'reproduces' : 'does NOT reproduce'} the signed root at size ${cp.size})`,
          toHex(theirs),
          toHex(mine),
        );
        return;
      }
    }
  }

  /**
   * Over a hub: bisects for the smallest prefix whose root, computed here from the raw entries, is not a
   * prefix of the mismatching signed checkpoint (the hub's consistency proofs come from its stored tree,
   * written when the events were appended); the last leaf of that prefix is the first altered event.
   * Its signed hash is read from the inclusion proof of a neighbour that carries it.
   */
  async locateOverHub(): Promise<void> {
    const hub = this.hub;
    const pending = this.toLocate;
    if (hub === undefined || pending === undefined) return;
    const { cp, lo } = pending;
    let m: number;
    try {
      m = await firstAlteredPrefix(lo, cp.size, async (size) => prefixMatches(size, rootAt(size, this.subtreeHash), cp.size, cp.root, await hub.consistencyProof(size, cp.size)));
    } catch (error) {
      this.add('LEAF_MISMATCH', null, null, `an event at a position in [${lo}, ${cp.size}) differs from what was signed; the hub's proofs could not locate which: ${(error as Error).message}`, null, null);
      return;
    }
    const p = m - 1;
    const mine = this.leaf(p)!;
    let signed: Hash | undefined;
    const witness = leafWitness(p, cp.size);
    if (cp.size === 1) signed = cp.root;
    else if (witness !== undefined) {
      try {
        signed = signedLeafHash(p, cp.size, cp.root, witness.q, this.leaf(witness.q)!, await hub.inclusionProof(witness.q, cp.size));
      } catch {
        signed = undefined; // the hub did not answer: what is known is said below
      }
    }
    this.add(
      'LEAF_MISMATCH',
      p,
      this.serialAt(p),
      `the event stored at position ${p} is not the one the checkpoint of size ${cp.size} signed: the first ${p} events are a prefix of the signed tree and the first ${m} are not (consistency proofs of the hub's stored tree)${signed === undefined ? `; its signed leaf hash could not be read from the hub's proofs (the neighbouring event ${witness?.q ?? '(none)'} differs too, or its proof does not verify)` : ''}`,
      signed === undefined ? null : toHex(signed),
      toHex(mine),
    );
  }

  /** The serial of a held position, as its envelope says. */
  private serialAt(position: number): string | null {
    const chunk = this.chunks.get(Math.floor(position / CHUNK_LEAVES));
    if (chunk === undefined) return null;
    return chunk.serials.slice((position - chunk.from) * 20, (position - chunk.from) * 20 + 20);
  }

  private leaf(position: number): Hash | undefined {
    const chunk = this.chunks.get(Math.floor(position / CHUNK_LEAVES));
    if (chunk === undefined || position - chunk.from >= chunk.count) return undefined;
    const at = (position - chunk.from) * 32;
    return chunk.nodes.subarray(at, at + 32) as Hash;
  }

  private nodeOf(chunkIndex: number, height: number, index: number): Hash {
    const chunk = this.chunks.get(chunkIndex);
    const offset = chunk?.levelOffsets[height];
    if (chunk === undefined || offset === undefined) throw new Error(`internal: chunk ${chunkIndex} is no longer held`);
    const at = offset + index * 32;
    return chunk.nodes.subarray(at, at + 32) as Hash;
  }

  /** Perfect subtrees of the log: from the chunk tree when a chunk or wider, else from a held chunk. */
  private readonly subtreeHash = (start: number, end: number): Hash => {
    const width = end - start;
    if (width >= CHUNK_LEAVES) return this.chunkTree.subtreeHash(start / CHUNK_LEAVES, end / CHUNK_LEAVES);
    const chunkIndex = Math.floor(start / CHUNK_LEAVES);
    return this.nodeOf(chunkIndex, Math.log2(width), (start - chunkIndex * CHUNK_LEAVES) / width);
  };

  /** Drops chunk trees no later check can need: those before the last verified checkpoint. */
  private release(): void {
    const keepFrom = Math.min(this.lastVerified?.size ?? 0, this.trusted[0]?.checkpoint.size ?? Number.POSITIVE_INFINITY);
    const first = Math.floor(Math.max(0, keepFrom - 1) / CHUNK_LEAVES);
    for (const index of this.chunks.keys()) if (index < first) this.chunks.delete(index);
  }

  finish(total: number): void {
    for (const { checkpoint, origin } of this.trusted) {
      const end = checkpoint.position !== null ? Math.max(checkpoint.size, checkpoint.position + 1) : checkpoint.size;
      this.add('LOG_TRUNCATED', total, null, `the log ends at ${total} events, but a checkpoint ${origin} (size ${checkpoint.size}) shows it held at least ${end}: its tail was removed`, end, total);
    }
    if (this.brokenAt === Number.POSITIVE_INFINITY) this.rootHex = toHex(rootAt(total, this.subtreeHash));
    // A checkpoint may be signed while a query waits for its provider: only the head says what is still open.
    for (const [dayNode, open] of this.open) {
      for (const [sequence, firstPosition] of open) {
        this.openAtHead.push({ serial: `${String(dayNode).padStart(10, '0')}${String(sequence).padStart(10, '0')}`, firstPosition });
      }
    }
    this.openAtHead.sort((a, b) => a.firstPosition - b.firstPosition);
    this.stored?.db.close();
  }

  latestSummary(): CheckpointSummary | null {
    const c = this.lastSigned;
    return c === undefined ? null : { size: c.size, rootHex: toHex(c.root), timeMs: c.timeMs ?? null, position: c.position };
  }

  private keyText(): string {
    return `${this.key.name}+${toHex(this.key.keyId)}`;
  }
}
