import { CompactRange, type Hash, leafHash, toHex } from '#audit-log';
import type { CheckpointSignedData } from './checkpoint-event.js';
import { isCheckpointEnvelope } from './checkpoint-event.js';
import { StoredLogCheckError, byFindingPosition, storedLogFinding, verifyCheckpointByAny, type StoredLogCheckReport, type StoredLogFinding } from './stored-log-check.js';

export interface PortLogCheckOptions {
  /** Stored envelope texts of positions [from, from + count), exactly as the log holds them (the leaf inputs). */
  readonly texts: (from: number, count: number) => Promise<readonly string[]>;
  /** Events to check: [0, head), or [resume.size, head). */
  readonly head: number;
  /**
   * Starts from a verified mark instead of position 0: the compact range (`CompactRange.toBytes()`) of the
   * leaves [0, size) as an earlier check re-hashed them. Only texts from `size` on are read; a checkpoint
   * of a size below the mark is not judged by this run (the run from 0, a scrub, judges it).
   */
  readonly resume?: { readonly size: number; readonly frontier: Uint8Array };
  /** The raw Ed25519 public key of the hub's checkpoint signer. */
  readonly publicKey: Uint8Array;
  /** Keys the signer rotated to after the first: a note verifying with any of the hub's keys is sound here. */
  readonly rotatedPublicKeys?: readonly Uint8Array[];
  readonly pageSize?: number;
  readonly onProgress?: (checked: number, total: number) => void;
  readonly signal?: AbortSignal;
  readonly maxFindings?: number;
  /** Roots kept for the sizes just below the current one: a checkpoint's size is at most this far behind its own event. Default 65,536. */
  readonly rootWindow?: number;
}

/**
 * The reduced self-check of a log read through the event-store port (the hub on KurrentDB), which has no
 * tree stored beside each event to compare leaves with: every stored text of [0, head) is re-hashed, in
 * order, into a fresh Merkle tree, and every CheckpointSigned event's note is verified with the hub's key
 * and its signed root compared with the root the re-hashed texts make at its size. A text changed below a
 * signed checkpoint is found (CHECKPOINT_ROOT_MISMATCH at the first checkpoint over it), but not located
 * to its leaf (the auditor's `verify --kurrentdb` locates it); events after the last checkpoint are
 * attested by nothing yet. Never throws for a bad log: it reports findings.
 */
export async function checkLogThroughPort(options: PortLogCheckOptions): Promise<PortLogCheckReport> {
  const started = performance.now();
  const pageSize = options.pageSize ?? 4096;
  const maxFindings = options.maxFindings ?? 20;
  const window = options.rootWindow ?? 65_536;
  const findings: StoredLogFinding[] = [];
  let findingCount = 0;
  const add = (f: StoredLogFinding) => {
    findingCount += 1;
    if (findings.length < maxFindings) findings.push(f);
  };
  const range = options.resume === undefined ? CompactRange.empty() : CompactRange.fromBytes(options.resume.frontier);
  const start = range.size;
  if (options.resume !== undefined && start !== options.resume.size) throw new StoredLogCheckError('TREE_NOT_KEPT', `the verified mark's frontier holds ${start} leaves, not ${options.resume.size}`);
  // roots[size % window] = root of the first `size` leaves, for the last `window` sizes.
  const roots: (Hash | undefined)[] = new Array<Hash | undefined>(window);
  if (start > 0) roots[start % window] = range.root();
  let checked = 0;
  let checkpoints = 0;
  for (let from = start; from < options.head; ) {
    if (options.signal?.aborted) throw new StoredLogCheckError('SELF_CHECK_ABORTED', `the check was stopped at position ${from}: ${String(options.signal.reason ?? '')}`);
    const texts = await options.texts(from, Math.min(pageSize, options.head - from));
    if (texts.length === 0) {
      add(storedLogFinding({ check: 'leaf', code: 'ROW_MISSING', position: from, serial: null, expected: options.head, calculated: from }));
      break;
    }
    for (const [i, text] of texts.entries()) {
      const position = from + i;
      if (isCheckpointEnvelope(text)) {
        checkpoints += 1;
        checkCheckpoint(position, text, [options.publicKey, ...(options.rotatedPublicKeys ?? [])], range.size, (size) => (range.size - size < window ? roots[size % window] : undefined), add);
      }
      range.append(leafHash(text));
      roots[range.size % window] = range.root();
    }
    from += texts.length;
    checked = from - start;
    options.onProgress?.(checked, options.head - start);
    await new Promise((r) => setImmediate(r));
  }
  findings.sort(byFindingPosition);
  return { from: start, to: start + checked, head: options.head, treeSize: range.size, checked, checkpoints, findings, findingCount, seconds: (performance.now() - started) / 1000, frontier: range.toBytes() };
}

/** The report, with the compact range of the leaves re-hashed [0, to): the next run may resume from it. */
export interface PortLogCheckReport extends StoredLogCheckReport {
  readonly frontier: Uint8Array;
}

function checkCheckpoint(position: number, envelope: string, publicKeys: readonly Uint8Array[], size: number, rootAt: (size: number) => Hash | undefined, add: (f: StoredLogFinding) => void): void {
  let data: Partial<CheckpointSignedData> | undefined;
  let serial: string | null = null;
  try {
    const event = JSON.parse(envelope) as { serial?: string; data?: Partial<CheckpointSignedData> };
    data = event.data;
    serial = typeof event.serial === 'string' ? event.serial : null;
  } catch {
    data = undefined;
  }
  const at = { position, serial };
  if (typeof data?.note !== 'string') {
    add(storedLogFinding({ check: 'checkpoint', code: 'CHECKPOINT_MALFORMED', ...at, expected: null, calculated: null }));
    return;
  }
  const origin = data.note.slice(0, Math.max(0, data.note.indexOf('\n')));
  let signed;
  try {
    signed = verifyCheckpointByAny(data.note, origin, publicKeys);
  } catch (error) {
    add(storedLogFinding({ check: 'checkpoint', code: 'CHECKPOINT_SIGNATURE_INVALID', ...at, expected: `signed by ${publicKeys.map(toHex).join(' or ')}`, calculated: (error as { code?: string }).code ?? 'INVALID' }));
    return;
  }
  const signedRoot = toHex(signed.root);
  if (data.size !== signed.size || data.rootHex !== signedRoot) {
    add(storedLogFinding({ check: 'checkpoint', code: 'CHECKPOINT_FIELDS_MISMATCH', ...at, expected: `${signed.size} ${signedRoot}`, calculated: `${String(data.size)} ${String(data.rootHex)}` }));
  }
  if (signed.size > size) {
    add(storedLogFinding({ check: 'checkpoint', code: 'CHECKPOINT_ROOT_MISMATCH', ...at, expected: signedRoot, calculated: null, message: `the signed checkpoint covers ${signed.size} events but only ${size} come before its own event` }));
    return;
  }
  const root = signed.size === 0 ? undefined : rootAt(signed.size);
  if (signed.size === 0 || root === undefined) return; // an empty tree, or a size further back than the roots kept: not judged
  const calculated = toHex(root);
  if (calculated !== signedRoot) add(storedLogFinding({ check: 'checkpoint', code: 'CHECKPOINT_ROOT_MISMATCH', ...at, expected: signedRoot, calculated, message: 'the root the stored texts make at the size of this signed checkpoint differs from the signed root: an event below that size was altered' }));
}
