// Byte helpers for the verifier: no Buffer, no Node module, so they run in the browser and in Node alike.

const utf8Encoder = new TextEncoder();

export function utf8(text: string): Uint8Array {
  return utf8Encoder.encode(text);
}

export function concatBytes(...parts: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

export function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

export function toHex(bytes: Uint8Array): string {
  let s = '';
  for (const b of bytes) s += b.toString(16).padStart(2, '0');
  return s;
}

/** 2n hexadecimal digits (either case) as bytes, or undefined. */
export function fromHex(hex: string): Uint8Array | undefined {
  if (typeof hex !== 'string' || hex.length % 2 !== 0 || !/^[0-9a-fA-F]*$/.test(hex)) return undefined;
  const out = new Uint8Array(hex.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(hex.slice(2 * i, 2 * i + 2), 16);
  return out;
}

const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
const URL_ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';

function decodeWith(alphabet: string, text: string): Uint8Array | undefined {
  const values: number[] = [];
  for (const ch of text) {
    const v = alphabet.indexOf(ch);
    if (v < 0) return undefined;
    values.push(v);
  }
  if (values.length % 4 === 1) return undefined;
  const out = new Uint8Array(Math.floor((values.length * 6) / 8));
  let acc = 0;
  let bits = 0;
  let at = 0;
  for (const v of values) {
    acc = (acc << 6) | v;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out[at++] = (acc >> bits) & 0xff;
    }
  }
  // Trailing bits MUST be zero (canonical encoding): otherwise two texts would carry the same bytes.
  if ((acc & ((1 << bits) - 1)) !== 0) return undefined;
  return out;
}

function encodeWith(alphabet: string, bytes: Uint8Array): string {
  let s = '';
  let i = 0;
  for (; i + 2 < bytes.length; i += 3) {
    const n = (bytes[i]! << 16) | (bytes[i + 1]! << 8) | bytes[i + 2]!;
    s += alphabet[(n >> 18) & 63]! + alphabet[(n >> 12) & 63]! + alphabet[(n >> 6) & 63]! + alphabet[n & 63]!;
  }
  const rest = bytes.length - i;
  if (rest === 1) {
    const n = bytes[i]! << 16;
    s += alphabet[(n >> 18) & 63]! + alphabet[(n >> 12) & 63]!;
  } else if (rest === 2) {
    const n = (bytes[i]! << 16) | (bytes[i + 1]! << 8);
    s += alphabet[(n >> 18) & 63]! + alphabet[(n >> 12) & 63]! + alphabet[(n >> 6) & 63]!;
  }
  return s;
}

/** Standard base64 with padding (RFC 4648 §4), canonical only, or undefined. */
export function fromBase64(text: string): Uint8Array | undefined {
  if (typeof text !== 'string' || text.length % 4 !== 0) return undefined;
  const body = text.replace(/={1,2}$/, '');
  if (body.includes('=')) return undefined;
  const bytes = decodeWith(ALPHABET, body);
  if (bytes === undefined || toBase64(bytes) !== text) return undefined;
  return bytes;
}

export function toBase64(bytes: Uint8Array): string {
  const s = encodeWith(ALPHABET, bytes);
  return s + '='.repeat((4 - (s.length % 4)) % 4);
}

/** Unpadded base64url (RFC 4648 §5), or undefined. */
export function fromBase64url(text: string): Uint8Array | undefined {
  if (typeof text !== 'string') return undefined;
  return decodeWith(URL_ALPHABET, text.replace(/=+$/, ''));
}

export function toBase64url(bytes: Uint8Array): string {
  return encodeWith(URL_ALPHABET, bytes);
}

/** SHA-256 with WebCrypto (the browser's, or Node's globalThis.crypto). */
export async function sha256(data: Uint8Array): Promise<Uint8Array> {
  return new Uint8Array(await globalThis.crypto.subtle.digest('SHA-256', data as Uint8Array<ArrayBuffer>));
}
