// The commitments of libs/sealing (commitment.ts), recomputed: SHA-256("linkage-ledger/commitment/v1" 0x00
// type 0x00 field 0x00 ‖ salt ‖ RFC 8785 JSON of the value).
import { concatBytes, fromBase64url, sha256, utf8 } from './bytes.js';
import { canonicalJson } from './jcs.js';

export const COMMITMENT_DOMAIN = 'linkage-ledger/commitment/v1';
export const SALT_BYTES = 16;

export interface Opening {
  readonly field: string;
  readonly value: unknown;
  /** base64url of SALT_BYTES bytes. */
  readonly salt: string;
}

export async function commitment(type: string, field: string, salt: Uint8Array, value: unknown): Promise<Uint8Array> {
  return sha256(concatBytes(utf8(`${COMMITMENT_DOMAIN}\0${type}\0${field}\0`), salt, utf8(canonicalJson(value))));
}

/** The envelope's `data.sealed.commitments`, or undefined. */
export function commitmentsOf(data: unknown): Readonly<Record<string, unknown>> | undefined {
  const c = (data as { sealed?: { commitments?: unknown } } | null | undefined)?.sealed?.commitments;
  return typeof c === 'object' && c !== null ? (c as Record<string, unknown>) : undefined;
}

export type OpeningCheck = { readonly ok: true } | { readonly ok: false; readonly why: 'NO_COMMITMENT' | 'SALT_INVALID' | 'MISMATCH'; readonly message: string };

/** Checks one opening against the event's stored commitment. */
export async function checkOpening(event: { readonly type: string; readonly data: unknown }, opening: Opening): Promise<OpeningCheck> {
  const expected = commitmentsOf(event.data)?.[opening.field];
  if (typeof expected !== 'string') return { ok: false, why: 'NO_COMMITMENT', message: `the ${event.type} event commits to no field "${opening.field}"` };
  const salt = fromBase64url(String(opening.salt));
  if (salt?.length !== SALT_BYTES) return { ok: false, why: 'SALT_INVALID', message: `the opening of "${opening.field}" has no ${SALT_BYTES}-byte salt` };
  const want = fromBase64url(expected);
  let calculated: Uint8Array;
  try {
    calculated = await commitment(event.type, opening.field, salt, opening.value);
  } catch {
    return { ok: false, why: 'MISMATCH', message: `the opening of "${opening.field}" holds no JSON value` };
  }
  if (want === undefined || want.length !== calculated.length || !want.every((b, i) => b === calculated[i])) {
    return { ok: false, why: 'MISMATCH', message: `the opening of "${opening.field}" does not match the event's commitment` };
  }
  return { ok: true };
}
