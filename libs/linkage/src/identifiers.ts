import type { Brand } from '#ledger';
import { displayTextProblem, isDisplayTextUnder, type DisplayTextRule } from '#text';
import { LinkageError } from './errors.js';

/** An agency's id in the registry, e.g. `jpn-pension-service` or `muroran-city`. Lowercase kebab-case, 2–64 characters. */
export type AgencyId = Brand<string, 'AgencyId'>;
/** The hub's own random id for a person (a canonical lowercase UUID). Never a My Number; never leaves the hub. */
export type SubjectId = Brand<string, 'SubjectId'>;
/**
 * An agency code (機関別符号): 128 random bits as 22 characters of unpadded base64url. Opaque, one per
 * (person, agency), and unrelated to every other agency's code for the same person (I7).
 */
export type AgencyCode = Brand<string, 'AgencyCode'>;
/** Lowercase hex SHA-256, as the caller computes it (credential digests, code digests, answer digests). */
export type Sha256Hex = Brand<string, 'Sha256Hex'>;

/** The kinds of participant in the network (機関の種別). The authorization table is written in these. */
export const AGENCY_KINDS = ['municipality', 'prefecture', 'pension-service', 'hello-work', 'health-insurer', 'jasso'] as const;
export type AgencyKind = (typeof AGENCY_KINDS)[number];

export const AGENCY_KIND_LABELS: Readonly<Record<AgencyKind, string>> = {
  municipality: '市区町村',
  prefecture: '都道府県',
  'pension-service': '日本年金機構',
  'hello-work': 'ハローワーク（公共職業安定所）',
  'health-insurer': '健康保険組合等',
  jasso: '日本学生支援機構',
};

const AGENCY_ID = /^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])$/;
const SUBJECT_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
/** 16 bytes: 21 full sextets, then a last character that carries 2 bits (its low 4 bits are zero). */
const AGENCY_CODE = /^[A-Za-z0-9_-]{21}[AQgw]$/;
/** 32 bytes (an X25519 public key): 42 full sextets, then a last character that carries 4 bits. */
const X25519_KEY = /^[A-Za-z0-9_-]{42}[AEIMQUYcgkosw048]$/;
const SHA256_HEX = /^[0-9a-f]{64}$/;
const CODE = /^[a-z][a-z0-9]*(?:-[a-z0-9]+)*$/;
/** Twelve digits (a My Number's shape) or eleven (a resident record code's): refused wherever an event would keep them (I4). */
const PERSONAL_IDENTIFIER_SHAPE = /^(?:\d{11}|\d{12})$/;
const RFC3339 = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,9})?(?:Z|[+-]\d{2}:\d{2})$/;

export function isAgencyId(x: unknown): x is AgencyId {
  return typeof x === 'string' && AGENCY_ID.test(x);
}
export function isAgencyKind(x: unknown): x is AgencyKind {
  return typeof x === 'string' && (AGENCY_KINDS as readonly string[]).includes(x);
}
export function isSubjectId(x: unknown): x is SubjectId {
  return typeof x === 'string' && SUBJECT_ID.test(x);
}
export function isAgencyCode(x: unknown): x is AgencyCode {
  return typeof x === 'string' && AGENCY_CODE.test(x);
}
export function isX25519PublicKey(x: unknown): x is string {
  return typeof x === 'string' && X25519_KEY.test(x);
}
export function isSha256Hex(x: unknown): x is Sha256Hex {
  return typeof x === 'string' && SHA256_HEX.test(x);
}
/** Procedure and information item codes: stable kebab-case identifiers, at most 64 characters. */
export function isTableCode(x: unknown): x is string {
  return typeof x === 'string' && x.length <= 64 && CODE.test(x);
}
export function looksLikePersonalIdentifier(x: string): boolean {
  return PERSONAL_IDENTIFIER_SHAPE.test(x);
}
/** RFC 3339 with an explicit offset, and a real instant (Date.parse accepts it). */
export function isInstant(x: unknown): x is string {
  return typeof x === 'string' && RFC3339.test(x) && !Number.isNaN(Date.parse(x));
}
/** Agency names and revocation reasons (and the table's names): trimmed, 1–200 code points, something visible, no control character. */
export const DISPLAY_TEXT: DisplayTextRule = { max: 200, surroundingSpace: 'refuse' };

/** Display text under the shared rule (libs/text), at most `max` code points. */
export function isDisplayText(x: unknown, max = DISPLAY_TEXT.max): x is string {
  return isDisplayTextUnder(x, { ...DISPLAY_TEXT, max });
}

/** Why `x` is not display text, after the field's name (e.g. `name must not be empty …`), or undefined. */
export function displayTextMessage(field: string, x: unknown): string | undefined {
  const problem = displayTextProblem(x, DISPLAY_TEXT);
  return problem === undefined ? undefined : `${field} ${problem.message}`;
}

const BASE64URL = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';

/**
 * The agency code for 16 random bytes the caller drew from a CSPRNG (the library itself draws
 * nothing). Unpadded base64url, so the result always passes `isAgencyCode`.
 */
export function agencyCodeFromRandomBytes(bytes: Uint8Array): AgencyCode {
  if (bytes.length !== 16) {
    throw new LinkageError('INVALID_AGENCY_CODE', `an agency code takes exactly 16 random bytes, got ${bytes.length}`);
  }
  let out = '';
  let i = 0;
  for (; i + 3 <= 15; i += 3) {
    const n = (bytes[i]! << 16) | (bytes[i + 1]! << 8) | bytes[i + 2]!;
    out += BASE64URL[n >> 18]! + BASE64URL[(n >> 12) & 63]! + BASE64URL[(n >> 6) & 63]! + BASE64URL[n & 63]!;
  }
  const last = bytes[15]!;
  out += BASE64URL[last >> 2]! + BASE64URL[(last & 3) << 4]!;
  return out as AgencyCode;
}

export function requireAgencyId(value: unknown, field = 'agencyId'): AgencyId {
  if (!isAgencyId(value)) {
    throw new LinkageError('INVALID_AGENCY_ID', `${field} must be 2–64 lowercase letters, digits or hyphens, starting and ending with a letter or digit (e.g. "muroran-city")`, { field });
  }
  return value;
}

export function requireSubjectId(value: unknown): SubjectId {
  if (!isSubjectId(value)) {
    throw new LinkageError('INVALID_SUBJECT_ID', 'subjectId must be the hub\'s own canonical lowercase UUID for the person (resolve it from the number digest first)');
  }
  return value;
}

export function requireAgencyCode(value: unknown, field: string): AgencyCode {
  if (!isAgencyCode(value)) {
    throw new LinkageError('INVALID_AGENCY_CODE', `${field} must be an agency code: 22 characters of unpadded base64url encoding 16 random bytes`, { field });
  }
  return value;
}

export function requireDigest(value: unknown, field: string): Sha256Hex {
  if (!isSha256Hex(value)) {
    throw new LinkageError('INVALID_DIGEST', `${field} must be a lowercase hex SHA-256 digest (64 characters)`, { field });
  }
  return value;
}

export function requireInstant(value: unknown, field: string): string {
  if (!isInstant(value)) {
    throw new LinkageError('MALFORMED', `${field} must be an RFC 3339 timestamp with an offset, e.g. 2026-04-01T09:00:00.000Z`, { field });
  }
  return value;
}

export function requireId(value: unknown, field: string): string {
  if (typeof value !== 'string' || !/^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$/.test(value)) {
    throw new LinkageError('MALFORMED', `${field} must be 1–128 letters, digits, '.', '_', ':' or '-', e.g. a UUID`, { field });
  }
  return value;
}
