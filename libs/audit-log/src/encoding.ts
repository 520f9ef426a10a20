// Strict codecs: Buffer.from(s, 'base64') silently skips bad characters, which a parser of signed
// text MUST NOT do (two different strings would then carry the same bytes).

const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/** Standard base64 (RFC 4648 §4) with padding and zero trailing bits, or undefined. */
export function decodeBase64Strict(text: string): Uint8Array | undefined {
  if (!BASE64.test(text)) return undefined;
  const bytes = Buffer.from(text, 'base64');
  // Re-encoding rejects non-zero trailing bits ("AB==" and "AA==" would otherwise both mean 0x00).
  return bytes.toString('base64') === text ? new Uint8Array(bytes) : undefined;
}

export function encodeBase64(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64');
}

/** ASCII decimal with no sign and no leading zeros ("0" alone is allowed), as a safe integer, or undefined. */
export function parseDecimalStrict(text: string): number | undefined {
  if (!/^(?:0|[1-9][0-9]*)$/.test(text)) return undefined;
  const n = Number(text);
  return Number.isSafeInteger(n) ? n : undefined;
}

// Signed notes MUST NOT contain ASCII control characters other than newline (c2sp.org/signed-note).
const CONTROL_EXCEPT_NEWLINE = /[\u0000-\u0009\u000b-\u001f]/;
// With the u flag a paired surrogate is one code point, so this matches only unpaired halves,
// which have no UTF-8 encoding.
const LONE_SURROGATE = /[\ud800-\udfff]/u;

/** Why `text` cannot appear in a signed note, or undefined if it can. */
export function noteTextProblem(text: string): string | undefined {
  const control = CONTROL_EXCEPT_NEWLINE.exec(text);
  if (control !== null) {
    return `contains control character U+${control[0].charCodeAt(0).toString(16).padStart(4, '0')} at offset ${control.index}`;
  }
  const lone = LONE_SURROGATE.exec(text);
  if (lone !== null) return `contains an unpaired surrogate at offset ${lone.index} (not valid UTF-8)`;
  return undefined;
}
