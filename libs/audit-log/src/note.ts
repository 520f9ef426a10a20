import { KeyObject, createHash, createPrivateKey, createPublicKey, generateKeyPairSync, sign, verify } from 'node:crypto';
import { decodeBase64Strict, encodeBase64, noteTextProblem } from './encoding.js';
import { AuditLogError } from './errors.js';
import { hashesEqual, toHex } from './merkle.js';

// c2sp.org/signed-note: signature type byte of Ed25519, and the line prefix em dash (U+2014) + space.
export const ED25519_SIGNATURE_TYPE = 0x01;
const SIGNATURE_PREFIX = '\u2014 ';
// The spec asks verifiers to cap signatures and to accept at least 16; Go's reference accepts 100.
const MAX_SIGNATURES = 100;

// DER headers that wrap a raw 32-byte Ed25519 key (RFC 8410): SubjectPublicKeyInfo and PKCS #8.
const ED25519_SPKI_PREFIX = Buffer.from('302a300506032b6570032100', 'hex');
const ED25519_PKCS8_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex');
const ED25519_KEY_SIZE = 32;

/** Who signs: a key name and an Ed25519 private key (KeyObject, or the raw 32-byte seed). */
export interface NoteSigner {
  readonly name: string;
  readonly privateKey: KeyObject | Uint8Array;
}

/** Whom a reader trusts: a key name and an Ed25519 public key (KeyObject, or the raw 32 bytes). */
export interface NoteVerifier {
  readonly name: string;
  readonly publicKey: KeyObject | Uint8Array;
}

/** A parsed verifier key text "<name>+<hex key id>+<base64(0x01 ‖ public key)>". */
export interface VerifierKey extends NoteVerifier {
  readonly keyId: Uint8Array;
  readonly publicKey: Uint8Array;
}

/** A parsed signer key text "PRIVATE+KEY+<name>+<hex key id>+<base64(0x01 ‖ seed)>". */
export interface SignerKey extends NoteSigner {
  readonly keyId: Uint8Array;
  readonly privateKey: Uint8Array;
}

/** A fresh Ed25519 key pair as raw bytes. Uses the system's randomness; the only impure function here. */
export function generateSigningKey(): { readonly privateKey: Uint8Array; readonly publicKey: Uint8Array } {
  const { privateKey } = generateKeyPairSync('ed25519');
  return { privateKey: rawPrivateKey(privateKey), publicKey: publicKeyOf(privateKey) };
}

/** The raw 32-byte public key of a private key. */
export function publicKeyOf(privateKey: KeyObject | Uint8Array): Uint8Array {
  return rawPublicKey(createPublicKey(privateKeyObject(privateKey)));
}

/** Key ID = SHA-256(name ‖ 0x0A ‖ 0x01 ‖ 32-byte public key)[:4] (c2sp.org/signed-note, Ed25519). */
export function keyId(name: string, publicKey: KeyObject | Uint8Array): Uint8Array {
  checkKeyName(name);
  const raw = publicKey instanceof KeyObject ? rawPublicKey(checkPublicKeyObject(publicKey)) : checkRawKey(publicKey, 'public');
  const digest = createHash('sha256').update(name, 'utf8').update(Uint8Array.of(0x0a, ED25519_SIGNATURE_TYPE)).update(raw).digest();
  return new Uint8Array(digest.subarray(0, 4));
}

/** Signs `text` (which MUST end in a newline) and returns the signed note: text, blank line, signature line. */
export function signNote(text: string, signer: NoteSigner): string {
  // Precondition: text is non-empty, ends in "\n", has no control characters but newline; the name is valid.
  checkNoteText(text);
  checkKeyName(signer.name);
  const key = privateKeyObject(signer.privateKey);
  const id = keyId(signer.name, createPublicKey(key));
  const signature = sign(null, Buffer.from(text, 'utf8'), key);
  return `${text}\n${SIGNATURE_PREFIX}${signer.name} ${encodeBase64(Buffer.concat([id, signature]))}\n`;
}

/**
 * Checks that `note` carries a valid signature by `verifier` and only then returns its text (with its
 * final newline). Signatures by other keys are ignored, as the spec requires; a signature line with
 * this key's name and id that fails MUST reject the whole note.
 */
export function verifyNote(note: string, verifier: NoteVerifier): string {
  const publicKey = verifier.publicKey instanceof KeyObject ? checkPublicKeyObject(verifier.publicKey) : publicKeyObject(verifier.publicKey);
  const id = keyId(verifier.name, publicKey);
  const { text, signatures } = splitNote(note);
  const message = Buffer.from(text, 'utf8');
  let verified = 0;
  for (const s of signatures) {
    if (s.name !== verifier.name || !hashesEqual(s.keyId, id)) continue;
    if (!safeVerify(message, publicKey, s.signature)) {
      throw new AuditLogError('NOTE_SIGNATURE_INVALID', `the signature by ${verifier.name}+${toHex(id)} does not verify: the note was altered or signed by another key`);
    }
    verified++;
  }
  if (verified === 0) {
    throw new AuditLogError('NOTE_NOT_SIGNED', `the note carries no signature by ${verifier.name}+${toHex(id)}`);
  }
  return text;
}

/**
 * Adds `signer`'s signature line to an already signed note (its text unchanged): a note signed by several
 * keys, e.g. the checkpoint that hands over from one signing key to the next. Does not check the others.
 */
export function cosignNote(note: string, signer: NoteSigner): string {
  const { text } = splitNote(note);
  const line = signNote(text, signer).slice(text.length + 1);
  return `${note}${line}`;
}

/** The note's text and the key names and ids (hex) of its signature lines, unverified: structure only. */
export function noteParts(note: string): { readonly text: string; readonly signers: readonly { readonly name: string; readonly keyIdHex: string }[] } {
  const { text, signatures } = splitNote(note);
  return { text, signers: signatures.map((s) => ({ name: s.name, keyIdHex: toHex(s.keyId) })) };
}

interface NoteSignature {
  readonly name: string;
  readonly keyId: Uint8Array;
  readonly signature: Uint8Array;
}

// Structure only, no trust: the text is everything up to the last blank line (c2sp.org/signed-note).
function splitNote(note: string): { text: string; signatures: NoteSignature[] } {
  if (typeof note !== 'string' || !note.endsWith('\n')) throw malformed('a signed note must end in a newline');
  const problem = noteTextProblem(note);
  if (problem !== undefined) throw malformed(`the note ${problem}`);
  const split = note.lastIndexOf('\n\n');
  if (split < 0) throw malformed('the note has no blank line before its signatures');
  const text = note.slice(0, split + 1);
  const lines = note.slice(split + 2, -1).split('\n');
  if (lines.length === 1 && lines[0] === '') throw malformed('the note has no signature lines');
  if (lines.length > MAX_SIGNATURES) throw malformed(`the note has ${lines.length} signature lines, more than the ${MAX_SIGNATURES} accepted`);
  const signatures = lines.map((line, i) => parseSignatureLine(line, i + 1));
  return { text, signatures };
}

function parseSignatureLine(line: string, n: number): NoteSignature {
  if (!line.startsWith(SIGNATURE_PREFIX)) throw malformed(`signature line ${n} does not start with "— " (em dash U+2014, space)`);
  const rest = line.slice(SIGNATURE_PREFIX.length);
  const space = rest.indexOf(' ');
  if (space < 0) throw malformed(`signature line ${n} has no space between key name and signature`);
  const name = rest.slice(0, space);
  if (keyNameProblem(name) !== undefined) throw malformed(`signature line ${n}: ${keyNameProblem(name) ?? ''}`);
  const bytes = decodeBase64Strict(rest.slice(space + 1));
  if (bytes === undefined) throw malformed(`signature line ${n}: the signature is not canonical standard base64`);
  if (bytes.length < 5) throw malformed(`signature line ${n}: a signature is a 4-byte key id and at least one byte, got ${bytes.length} bytes`);
  return { name, keyId: bytes.subarray(0, 4), signature: bytes.subarray(4) };
}

function safeVerify(message: Uint8Array, key: KeyObject, signature: Uint8Array): boolean {
  // OpenSSL may throw instead of answering false for a signature of the wrong length.
  try {
    return verify(null, message, key, signature);
  } catch {
    return false;
  }
}

// ---- key texts ----

/** "<name>+<8 hex digits key id>+<base64(0x01 ‖ 32-byte public key)>" (the Go note verifier key form). */
export function formatVerifierKey(verifier: NoteVerifier): string {
  checkKeyName(verifier.name);
  const raw = verifier.publicKey instanceof KeyObject ? rawPublicKey(checkPublicKeyObject(verifier.publicKey)) : checkRawKey(verifier.publicKey, 'public');
  return `${verifier.name}+${toHex(keyId(verifier.name, raw))}+${encodeBase64(Buffer.concat([Uint8Array.of(ED25519_SIGNATURE_TYPE), raw]))}`;
}

export function parseVerifierKey(text: string): VerifierKey {
  const parts = splitKeyText(text, 'VERIFIER_KEY_MALFORMED', 'verifier key');
  const publicKey = keyMaterial(parts.material, 'VERIFIER_KEY_MALFORMED', 'verifier key');
  checkKeyIdMatches(parts.name, parts.keyId, publicKey);
  return { name: parts.name, keyId: parts.keyId, publicKey };
}

/** "PRIVATE+KEY+<name>+<key id>+<base64(0x01 ‖ 32-byte seed)>": secret, MUST NOT be logged. */
export function formatSignerKey(signer: NoteSigner): string {
  checkKeyName(signer.name);
  const seed = signer.privateKey instanceof KeyObject ? rawPrivateKey(privateKeyObject(signer.privateKey)) : checkRawKey(signer.privateKey, 'private');
  const id = keyId(signer.name, publicKeyOf(seed));
  return `PRIVATE+KEY+${signer.name}+${toHex(id)}+${encodeBase64(Buffer.concat([Uint8Array.of(ED25519_SIGNATURE_TYPE), seed]))}`;
}

export function parseSignerKey(text: string): SignerKey {
  const PREFIX = 'PRIVATE+KEY+';
  // Messages never echo the text: it is a secret.
  if (typeof text !== 'string' || !text.startsWith(PREFIX)) {
    throw new AuditLogError('SIGNER_KEY_MALFORMED', 'a signer key starts with "PRIVATE+KEY+"');
  }
  const parts = splitKeyText(text.slice(PREFIX.length), 'SIGNER_KEY_MALFORMED', 'signer key');
  const privateKey = keyMaterial(parts.material, 'SIGNER_KEY_MALFORMED', 'signer key');
  checkKeyIdMatches(parts.name, parts.keyId, publicKeyOf(privateKey));
  return { name: parts.name, keyId: parts.keyId, privateKey };
}

function splitKeyText(
  text: string,
  code: 'VERIFIER_KEY_MALFORMED' | 'SIGNER_KEY_MALFORMED',
  what: string,
): { name: string; keyId: Uint8Array; material: string } {
  if (typeof text !== 'string') throw new AuditLogError(code, `a ${what} must be a string`);
  // The name contains no "+", but base64 may: split at the first two only.
  const first = text.indexOf('+');
  const second = first < 0 ? -1 : text.indexOf('+', first + 1);
  if (second < 0) throw new AuditLogError(code, `a ${what} has the form <name>+<key id>+<base64 key>`);
  const name = text.slice(0, first);
  const problem = keyNameProblem(name);
  if (problem !== undefined) throw new AuditLogError(code, `${what}: ${problem}`);
  const idHex = text.slice(first + 1, second);
  if (!/^[0-9a-fA-F]{8}$/.test(idHex)) throw new AuditLogError(code, `${what}: the key id must be 8 hexadecimal digits`);
  return { name, keyId: new Uint8Array(Buffer.from(idHex, 'hex')), material: text.slice(second + 1) };
}

function keyMaterial(material: string, code: 'VERIFIER_KEY_MALFORMED' | 'SIGNER_KEY_MALFORMED', what: string): Uint8Array {
  const bytes = decodeBase64Strict(material);
  if (bytes === undefined || bytes.length === 0) throw new AuditLogError(code, `${what}: the key is not canonical standard base64`);
  if (bytes[0] !== ED25519_SIGNATURE_TYPE) {
    throw new AuditLogError(code, `${what}: signature type 0x${(bytes[0] ?? 0).toString(16).padStart(2, '0')} is not supported (only 0x01, Ed25519)`);
  }
  if (bytes.length !== 1 + ED25519_KEY_SIZE) throw new AuditLogError(code, `${what}: an Ed25519 key is 32 bytes, got ${bytes.length - 1}`);
  return bytes.subarray(1);
}

function checkKeyIdMatches(name: string, given: Uint8Array, publicKey: Uint8Array): void {
  const calculated = keyId(name, publicKey);
  if (!hashesEqual(given, calculated)) {
    const e = toHex(given);
    const c = toHex(calculated);
    throw new AuditLogError('KEY_ID_MISMATCH', `key id ${e} does not belong to this name and key (calculated ${c})`, { expected: e, calculated: c });
  }
}

// ---- key objects ----

function keyNameProblem(name: string): string | undefined {
  if (name.length === 0) return 'the key name is empty';
  if (/[\s\u0085+]/u.test(name)) return `key name ${JSON.stringify(name)} contains a space or "+"`;
  const problem = noteTextProblem(name);
  return problem === undefined ? undefined : `the key name ${problem}`;
}

function checkKeyName(name: string): void {
  const problem = typeof name === 'string' ? keyNameProblem(name) : 'the key name must be a string';
  if (problem !== undefined) throw new AuditLogError('KEY_NAME_INVALID', problem);
}

function checkNoteText(text: string): void {
  if (typeof text !== 'string' || text.length === 0 || !text.endsWith('\n')) {
    throw new AuditLogError('NOTE_TEXT_INVALID', 'note text must be non-empty and end in a newline');
  }
  const problem = noteTextProblem(text);
  if (problem !== undefined) throw new AuditLogError('NOTE_TEXT_INVALID', `note text ${problem}`);
}

function checkRawKey(key: Uint8Array, kind: 'public' | 'private'): Uint8Array {
  if (!(key instanceof Uint8Array) || key.length !== ED25519_KEY_SIZE) {
    const what = kind === 'public' ? 'public key' : 'private key (seed)';
    throw new AuditLogError('KEY_INVALID', `an Ed25519 ${what} is 32 raw bytes or a KeyObject`);
  }
  return key;
}

function checkPublicKeyObject(key: KeyObject): KeyObject {
  if (key.type !== 'public' || key.asymmetricKeyType !== 'ed25519') {
    throw new AuditLogError('KEY_INVALID', `expected an Ed25519 public KeyObject, got a ${key.type} ${key.asymmetricKeyType ?? ''} key`);
  }
  return key;
}

function publicKeyObject(raw: Uint8Array): KeyObject {
  checkRawKey(raw, 'public');
  try {
    return createPublicKey({ key: Buffer.concat([ED25519_SPKI_PREFIX, raw]), format: 'der', type: 'spki' });
  } catch (cause) {
    throw new AuditLogError('KEY_INVALID', 'the public key is not a valid Ed25519 key', { cause });
  }
}

function privateKeyObject(key: KeyObject | Uint8Array): KeyObject {
  if (key instanceof KeyObject) {
    if (key.type !== 'private' || key.asymmetricKeyType !== 'ed25519') {
      throw new AuditLogError('KEY_INVALID', `expected an Ed25519 private KeyObject, got a ${key.type} ${key.asymmetricKeyType ?? ''} key`);
    }
    return key;
  }
  checkRawKey(key, 'private');
  return createPrivateKey({ key: Buffer.concat([ED25519_PKCS8_PREFIX, key]), format: 'der', type: 'pkcs8' });
}

function rawPublicKey(key: KeyObject): Uint8Array {
  const jwk = key.export({ format: 'jwk' });
  return new Uint8Array(Buffer.from(jwk.x ?? '', 'base64url'));
}

function rawPrivateKey(key: KeyObject): Uint8Array {
  const jwk = key.export({ format: 'jwk' });
  return new Uint8Array(Buffer.from(jwk.d ?? '', 'base64url'));
}

function malformed(message: string): AuditLogError {
  return new AuditLogError('NOTE_MALFORMED', message);
}
