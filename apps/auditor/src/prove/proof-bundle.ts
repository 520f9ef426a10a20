import Database from 'better-sqlite3';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { KurrentDBClient } from '@kurrent/kurrentdb-client';
import { type ChainKey, CheckpointKeyChain, MemoryTree, hashFromHex, inclusionProof, leafHash, parseVerifierKey, toHex, verifyCheckpoint, verifyInclusion, type Hash } from '#audit-log';
import { MerkleTreeProjection, TileTable, tileSubtreeHash } from '#ledger';
import { SealingError, verifyOpening, type Opening } from '#sealing';
import { AuditorError } from '../errors.js';
import { HubClient } from '../hub-client.js';
import { type KurrentLogClient, logStreamLength, readLogTexts } from '#ledger/kurrentdb-event-store';
import { DEFAULT_LOG_STREAM, type LogSource } from '../verify/verify-log.js';

export const PROOF_FORMAT = 'linkage-ledger/inclusion-proof/v1';

/** A self-contained, offline-verifiable proof that every event of one serial is in the log. */
export interface ProofBundle {
  readonly format: typeof PROOF_FORMAT;
  readonly serial: string;
  /** The signed checkpoint note the proofs lead to. */
  readonly checkpoint: string;
  readonly size: number;
  readonly rootHex: string;
  readonly events: readonly {
    readonly position: number;
    readonly envelope: string;
    readonly leafHex: string;
    readonly proof: readonly string[];
    /** Openings of the fields the holder is a party to (I10), as the hub gave them; checked against the envelope. */
    readonly openings?: readonly Opening[];
  }[];
}

/**
 * Builds the bundle for `serial` against a signed checkpoint: the one of exactly `size`, or else the
 * first checkpoint that covers every event of the serial.
 */
export async function proveSerial(source: LogSource, serial: string, size?: number): Promise<ProofBundle> {
  if (source.kind === 'kurrentdb') return proveFromKurrent(source, serial, size);
  return source.kind === 'db' ? proveFromFile(source.path, serial, size) : proveFromHub(source.url, source.token, serial, size);
}

/**
 * Over HTTP: the hub gives every envelope (publishable) and, to a party of the serial (`token` is the
 * citizen's or an agency's), the openings of its own fields.
 */
async function proveFromHub(url: string, token: string | undefined, serial: string, size?: number): Promise<ProofBundle> {
  const hub = new HubClient(url, token);
  const note = await hub.checkpointNote(size);
  const checkpointSize = Number(note.split('\n')[1]);
  const answer = await hub.serialProofs(serial, checkpointSize);
  return {
    format: PROOF_FORMAT,
    serial,
    checkpoint: note,
    size: answer.size,
    rootHex: answer.rootHex,
    events: answer.proofs.map((p) => {
      if (p.envelope === undefined) throw new AuditorError('HUB_REFUSED', `the hub gave no envelope for serial ${serial}`);
      return { position: p.position, envelope: p.envelope, leafHex: p.leafHex, proof: p.proof, ...(p.openings !== undefined && p.openings.length > 0 ? { openings: p.openings } : {}) };
    }),
  };
}

function proveFromFile(path: string, serial: string, size?: number): ProofBundle {
  const db = new Database(path, { readonly: true, fileMustExist: true });
  let scratch: string | undefined;
  try {
    const events = db.prepare('SELECT position, envelope FROM events WHERE serial = ? ORDER BY position').all(serial) as { position: number; envelope: string }[];
    if (events.length === 0) throw new AuditorError('SERIAL_UNKNOWN', `the log has no event with serial ${serial}`);
    const last = events.at(-1)!.position;
    if (!TileTable.exists(db)) throw new AuditorError('NO_CHECKPOINT', `${path} holds no checkpoints (no tree projection): start the hub on it once, or use --hub`);
    const row = (
      size === undefined
        ? db.prepare('SELECT size, note FROM tree_checkpoints WHERE size > ? ORDER BY size LIMIT 1').get(last)
        : db.prepare('SELECT size, note FROM tree_checkpoints WHERE size = ?').get(size)
    ) as { size: number; note: string } | undefined;
    if (row === undefined) {
      throw new AuditorError('NO_CHECKPOINT', size === undefined ? `no checkpoint covers position ${last} (the serial's last event) yet; try again after the next checkpoint` : `no checkpoint of size ${size} was signed`);
    }
    if (row.size <= last) throw new AuditorError('NO_CHECKPOINT', `the checkpoint of size ${row.size} does not cover position ${last}, the serial's last event`);
    // The hub's stored tree answers the proofs; when it is short, the tree is rebuilt from the log into a scratch file.
    const treeSize = (db.prepare('SELECT size FROM tree_state WHERE id = 1').pluck().get() as number | undefined) ?? 0;
    let subtree: (start: number, end: number) => ReturnType<ReturnType<typeof tileSubtreeHash>>;
    let tree: MerkleTreeProjection | undefined;
    if (treeSize >= row.size) {
      const tiles = new TileTable(db);
      subtree = tileSubtreeHash(treeSize, (l, i) => tiles.read(l, i));
    } else {
      scratch = mkdtempSync(join(tmpdir(), 'auditor-prove-'));
      tree = new MerkleTreeProjection({ source: path, target: join(scratch, 'tree.sqlite'), stepEvents: 8192 });
      while (tree.size < row.size && tree.step(Math.min(8192, row.size - tree.size)) > 0);
      subtree = tree.subtreeHash(tree.size);
    }
    const bundle: ProofBundle = {
      format: PROOF_FORMAT,
      serial,
      checkpoint: row.note,
      size: row.size,
      rootHex: Buffer.from(row.note.split('\n')[2] ?? '', 'base64').toString('hex'),
      events: events.map((e) => ({
        position: e.position,
        envelope: e.envelope,
        leafHex: toHex(leafHash(e.envelope)),
        proof: inclusionProof(e.position, row.size, subtree).map(toHex),
      })),
    };
    tree?.close();
    return bundle;
  } finally {
    db.close();
    if (scratch !== undefined) rmSync(scratch, { recursive: true, force: true });
  }
}

/**
 * From a KurrentDB log stream: no tree is stored beside it, so the leaves up to the checkpoint are hashed
 * here, from the bytes the stream holds (revision r = position r), and the proofs come from that tree.
 */
async function proveFromKurrent(source: Extract<LogSource, { kind: 'kurrentdb' }>, serial: string, size?: number): Promise<ProofBundle> {
  const stream = source.stream ?? DEFAULT_LOG_STREAM;
  const client: KurrentLogClient = source.client ?? KurrentDBClient.connectionString(source.url);
  try {
    let total: number;
    const leaves: Hash[] = [];
    const events: { position: number; envelope: string }[] = [];
    const checkpoints: { size: number; note: string }[] = [];
    try {
      total = await logStreamLength(client, stream);
      for (let from = 0; from < total; from += 4096) {
        const texts = await readLogTexts(client, stream, from, Math.min(total, from + 4096));
        for (const [i, text] of texts.entries()) {
          leaves.push(leafHash(text));
          const e = parseEnvelope(text);
          if (e?.serial === serial) events.push({ position: from + i, envelope: text });
          if (e?.type === 'CheckpointSigned' && typeof e.data?.size === 'number' && typeof e.data.note === 'string') checkpoints.push({ size: e.data.size, note: e.data.note });
        }
      }
    } catch (error) {
      throw new AuditorError('SOURCE_UNREADABLE', `cannot read the log stream ${stream} at ${source.url}: ${error instanceof Error ? error.message : String(error)}`);
    }
    if (events.length === 0) throw new AuditorError('SERIAL_UNKNOWN', `the log has no event with serial ${serial}`);
    const last = events.at(-1)!.position;
    const row = size === undefined ? checkpoints.find((c) => c.size > last) : checkpoints.find((c) => c.size === size);
    if (row === undefined) {
      throw new AuditorError('NO_CHECKPOINT', size === undefined ? `no checkpoint covers position ${last} (the serial's last event) yet; try again after the next checkpoint` : `no checkpoint of size ${size} was signed`);
    }
    if (row.size <= last) throw new AuditorError('NO_CHECKPOINT', `the checkpoint of size ${row.size} does not cover position ${last}, the serial's last event`);
    if (row.size > leaves.length) throw new AuditorError('NO_CHECKPOINT', `the checkpoint of size ${row.size} covers more events than the stream holds (${leaves.length})`);
    const tree = new MemoryTree(leaves.slice(0, row.size));
    return {
      format: PROOF_FORMAT,
      serial,
      checkpoint: row.note,
      size: row.size,
      rootHex: Buffer.from(row.note.split('\n')[2] ?? '', 'base64').toString('hex'),
      events: events.map((e) => ({ position: e.position, envelope: e.envelope, leafHex: toHex(leaves[e.position]!), proof: tree.inclusionProof(e.position).map(toHex) })),
    };
  } finally {
    if (source.client === undefined) await client.dispose();
  }
}

function parseEnvelope(text: string): { serial?: unknown; type?: unknown; data?: { size?: unknown; note?: unknown } } | undefined {
  try {
    return JSON.parse(text) as { serial?: unknown; type?: unknown; data?: { size?: unknown; note?: unknown } };
  } catch {
    return undefined;
  }
}

export interface ProofVerification {
  readonly serial: string;
  readonly size: number;
  readonly rootHex: string;
  readonly timeMs: number | null;
  /** The id of the key that signed the checkpoint: the given key, or the chain's key for its size. */
  readonly keyId: string;
  /** With a key set: the chain's key ids, the given (first) key first. */
  readonly keys?: readonly string[];
  readonly events: readonly {
    readonly position: number;
    readonly type: string;
    readonly terminal: string | null;
    /** The fields opened by the bundle's openings, each checked against the envelope's commitment. */
    readonly opened: readonly { readonly field: string; readonly value: unknown }[];
  }[];
}

/**
 * The key set a hub serves (GET /v1/audit/verifier-keys, JSON text), checked as a chain from the first
 * key a verifier pinned (`verifierKeyText`): each key announced by the one before, each hand-over signed by
 * both. Throws VERIFIER_KEY_INVALID when it does not chain.
 */
export function keyChainOf(verifierKeyText: string, verifierKeysJson: string, origin?: string): CheckpointKeyChain {
  let keys: ChainKey[];
  try {
    keys = (JSON.parse(verifierKeysJson) as { keys: ChainKey[] }).keys;
    if (!Array.isArray(keys)) throw new Error('it holds no "keys" list');
  } catch (error) {
    throw new AuditorError('VERIFIER_KEY_INVALID', `the key set is not a GET /v1/audit/verifier-keys answer: ${(error as Error).message}`);
  }
  try {
    return CheckpointKeyChain.fromServed(verifierKeyText, keys, origin);
  } catch (error) {
    throw new AuditorError('VERIFIER_KEY_INVALID', `the key set does not form a chain from the verifier key: ${(error as Error).message}`);
  }
}

/**
 * Verifies a bundle offline: the checkpoint's signature first, then that each envelope belongs to the
 * serial at its position, then each inclusion proof against the signed root, then each opening against
 * its envelope's commitment (so against the leaf and the signed checkpoint). Throws PROOF_INVALID.
 * With the hub's key set (`verifierKeys`, after a checkpoint key rotation) the checkpoint is verified with
 * the key the chain from `verifierKeyText` gives for its size (a hand-over also with the key before it).
 */
export function verifyProofBundle(bundle: unknown, verifierKeyText: string, origin?: string, verifierKeys?: string): ProofVerification {
  const b = bundle as Partial<ProofBundle>;
  if (b?.format !== PROOF_FORMAT || typeof b.checkpoint !== 'string' || typeof b.serial !== 'string' || !Array.isArray(b.events)) {
    throw new AuditorError('PROOF_FILE_MALFORMED', `not a ${PROOF_FORMAT} file (needs format, serial, checkpoint, events)`);
  }
  let key;
  try {
    key = parseVerifierKey(verifierKeyText.trim());
  } catch (error) {
    throw new AuditorError('VERIFIER_KEY_INVALID', `the verifier key is not valid: ${(error as Error).message}`);
  }
  const chain = verifierKeys === undefined ? undefined : keyChainOf(verifierKeyText, verifierKeys, origin ?? key.name);
  const cp = wrap('the checkpoint', () => (chain === undefined ? verifyCheckpoint(b.checkpoint!, key, origin ?? key.name) : chain.verify(b.checkpoint!)));
  const keyId = chain === undefined ? toHex(key.keyId) : chain.keyFor(cp.size).keyId;
  if (b.events.length === 0) throw new AuditorError('PROOF_INVALID', 'the proof file holds no event');
  const events = b.events.map((e) => {
    const envelope = wrap(`the event at position ${e.position}`, () => JSON.parse(e.envelope) as { serial: string; position: number; type: string; terminal?: string });
    if (envelope.serial !== b.serial || envelope.position !== e.position) {
      throw new AuditorError('PROOF_INVALID', `the envelope given for position ${e.position} is serial ${envelope.serial} at position ${envelope.position}, not serial ${b.serial} at ${e.position}`);
    }
    wrap(`the inclusion proof of position ${e.position}`, () => verifyInclusion(e.position, cp.size, leafHash(e.envelope), e.proof.map((h: string) => hashFromHex(h)), cp.root));
    const openings: readonly Opening[] = Array.isArray(e.openings) ? e.openings : [];
    for (const o of openings) {
      try {
        verifyOpening(envelope as unknown as { type: string; data: unknown }, o);
      } catch (error) {
        if (error instanceof SealingError) throw new AuditorError('PROOF_INVALID', `the opening of ${String(o.field)} at position ${e.position} does not verify: ${error.message}`);
        throw error;
      }
    }
    return { position: e.position, type: envelope.type, terminal: envelope.terminal ?? null, opened: openings.map((o) => ({ field: o.field, value: o.value })) };
  });
  return { serial: b.serial, size: cp.size, rootHex: toHex(cp.root), timeMs: cp.timeMs ?? null, keyId, ...(chain === undefined ? {} : { keys: chain.keys.map((k) => k.keyId) }), events };
}

function wrap<T>(what: string, f: () => T): T {
  try {
    return f();
  } catch (error) {
    if (error instanceof AuditorError) throw error;
    throw new AuditorError('PROOF_INVALID', `${what} does not verify: ${(error as Error).message}`);
  }
}
