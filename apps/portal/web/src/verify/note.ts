// C2SP signed notes (c2sp.org/signed-note) and tlog checkpoints (c2sp.org/tlog-checkpoint), Ed25519 on WebCrypto.
import { bytesEqual, concatBytes, fromBase64, sha256, toHex, utf8 } from './bytes.js';

const ED25519 = 0x01;
const SIGNATURE_PREFIX = '\u2014 ';

export interface VerifierKey {
  readonly name: string;
  readonly keyId: Uint8Array;
  readonly publicKey: Uint8Array;
}

/** Why a note or key failed, as a stable code; `message` says exactly where. */
export class NoteError extends Error {
  constructor(
    readonly code: 'VERIFIER_KEY_MALFORMED' | 'NOTE_MALFORMED' | 'NOTE_NOT_SIGNED' | 'NOTE_SIGNATURE_INVALID' | 'CHECKPOINT_MALFORMED',
    message: string,
  ) {
    super(message);
  }
}

function keyNameOk(name: string): boolean {
  return name.length > 0 && !/[\s\u0085+]/u.test(name) && !/[\u0000-\u001f]/.test(name);
}

/** Key ID = SHA-256(name ‖ 0x0A ‖ 0x01 ‖ public key)[:4]. */
export async function keyIdOf(name: string, publicKey: Uint8Array): Promise<Uint8Array> {
  return (await sha256(concatBytes(utf8(name), Uint8Array.of(0x0a, ED25519), publicKey))).subarray(0, 4);
}

/** Parses "<name>+<8 hex key id>+<base64(0x01 ‖ 32-byte key)>" and checks that the key id belongs to them. */
export async function parseVerifierKey(text: string): Promise<VerifierKey> {
  const t = typeof text === 'string' ? text.trim() : '';
  const first = t.indexOf('+');
  const second = first < 0 ? -1 : t.indexOf('+', first + 1);
  if (second < 0) throw new NoteError('VERIFIER_KEY_MALFORMED', 'a verifier key has the form <name>+<key id>+<base64 key>');
  const name = t.slice(0, first);
  if (!keyNameOk(name)) throw new NoteError('VERIFIER_KEY_MALFORMED', `the key name ${JSON.stringify(name)} is not valid`);
  const idHex = t.slice(first + 1, second);
  if (!/^[0-9a-f]{8}$/i.test(idHex)) throw new NoteError('VERIFIER_KEY_MALFORMED', 'the key id must be 8 hexadecimal digits');
  const material = fromBase64(t.slice(second + 1));
  if (material === undefined || material.length !== 33 || material[0] !== ED25519) {
    throw new NoteError('VERIFIER_KEY_MALFORMED', 'the key is not base64 of 0x01 and a 32-byte Ed25519 public key');
  }
  const publicKey = material.subarray(1);
  const keyId = await keyIdOf(name, publicKey);
  if (toHex(keyId) !== idHex.toLowerCase()) {
    throw new NoteError('VERIFIER_KEY_MALFORMED', `the key id ${idHex} does not belong to this name and key (calculated ${toHex(keyId)})`);
  }
  return { name, keyId, publicKey };
}

async function ed25519Verify(publicKey: Uint8Array, signature: Uint8Array, message: Uint8Array): Promise<boolean> {
  const subtle = globalThis.crypto.subtle;
  const key = await subtle.importKey('raw', publicKey as Uint8Array<ArrayBuffer>, { name: 'Ed25519' }, false, ['verify']);
  try {
    return await subtle.verify({ name: 'Ed25519' }, key, signature as Uint8Array<ArrayBuffer>, message as Uint8Array<ArrayBuffer>);
  } catch {
    return false;
  }
}

/**
 * Verifies that the note carries a valid signature by `key` and returns its text (with its final
 * newline). Other keys' signatures are ignored; a signature of this key that fails rejects the note.
 */
export async function verifyNote(note: string, key: VerifierKey): Promise<string> {
  if (typeof note !== 'string' || !note.endsWith('\n')) throw new NoteError('NOTE_MALFORMED', 'a signed note ends in a newline');
  if (/[\u0000-\u0009\u000b-\u001f]/.test(note)) throw new NoteError('NOTE_MALFORMED', 'the note contains a control character');
  const split = note.lastIndexOf('\n\n');
  if (split < 0) throw new NoteError('NOTE_MALFORMED', 'the note has no blank line before its signatures');
  const text = note.slice(0, split + 1);
  const lines = note.slice(split + 2, -1).split('\n');
  let verified = 0;
  for (const [i, line] of lines.entries()) {
    if (!line.startsWith(SIGNATURE_PREFIX)) throw new NoteError('NOTE_MALFORMED', `signature line ${i + 1} does not start with an em dash and a space`);
    const rest = line.slice(SIGNATURE_PREFIX.length);
    const space = rest.indexOf(' ');
    if (space < 0) throw new NoteError('NOTE_MALFORMED', `signature line ${i + 1} has no space between key name and signature`);
    const bytes = fromBase64(rest.slice(space + 1));
    if (bytes === undefined || bytes.length < 5) throw new NoteError('NOTE_MALFORMED', `signature line ${i + 1} is not a key id and a signature in base64`);
    if (rest.slice(0, space) !== key.name || !bytesEqual(bytes.subarray(0, 4), key.keyId)) continue;
    if (!(await ed25519Verify(key.publicKey, bytes.subarray(4), utf8(text)))) {
      throw new NoteError('NOTE_SIGNATURE_INVALID', `the Ed25519 signature by ${key.name}+${toHex(key.keyId)} does not verify: the checkpoint was altered or signed by another key`);
    }
    verified++;
  }
  if (verified === 0) throw new NoteError('NOTE_NOT_SIGNED', `the checkpoint carries no signature by ${key.name}+${toHex(key.keyId)}`);
  return text;
}

export interface Checkpoint {
  readonly origin: string;
  readonly size: number;
  readonly root: Uint8Array;
  readonly timeMs?: number;
}

/** Parses a checkpoint body: origin, decimal size, base64 root, then "time <ms>" as this log writes it. */
export function parseCheckpoint(body: string): Checkpoint {
  const lines = body.endsWith('\n') ? body.slice(0, -1).split('\n') : [];
  if (lines.length < 3) throw new NoteError('CHECKPOINT_MALFORMED', 'a checkpoint has an origin, a size and a root line');
  const [origin, sizeText, rootText, ...rest] = lines as [string, string, string, ...string[]];
  if (!/^(?:0|[1-9][0-9]*)$/.test(sizeText) || !Number.isSafeInteger(Number(sizeText))) {
    throw new NoteError('CHECKPOINT_MALFORMED', `line 2: ${JSON.stringify(sizeText)} is not a tree size`);
  }
  const root = fromBase64(rootText);
  if (root === undefined || root.length !== 32) throw new NoteError('CHECKPOINT_MALFORMED', 'line 3: the root is not base64 of 32 bytes');
  const time = rest[0]?.startsWith('time ') ? rest[0].slice(5) : undefined;
  const timeMs = time !== undefined && /^(?:0|[1-9][0-9]*)$/.test(time) ? Number(time) : undefined;
  return timeMs === undefined ? { origin, size: Number(sizeText), root } : { origin, size: Number(sizeText), root, timeMs };
}
