import { decodeBase64Strict, encodeBase64, noteTextProblem, parseDecimalStrict } from './encoding.js';
import { AuditLogError, type AuditLogErrorCode } from './errors.js';
import { type Hash, HASH_SIZE, asHash, checkTreeSize } from './merkle.js';
import { type NoteSigner, type NoteVerifier, signNote, verifyNote } from './note.js';

/**
 * A c2sp.org/tlog-checkpoint body: origin, tree size and root, then extension lines. This log puts the
 * signing time in the first extension line, "time <unix ms>"; other extension lines pass through opaque.
 */
export interface Checkpoint {
  readonly origin: string;
  readonly size: number;
  readonly root: Hash;
  /** Unix time in milliseconds, from the first extension line "time <ms>"; absent if there is none. */
  readonly timeMs?: number;
  /** Extension lines after the time line, without their newline. */
  readonly extensions?: readonly string[];
}

const TIME_KEYWORD = 'time';
const isTimeLine = (line: string): boolean => line === TIME_KEYWORD || line.startsWith(`${TIME_KEYWORD} `);

/** The checkpoint body text. Rejects values that could not be parsed back to the same checkpoint. */
export function formatCheckpoint(checkpoint: Checkpoint): string {
  const { origin, size, root, timeMs, extensions = [] } = checkpoint;
  checkOrigin(origin);
  checkTreeSize(size);
  asHash(root, 'checkpoint root');
  const lines = [origin, String(size), encodeBase64(root)];
  if (timeMs !== undefined) {
    if (!Number.isSafeInteger(timeMs) || timeMs < 0) fail('CHECKPOINT_TIME_INVALID', `time must be a non-negative safe integer of milliseconds, got ${String(timeMs)}`);
    lines.push(`${TIME_KEYWORD} ${timeMs}`);
  }
  extensions.forEach((line, i) => {
    checkExtension(line, `extension line ${i + 1}`);
    // Only the first extension line may be a time line, so that parse(format(c)) is c.
    if (isTimeLine(line)) fail('CHECKPOINT_EXTENSION_INVALID', `extension line ${i + 1} starts with "${TIME_KEYWORD}": set timeMs instead`);
  });
  return `${[...lines, ...extensions].join('\n')}\n`;
}

/** Parses a checkpoint body strictly: every deviation from the format is an error naming the line. */
export function parseCheckpoint(body: string): Checkpoint {
  if (typeof body !== 'string' || !body.endsWith('\n')) fail('CHECKPOINT_MISSING_NEWLINE', 'a checkpoint body must end in a newline');
  const lines = body.slice(0, -1).split('\n');
  if (lines.length < 3) fail('CHECKPOINT_TOO_FEW_LINES', `a checkpoint body has at least 3 lines (origin, size, root), got ${lines.length}`);
  const [origin, sizeText, rootText, ...rest] = lines as [string, string, string, ...string[]];
  checkOrigin(origin);
  const size = parseDecimalStrict(sizeText);
  if (size === undefined) {
    fail('CHECKPOINT_SIZE_INVALID', `line 2: tree size ${JSON.stringify(sizeText)} is not a decimal number without leading zeros below 2^53`);
  }
  const rootBytes = decodeBase64Strict(rootText);
  if (rootBytes === undefined) fail('CHECKPOINT_ROOT_INVALID', `line 3: root hash ${JSON.stringify(rootText)} is not canonical standard base64`);
  if (rootBytes.length !== HASH_SIZE) fail('CHECKPOINT_ROOT_INVALID', `line 3: root hash is ${rootBytes.length} bytes, must be ${HASH_SIZE}`);
  let timeMs: number | undefined;
  const extensions: string[] = [];
  rest.forEach((line, i) => {
    const where = `line ${i + 4}`;
    checkExtension(line, where);
    if (!isTimeLine(line)) {
      extensions.push(line);
      return;
    }
    if (i !== 0) fail('CHECKPOINT_TIME_INVALID', `${where}: a time line MUST be the first extension line and appear once`);
    const text = line.slice(TIME_KEYWORD.length + 1);
    timeMs = parseDecimalStrict(text);
    if (timeMs === undefined) fail('CHECKPOINT_TIME_INVALID', `${where}: time ${JSON.stringify(text)} is not decimal milliseconds without leading zeros`);
  });
  const root = asHash(rootBytes);
  return timeMs === undefined ? { origin, size, root, extensions } : { origin, size, root, timeMs, extensions };
}

/** Formats and signs a checkpoint as a signed note. */
export function signCheckpoint(checkpoint: Checkpoint, signer: NoteSigner): string {
  return signNote(formatCheckpoint(checkpoint), signer);
}

/**
 * Verifies the note's signature first, then parses the body and checks that it is for `origin`:
 * a checkpoint of another log, even one signed by the same key, MUST NOT be accepted.
 */
export function verifyCheckpoint(note: string, verifier: NoteVerifier, origin: string): Checkpoint {
  const checkpoint = parseCheckpoint(verifyNote(note, verifier));
  if (checkpoint.origin !== origin) {
    fail('CHECKPOINT_ORIGIN_MISMATCH', `checkpoint is for origin ${JSON.stringify(checkpoint.origin)}, expected ${JSON.stringify(origin)}`);
  }
  return checkpoint;
}

function checkOrigin(origin: string): void {
  if (typeof origin !== 'string' || origin.length === 0) fail('CHECKPOINT_ORIGIN_INVALID', 'line 1: the origin is empty');
  if (origin.includes('\n')) fail('CHECKPOINT_ORIGIN_INVALID', 'the origin contains a newline');
  const problem = noteTextProblem(origin);
  if (problem !== undefined) fail('CHECKPOINT_ORIGIN_INVALID', `line 1: the origin ${problem}`);
}

function checkExtension(line: string, where: string): void {
  if (typeof line !== 'string' || line.length === 0) fail('CHECKPOINT_EXTENSION_INVALID', `${where}: extension lines MUST NOT be empty`);
  if (line.includes('\n')) fail('CHECKPOINT_EXTENSION_INVALID', `${where}: an extension line contains a newline`);
  const problem = noteTextProblem(line);
  if (problem !== undefined) fail('CHECKPOINT_EXTENSION_INVALID', `${where}: the extension line ${problem}`);
}

function fail(code: AuditLogErrorCode, message: string): never {
  throw new AuditLogError(code, message);
}
