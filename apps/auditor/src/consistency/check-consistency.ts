import { existsSync, readFileSync } from 'node:fs';
import { AuditLogError, type ChainKey, type Checkpoint, CheckpointKeyChain, type Hash, type VerifierKey, hashFromHex, parseVerifierKey, toHex, verifyCheckpoint, verifyConsistency } from '#audit-log';
import { AuditorError } from '../errors.js';
import { HubClient } from '../hub-client.js';

/** Why two checkpoints are not shown consistent: each a verification failure (exit 1). */
export type ConsistencyFailureCode = 'CHECKPOINT_SIGNATURE_INVALID' | 'CHECKPOINTS_OUT_OF_ORDER' | 'PROOF_INVALID' | 'CHECKPOINTS_INCONSISTENT';

export interface CheckpointSide {
  readonly file: string;
  readonly size: number | null;
  readonly rootHex: string | null;
  readonly timeMs: number | null;
}

export interface ConsistencyReport {
  readonly ok: boolean;
  readonly older: CheckpointSide;
  readonly newer: CheckpointSide;
  /** Where the proof came from: the hub's URL or the proof file. */
  readonly proofSource: string;
  readonly proof: readonly string[];
  readonly failure: { readonly code: ConsistencyFailureCode; readonly message: string; readonly expected: string | number | null; readonly calculated: string | number | null } | null;
}

/** A consistency proof as the hub serves it (GET /v1/audit/proofs/consistency), and as a proof file holds it. */
export interface ConsistencyProofFile {
  readonly from: number;
  readonly to: number;
  readonly proof: readonly string[];
}

export interface ConsistencyOptions {
  /** The older and the newer signed checkpoint notes, as files. */
  readonly olderFile: string;
  readonly newerFile: string;
  readonly verifierKey: string;
  /**
   * The hub's key set (GET /v1/audit/verifier-keys, JSON text) when the log rotated its checkpoint key:
   * the chain is rebuilt from `verifierKey` (which MUST be its first key) and each note verified with
   * the key for its size.
   */
  readonly verifierKeys?: string;
  readonly origin?: string;
  /** Where the proof comes from: a hub's audit endpoint, or a file holding its answer. */
  readonly proof: { readonly hub: string } | { readonly file: string };
}

class Failed extends Error {
  constructor(
    readonly code: ConsistencyFailureCode,
    message: string,
    readonly expected: string | number | null = null,
    readonly calculated: string | number | null = null,
  ) {
    super(message);
  }
}

/**
 * Checks an RFC 9162 consistency proof between two signed checkpoints: both signatures first (nothing of
 * a note is trusted before), then that the older is not larger than the newer, then the proof, fetched
 * from a hub or read from a file, from the older's (size, root) to the newer's. Never throws for a proof
 * or checkpoint that does not verify (the report says why); throws AuditorError when it cannot run.
 */
export async function checkConsistency(o: ConsistencyOptions): Promise<ConsistencyReport> {
  let key: VerifierKey;
  try {
    key = parseVerifierKey(o.verifierKey.trim());
  } catch (error) {
    throw new AuditorError('VERIFIER_KEY_INVALID', `the verifier key is not valid: ${(error as Error).message}`);
  }
  const origin = o.origin ?? key.name;
  let chain: CheckpointKeyChain | undefined;
  if (o.verifierKeys !== undefined) {
    try {
      chain = CheckpointKeyChain.fromServed(o.verifierKey, (JSON.parse(o.verifierKeys) as { keys: ChainKey[] }).keys, origin);
    } catch (error) {
      throw new AuditorError('VERIFIER_KEY_INVALID', `the key set does not form a chain from the verifier key: ${(error as Error).message}`);
    }
  }
  const [olderNote, newerNote] = [noteFile(o.olderFile), noteFile(o.newerFile)];
  const side = (file: string, c?: Checkpoint): CheckpointSide => ({ file, size: c?.size ?? null, rootHex: c === undefined ? null : toHex(c.root), timeMs: c?.timeMs ?? null });
  let older: Checkpoint | undefined;
  let newer: Checkpoint | undefined;
  let proofHex: readonly string[] = [];
  const proofSource = 'hub' in o.proof ? o.proof.hub : o.proof.file;
  try {
    older = signed(olderNote, o.olderFile, key, origin, chain);
    newer = signed(newerNote, o.newerFile, key, origin, chain);
    if (older.size > newer.size) {
      throw new Failed('CHECKPOINTS_OUT_OF_ORDER', `${o.olderFile} covers ${older.size} events and ${o.newerFile} only ${newer.size}: give the older checkpoint first (a log whose later checkpoint is smaller lost its tail)`, `≤ ${newer.size}`, older.size);
    }
    const proof = 'hub' in o.proof ? await fromHub(o.proof.hub, older.size, newer.size) : fromFile(o.proof.file);
    proofHex = proof.proof;
    if (proof.from !== older.size || proof.to !== newer.size) {
      throw new Failed('PROOF_INVALID', `the proof is from size ${proof.from} to ${proof.to}, not from ${older.size} to ${newer.size}`, `${older.size} → ${newer.size}`, `${proof.from} → ${proof.to}`);
    }
    let hashes: Hash[];
    try {
      hashes = proof.proof.map((h) => hashFromHex(h, 'a proof hash'));
    } catch (error) {
      throw new Failed('PROOF_INVALID', (error as Error).message);
    }
    try {
      verifyConsistency(older.size, newer.size, hashes, older.root, newer.root);
    } catch (error) {
      if (!(error instanceof AuditLogError)) throw error;
      throw new Failed(
        error.code === 'ROOT_MISMATCH' ? 'CHECKPOINTS_INCONSISTENT' : 'PROOF_INVALID',
        `the checkpoint of size ${older.size} is not shown to be a prefix of the checkpoint of size ${newer.size}: ${error.message}`,
        error.expected ?? error.expectedLength ?? null,
        error.calculated ?? error.actualLength ?? null,
      );
    }
    return { ok: true, older: side(o.olderFile, older), newer: side(o.newerFile, newer), proofSource, proof: proofHex, failure: null };
  } catch (error) {
    if (!(error instanceof Failed)) throw error;
    const failure = { code: error.code, message: error.message, expected: error.expected, calculated: error.calculated };
    return { ok: false, older: side(o.olderFile, older), newer: side(o.newerFile, newer), proofSource, proof: proofHex, failure };
  }
}

function noteFile(path: string): string {
  if (!existsSync(path)) throw new AuditorError('SOURCE_UNREADABLE', `no checkpoint note at ${path}`);
  return readFileSync(path, 'utf8');
}

/** The checkpoint of a note, once its signature verifies with the key. */
function signed(note: string, file: string, key: VerifierKey, origin: string, chain?: CheckpointKeyChain): Checkpoint {
  try {
    return chain === undefined ? verifyCheckpoint(note, key, origin) : chain.verify(note);
  } catch (error) {
    throw new Failed('CHECKPOINT_SIGNATURE_INVALID', `${file} does not verify with the key ${key.name}+${toHex(key.keyId)}: ${(error as Error).message}`, `${key.name}+${toHex(key.keyId)}`, (error as { code?: string }).code ?? null);
  }
}

async function fromHub(url: string, from: number, to: number): Promise<ConsistencyProofFile> {
  let hashes: Hash[];
  try {
    hashes = await new HubClient(url).consistencyProof(from, to);
  } catch (error) {
    if (error instanceof AuditLogError) throw new Failed('PROOF_INVALID', `the hub's proof is malformed: ${error.message}`);
    throw error;
  }
  return { from, to, proof: hashes.map(toHex) };
}

function fromFile(path: string): ConsistencyProofFile {
  if (!existsSync(path)) throw new AuditorError('SOURCE_UNREADABLE', `no proof file at ${path}`);
  let parsed: Partial<ConsistencyProofFile>;
  try {
    parsed = JSON.parse(readFileSync(path, 'utf8')) as Partial<ConsistencyProofFile>;
  } catch (error) {
    throw new AuditorError('PROOF_FILE_MALFORMED', `cannot read ${path} as JSON: ${(error as Error).message}`);
  }
  if (!Number.isSafeInteger(parsed?.from) || !Number.isSafeInteger(parsed.to) || !Array.isArray(parsed.proof) || !parsed.proof.every((h) => typeof h === 'string')) {
    throw new AuditorError('PROOF_FILE_MALFORMED', `${path} is not a consistency proof: it needs { from, to, proof: [hex hashes] }, as GET /v1/audit/proofs/consistency answers`);
  }
  return parsed as ConsistencyProofFile;
}
