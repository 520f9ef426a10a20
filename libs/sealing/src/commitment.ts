import { hash, timingSafeEqual } from 'node:crypto';
import { canonicalize } from '#ledger';
import { SealingError } from './errors.js';

/** Bytes of a field's salt (128 bits: hiding beyond any search); fresh per event and field, derived from the event's keys, never stored. */
export const SALT_BYTES = 16;
const DOMAIN = 'linkage-ledger/commitment/v1';

/**
 * One field's opening: its value and its salt. Whoever holds it checks it against the commitment in the
 * stored envelope (so against the Merkle leaf and a signed checkpoint) without trusting the hub.
 */
export interface Opening {
  readonly field: string;
  readonly value: unknown;
  /** base64url, SALT_BYTES bytes. */
  readonly salt: string;
}

/**
 * commitment = SHA-256("linkage-ledger/commitment/v1" 0x00 type 0x00 field 0x00 salt ‖ RFC 8785 JSON of the value).
 * The salt makes it hiding (equal values in two events commit to unrelated hashes, I10); SHA-256 makes it
 * binding (the hub cannot later open it to another value). Type and field are inside, so an opening of one
 * field never passes as another's.
 */
export function commitment(type: string, field: string, salt: Uint8Array, value: unknown): Buffer {
  const text = canonicalize(value);
  if (text === undefined) throw new SealingError('INVALID_FIELD', `field ${field} of ${type} is not JSON`);
  return hash('sha256', commitmentInput(type, field, salt, text), 'buffer');
}

/**
 * `commitment(type, field, salt, value)` as the sealed section stores it (base64url), given the value's
 * RFC 8785 text `text`: the sealer has that text already (it also goes into the box), and a hash answered
 * as text makes no Buffer.
 */
export function commitmentText(type: string, field: string, salt: Uint8Array, text: string): string {
  return hash('sha256', commitmentInput(type, field, salt, text), 'base64url');
}

/** The commitment's hash input, in one reused buffer (a commitment is a few hundred bytes at most; a longer value takes the slow path). */
function commitmentInput(type: string, field: string, salt: Uint8Array, text: string): Buffer {
  if (salt.length !== SALT_BYTES) throw new SealingError('INVALID_FIELD', `a salt is ${SALT_BYTES} bytes, got ${salt.length}`);
  let n = SCRATCH.write(`${DOMAIN}\0${type}\0${field}\0`, 0, 'utf8');
  n += Buffer.from(salt.buffer, salt.byteOffset, salt.length).copy(SCRATCH, n);
  const room = SCRATCH.length - n;
  if (Buffer.byteLength(text, 'utf8') >= room) return Buffer.concat([SCRATCH.subarray(0, n), Buffer.from(text, 'utf8')]);
  n += SCRATCH.write(text, n, 'utf8');
  return SCRATCH.subarray(0, n);
}

const SCRATCH = Buffer.allocUnsafe(8192);

/** The commitments a stored envelope's data holds (base64url), or undefined when it has no sealed section. */
export function commitmentsOf(data: unknown): Readonly<Record<string, string>> | undefined {
  const sealed = (data as { sealed?: { commitments?: unknown } } | null)?.sealed;
  const c = sealed?.commitments;
  return typeof c === 'object' && c !== null ? (c as Record<string, string>) : undefined;
}

/**
 * Checks an opening against the event it belongs to (its type and its stored data). Throws
 * OPENING_MISMATCH with the expected and calculated commitments when it does not match.
 */
export function verifyOpening(event: { readonly type: string; readonly data: unknown }, opening: Opening): void {
  const expected = commitmentsOf(event.data)?.[opening.field];
  if (typeof expected !== 'string') {
    throw new SealingError('OPENING_MISMATCH', `the ${event.type} event commits to no field "${opening.field}"`, { field: opening.field });
  }
  const salt = Buffer.from(String(opening.salt), 'base64url');
  if (salt.length !== SALT_BYTES) throw new SealingError('OPENING_MISMATCH', `the opening of "${opening.field}" has a salt of ${salt.length} bytes, not ${SALT_BYTES}`, { field: opening.field });
  const calculated = commitment(event.type, opening.field, salt, opening.value);
  const want = Buffer.from(expected, 'base64url');
  if (want.length !== calculated.length || !timingSafeEqual(want, calculated)) {
    throw new SealingError('OPENING_MISMATCH', `the opening of "${opening.field}" does not match the event's commitment`, {
      field: opening.field,
      expected,
      calculated: calculated.toString('base64url'),
    });
  }
}
