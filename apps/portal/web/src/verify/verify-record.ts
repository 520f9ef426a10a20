// Verifies one provision record in the browser, trusting nothing the hub or the portal says:
// the checkpoint's Ed25519 signature under the verifier key, then for every event of the serial its
// stored envelope (serial and position), its RFC 6962 leaf, its inclusion path up to the signed root,
// and every opening against the commitment the envelope holds. Pure: WebCrypto only (browser or Node).
import { fromHex, toHex } from './bytes.js';
import { checkOpening, type Opening } from './commitment.js';
import { leafHash, PathShapeError, rootFromInclusionProof } from './merkle.js';
import { KeyChain, KeyChainError, type ServedKey } from './key-chain.js';
import { NoteError } from './note.js';

/** What GET /v1/audit/proofs/inclusion?serial= answers. */
export interface InclusionAnswer {
  readonly size: number;
  readonly rootHex: string;
  readonly proofs: readonly {
    readonly position: number;
    readonly serial: string;
    readonly envelope: string;
    readonly leafHex: string;
    readonly proof: readonly string[];
    readonly openings?: readonly Opening[];
  }[];
}

export interface VerifyInput {
  readonly serial: string;
  readonly inclusion: InclusionAnswer;
  /** The signed checkpoint note (C2SP signed note) of the tree size the proofs are for. */
  readonly checkpoint: string;
  /** The verifier key text "<name>+<key id>+<base64 key>": the key pinned, the first of the log's chain. */
  readonly verifierKey: string;
  /**
   * The log's key set as served (GET /v1/audit/verifier-keys), first key to newest: rebuilt as a chain from
   * `verifierKey`, and the checkpoint verified with the key for its size. Absent: `verifierKey` alone.
   */
  readonly keys?: readonly ServedKey[];
  /** The log's origin; default: the verifier key's name (as the hub signs). */
  readonly origin?: string;
}

export type FailureCode =
  | 'VERIFIER_KEY_MALFORMED'
  | 'CHECKPOINT_MALFORMED'
  | 'CHECKPOINT_NOT_SIGNED'
  | 'CHECKPOINT_SIGNATURE_INVALID'
  | 'CHECKPOINT_ORIGIN_MISMATCH'
  | 'KEY_CHAIN_INVALID'
  | 'CHECKPOINT_KEY_UNANNOUNCED'
  | 'CHECKPOINT_HANDOVER_UNSIGNED'
  | 'SIZE_MISMATCH'
  | 'REPORTED_ROOT_MISMATCH'
  | 'NO_EVENTS'
  | 'ENVELOPE_MALFORMED'
  | 'ENVELOPE_NOT_OF_SERIAL'
  | 'LEAF_MISMATCH'
  | 'PATH_MALFORMED'
  | 'ROOT_MISMATCH'
  | 'OPENING_MISMATCH';

export interface VerifiedEvent {
  readonly position: number;
  readonly type: string;
  readonly leafHex: string;
  readonly opened: readonly { readonly field: string; readonly value: unknown }[];
}

export interface Verified {
  readonly ok: true;
  readonly serial: string;
  readonly size: number;
  readonly rootHex: string;
  readonly timeMs?: number;
  /** The key that signed the checkpoint: the key of the chain for its size. */
  readonly keyName: string;
  readonly keyIdHex: string;
  /** The chain's key ids, the pinned key first (one id when the log never rotated). */
  readonly keyChain: readonly string[];
  readonly events: readonly VerifiedEvent[];
}

export interface Failed {
  readonly ok: false;
  readonly code: FailureCode;
  /** Precise, technical: which event, which hash, which field. */
  readonly message: string;
  readonly position?: number;
  readonly field?: string;
  readonly expected?: string;
  readonly calculated?: string;
  /** The checkpoint checked against, when its signature had verified before the failure. */
  readonly size?: number;
  readonly timeMs?: number;
}

export type VerificationResult = Verified | Failed;

function failed(code: FailureCode, message: string, extra: Omit<Failed, 'ok' | 'code' | 'message'> = {}): Failed {
  return { ok: false, code, message, ...extra };
}

const NOTE_FAILURE: Record<NoteError['code'], FailureCode> = {
  VERIFIER_KEY_MALFORMED: 'VERIFIER_KEY_MALFORMED',
  NOTE_MALFORMED: 'CHECKPOINT_MALFORMED',
  CHECKPOINT_MALFORMED: 'CHECKPOINT_MALFORMED',
  NOTE_NOT_SIGNED: 'CHECKPOINT_NOT_SIGNED',
  NOTE_SIGNATURE_INVALID: 'CHECKPOINT_SIGNATURE_INVALID',
};

export async function verifyRecord(input: VerifyInput): Promise<VerificationResult> {
  // 1. The signed checkpoint: nothing below is trusted before its signature verifies, by the key the
  // chain from the pinned key gives for its size.
  let checkpoint;
  let chain: KeyChain;
  let link;
  try {
    chain = input.keys === undefined ? await KeyChain.single(input.verifierKey, input.origin) : await KeyChain.fromServed(input.verifierKey, input.keys, input.origin);
  } catch (error) {
    if (error instanceof NoteError && error.code === 'VERIFIER_KEY_MALFORMED') return failed('VERIFIER_KEY_MALFORMED', error.message);
    if (error instanceof NoteError) return failed('KEY_CHAIN_INVALID', `a hand-over note in the served key set: ${error.message}`);
    if (error instanceof KeyChainError) return failed('KEY_CHAIN_INVALID', error.code === 'KEY_CHAIN_INVALID' ? error.message : `a hand-over in the served key set: ${error.message}`);
    throw error;
  }
  try {
    ({ checkpoint, link } = await chain.verify(input.checkpoint));
  } catch (error) {
    if (error instanceof NoteError) return failed(NOTE_FAILURE[error.code], error.message);
    if (error instanceof KeyChainError) return failed(error.code, error.message);
    throw error;
  }
  const key = link.key;
  const at = { size: checkpoint.size, ...(checkpoint.timeMs === undefined ? {} : { timeMs: checkpoint.timeMs }) };
  const origin = chain.origin;
  if (checkpoint.origin !== origin) {
    return failed('CHECKPOINT_ORIGIN_MISMATCH', `the checkpoint is of log ${JSON.stringify(checkpoint.origin)}, not ${JSON.stringify(origin)}`, at);
  }
  const rootHex = toHex(checkpoint.root);
  const inclusion = input.inclusion;
  if (inclusion.size !== checkpoint.size) {
    return failed('SIZE_MISMATCH', `the proofs are for a tree of ${String(inclusion.size)} events, the checkpoint signs ${checkpoint.size}`, at);
  }
  if (typeof inclusion.rootHex !== 'string' || inclusion.rootHex.toLowerCase() !== rootHex) {
    return failed('REPORTED_ROOT_MISMATCH', `the root reported with the proofs differs from the signed root`, { ...at, expected: rootHex, calculated: String(inclusion.rootHex) });
  }
  if (!Array.isArray(inclusion.proofs) || inclusion.proofs.length === 0) return failed('NO_EVENTS', `no event of serial ${input.serial} was given`, at);

  // 2. Every event of the serial: envelope → leaf → path → the signed root; openings → commitments.
  const events: VerifiedEvent[] = [];
  for (const p of inclusion.proofs) {
    const where = { ...at, position: p.position };
    let envelope: { serial?: unknown; position?: unknown; type?: unknown; data?: unknown };
    try {
      envelope = JSON.parse(p.envelope) as typeof envelope;
    } catch {
      return failed('ENVELOPE_MALFORMED', `the stored envelope at position ${p.position} is not JSON`, where);
    }
    if (envelope?.serial !== input.serial || envelope.position !== p.position || typeof envelope.type !== 'string') {
      return failed('ENVELOPE_NOT_OF_SERIAL', `the envelope given for position ${p.position} is serial ${String(envelope?.serial)} at position ${String(envelope?.position)}, not serial ${input.serial} at ${p.position}`, where);
    }
    const leaf = await leafHash(p.envelope);
    const leafHex = toHex(leaf);
    if (typeof p.leafHex !== 'string' || p.leafHex.toLowerCase() !== leafHex) {
      return failed('LEAF_MISMATCH', `the stored envelope at position ${p.position} hashes to leaf ${leafHex}, not to the leaf ${String(p.leafHex)} in the log`, { ...where, expected: String(p.leafHex), calculated: leafHex });
    }
    const rawPath: readonly string[] = Array.isArray(p.proof) ? p.proof : [];
    const path = rawPath.map((h) => fromHex(h));
    if (path.some((h) => h === undefined || h.length !== 32)) {
      return failed('PATH_MALFORMED', `the inclusion path of position ${p.position} holds a value that is not a 32-byte hash`, where);
    }
    let root: Uint8Array;
    try {
      root = await rootFromInclusionProof(p.position, checkpoint.size, leaf, path as Uint8Array[]);
    } catch (error) {
      if (error instanceof PathShapeError) return failed('PATH_MALFORMED', `the inclusion path of position ${p.position}: ${error.message}`, where);
      throw error;
    }
    if (toHex(root) !== rootHex) {
      return failed('ROOT_MISMATCH', `the path from position ${p.position} leads to root ${toHex(root)}, not to the signed root ${rootHex}`, { ...where, expected: rootHex, calculated: toHex(root) });
    }
    const opened: { field: string; value: unknown }[] = [];
    const openings: readonly Opening[] = Array.isArray(p.openings) ? p.openings : [];
    for (const o of openings) {
      const check = await checkOpening({ type: envelope.type, data: envelope.data }, o);
      if (!check.ok) return failed('OPENING_MISMATCH', `position ${p.position}: ${check.message}`, { ...where, field: String(o.field) });
      opened.push({ field: o.field, value: o.value });
    }
    events.push({ position: p.position, type: envelope.type, leafHex, opened });
  }
  return {
    ok: true,
    serial: input.serial,
    size: checkpoint.size,
    rootHex,
    ...(checkpoint.timeMs === undefined ? {} : { timeMs: checkpoint.timeMs }),
    keyName: key.name,
    keyIdHex: link.id,
    keyChain: chain.ids,
    events,
  };
}
