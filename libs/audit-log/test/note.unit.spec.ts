import { createPrivateKey, createPublicKey, generateKeyPairSync } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  formatSignerKey,
  formatVerifierKey,
  generateSigningKey,
  keyId,
  parseSignerKey,
  parseVerifierKey,
  publicKeyOf,
  signNote,
  toHex,
  verifyNote,
} from '../src/index.js';

// The key pair and note of golang.org/x/mod/sumdb/note's tests (note_test.go). Ed25519 is
// deterministic, so our signature MUST match theirs byte for byte.
const VKEY = 'PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW';
const SKEY = 'PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz';
const TEXT = "If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n";
const SIG_LINE = '— PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n';
const NOTE = `${TEXT}\n${SIG_LINE}`;
const PUBLIC_HEX = '1a5cd907143c384c41e830c5bce12aa8817ec5649aaabf2c31388b35b2d744d6';
const SEED_HEX = '810a1402d5146c8d84f2443330f54080ebf98ee17d9c74f6252fc5d5c7283173';

const signer = { name: 'PeterNeumann', privateKey: Buffer.from(SEED_HEX, 'hex') };
const verifier = { name: 'PeterNeumann', publicKey: Buffer.from(PUBLIC_HEX, 'hex') };
const code = (c: string) => expect.objectContaining({ code: c });

describe('signed note known answers (Go sumdb/note)', () => {
  it('computes the key id as SHA-256(name ‖ 0x0A ‖ 0x01 ‖ public key)[:4]', () => {
    // (printf 'PeterNeumann\n\x01'; printf 1a5cd907143c384c41e830c5bce12aa8817ec5649aaabf2c31388b35b2d744d6 | xxd -r -p) | sha256sum | head -c 8
    expect(toHex(keyId('PeterNeumann', verifier.publicKey))).toBe('c74f20a3');
    expect(toHex(keyId('PeterNeumann', createPublicKey(createPrivateKey({ key: Buffer.concat([Buffer.from('302e020100300506032b657004220420', 'hex'), signer.privateKey]), format: 'der', type: 'pkcs8' }))))).toBe('c74f20a3');
  });

  it('signs the reference note to the reference signature', () => {
    // printf "If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n" > /tmp/t.txt && openssl pkeyutl -sign -rawin -keyform DER -inkey <(printf 302e020100300506032b657004220420810a1402d5146c8d84f2443330f54080ebf98ee17d9c74f6252fc5d5c7283173 | xxd -r -p) -in /tmp/t.txt | (printf c74f20a3 | xxd -r -p; cat) | base64 -w0
    expect(signNote(TEXT, signer)).toBe(NOTE);
    expect(signNote(TEXT, { name: 'PeterNeumann', privateKey: createPrivateKey({ key: Buffer.concat([Buffer.from('302e020100300506032b657004220420', 'hex'), signer.privateKey]), format: 'der', type: 'pkcs8' }) })).toBe(NOTE);
  });

  it('verifies the reference note and returns its text', () => {
    expect(verifyNote(NOTE, verifier)).toBe(TEXT);
    expect(verifyNote(NOTE, parseVerifierKey(VKEY))).toBe(TEXT);
    expect(verifyNote(NOTE, { name: 'PeterNeumann', publicKey: createPublicKey({ key: Buffer.concat([Buffer.from('302a300506032b6570032100', 'hex'), verifier.publicKey]), format: 'der', type: 'spki' }) })).toBe(TEXT);
  });

  it('parses and formats the reference verifier and signer keys', () => {
    const v = parseVerifierKey(VKEY);
    expect({ name: v.name, keyId: toHex(v.keyId), publicKey: toHex(v.publicKey) }).toEqual({ name: 'PeterNeumann', keyId: 'c74f20a3', publicKey: PUBLIC_HEX });
    expect(formatVerifierKey(v)).toBe(VKEY);
    const s = parseSignerKey(SKEY);
    expect({ name: s.name, keyId: toHex(s.keyId), privateKey: toHex(s.privateKey) }).toEqual({ name: 'PeterNeumann', keyId: 'c74f20a3', privateKey: SEED_HEX });
    expect(formatSignerKey(s)).toBe(SKEY);
    expect(toHex(publicKeyOf(s.privateKey))).toBe(PUBLIC_HEX);
  });
});

describe('verifyNote rejects what it MUST NOT trust', () => {
  it('a note altered by one character anywhere in its text fails', () => {
    // (the text's final newline is structure: changing it is NOTE_MALFORMED, tested below)
    fc.assert(
      fc.property(fc.nat({ max: TEXT.length - 2 }), fc.constantFrom('x', 'Y', ' ', '.', '—'), (at, ch) => {
        fc.pre(TEXT[at] !== ch);
        const altered = `${TEXT.slice(0, at)}${ch}${TEXT.slice(at + 1)}\n${SIG_LINE}`;
        expect(() => verifyNote(altered, verifier)).toThrow(code('NOTE_SIGNATURE_INVALID'));
      }),
    );
  });

  it('a note signed by another key fails, even under the same name', () => {
    const other = generateSigningKey();
    const note = signNote(TEXT, { name: 'PeterNeumann', privateKey: other.privateKey });
    expect(() => verifyNote(note, verifier)).toThrow(
      expect.objectContaining({ code: 'NOTE_NOT_SIGNED', message: 'the note carries no signature by PeterNeumann+c74f20a3' }),
    );
    expect(verifyNote(note, { name: 'PeterNeumann', publicKey: other.publicKey })).toBe(TEXT);
  });

  it('ignores a signature that shares the key id but not the name (the spec: both MUST match)', () => {
    const renamed = `${TEXT}\n${SIG_LINE.replace('PeterNeumann', 'Mallory')}`;
    expect(() => verifyNote(renamed, verifier)).toThrow(code('NOTE_NOT_SIGNED'));
  });

  it('a signature with the right key id but wrong bytes fails the whole note', () => {
    const sig = Buffer.from(SIG_LINE.slice('— PeterNeumann '.length, -1), 'base64');
    sig[10]! ^= 1;
    const note = `${TEXT}\n— PeterNeumann ${sig.toString('base64')}\n`;
    expect(() => verifyNote(note, verifier)).toThrow(code('NOTE_SIGNATURE_INVALID'));
  });

  it('ignores signatures by unknown keys, before and after the trusted one', () => {
    const other = generateSigningKey();
    const otherLine = signNote(TEXT, { name: 'witness.example/w1', privateKey: other.privateKey }).slice(TEXT.length + 1);
    expect(verifyNote(`${TEXT}\n${otherLine}${SIG_LINE}`, verifier)).toBe(TEXT);
    expect(verifyNote(`${TEXT}\n${SIG_LINE}${otherLine}`, verifier)).toBe(TEXT);
    expect(() => verifyNote(`${TEXT}\n${otherLine}`, verifier)).toThrow(code('NOTE_NOT_SIGNED'));
  });

  it.each([
    ['no final newline', NOTE.slice(0, -1), 'a signed note must end in a newline'],
    ['no blank line', `${TEXT}${SIG_LINE}`, 'the note has no blank line before its signatures'],
    ['a blank line but no signature lines', `${TEXT}\n`, 'the note has no signature lines'],
    ['two blank lines but no signature lines', `${TEXT}\n\n`, 'the note has no signature lines'],
    ['a hyphen instead of the em dash', `${TEXT}\n-${SIG_LINE.slice(1)}`, 'signature line 1 does not start with "— " (em dash U+2014, space)'],
    ['an en dash instead of the em dash', `${TEXT}\n–${SIG_LINE.slice(1)}`, 'signature line 1 does not start with "— " (em dash U+2014, space)'],
    ['no space after the name', `${TEXT}\n— PeterNeumann\n`, 'signature line 1 has no space between key name and signature'],
    ['bad base64', `${TEXT}\n— PeterNeumann x08go!ZJ\n`, 'signature line 1: the signature is not canonical standard base64'],
    ['a signature of 4 bytes', `${TEXT}\n— PeterNeumann x08gow==\n`, 'signature line 1: a signature is a 4-byte key id and at least one byte, got 4 bytes'],
    ['a control character', `${TEXT.replace('problem,', 'problem,\t')}\n${SIG_LINE}`, 'the note contains control character U+0009 at offset 56'],
    ['CRLF line ends', NOTE.replaceAll('\n', '\r\n'), 'the note contains control character U+000d at offset 56'],
  ])('a note with %s is NOTE_MALFORMED', (_, note, message) => {
    expect(() => verifyNote(note, verifier)).toThrow(expect.objectContaining({ code: 'NOTE_MALFORMED', message }));
  });

  it('caps the number of signature lines at 100', () => {
    const other = generateSigningKey();
    const otherLine = signNote(TEXT, { name: 'w', privateKey: other.privateKey }).slice(TEXT.length + 1);
    expect(verifyNote(`${TEXT}\n${otherLine.repeat(99)}${SIG_LINE}`, verifier)).toBe(TEXT);
    expect(() => verifyNote(`${TEXT}\n${otherLine.repeat(100)}${SIG_LINE}`, verifier)).toThrow(code('NOTE_MALFORMED'));
  });
});

describe('signNote preconditions', () => {
  it('refuses text it could not sign unambiguously', () => {
    expect(() => signNote('no newline', signer)).toThrow(code('NOTE_TEXT_INVALID'));
    expect(() => signNote('', signer)).toThrow(code('NOTE_TEXT_INVALID'));
    expect(() => signNote('tab\there\n', signer)).toThrow(code('NOTE_TEXT_INVALID'));
    expect(() => signNote('lone \ud800 surrogate\n', signer)).toThrow(code('NOTE_TEXT_INVALID'));
  });

  it('refuses key names with spaces or plus, and keys of the wrong size or kind', () => {
    for (const name of ['', 'a b', 'a+b', 'a\u3000b', 'a\u00a0b']) expect(() => signNote(TEXT, { ...signer, name })).toThrow(code('KEY_NAME_INVALID'));
    expect(() => signNote(TEXT, { name: 'k', privateKey: new Uint8Array(31) })).toThrow(code('KEY_INVALID'));
    expect(() => verifyNote(NOTE, { name: 'PeterNeumann', publicKey: new Uint8Array(33) })).toThrow(code('KEY_INVALID'));
    const rsa = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    expect(() => signNote(TEXT, { name: 'k', privateKey: rsa.privateKey })).toThrow(code('KEY_INVALID'));
    expect(() => verifyNote(NOTE, { name: 'k', publicKey: rsa.publicKey })).toThrow(code('KEY_INVALID'));
  });

  it('round-trips any valid text with a generated key', () => {
    const key = generateSigningKey();
    fc.assert(
      fc.property(fc.string({ unit: 'grapheme', minLength: 1, maxLength: 200 }), (s) => {
        const text = `${s.replace(/[\u0000-\u001f]/g, '')}\n`;
        const note = signNote(text, { name: 'log.example/a', privateKey: key.privateKey });
        expect(verifyNote(note, { name: 'log.example/a', publicKey: key.publicKey })).toBe(text);
      }),
      { numRuns: 50 },
    );
  });
});

describe('verifier key text', () => {
  it('rejects every proper substring and every single-character change of a valid key', () => {
    // Go's note_test.go idea: no mangled key may parse.
    for (let i = 0; i <= VKEY.length; i++) {
      for (let j = i + 1; j <= VKEY.length; j++) {
        if (i !== 0 || j !== VKEY.length) expect(() => parseVerifierKey(VKEY.slice(i, j))).toThrow();
      }
    }
    for (let i = 0; i < VKEY.length; i++) {
      const mangled = VKEY.slice(0, i) + String.fromCharCode(VKEY.charCodeAt(i) + 1) + VKEY.slice(i + 1);
      expect(() => parseVerifierKey(mangled)).toThrow();
    }
  });

  it('names what is wrong', () => {
    expect(() => parseVerifierKey('PeterNeumann+c74f20a4+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW')).toThrow(
      expect.objectContaining({ code: 'KEY_ID_MISMATCH', expected: 'c74f20a4', calculated: 'c74f20a3' }),
    );
    expect(() => parseVerifierKey('PeterNeumann+c74f20a3+AhpcZ2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10T')).toThrow(code('VERIFIER_KEY_MALFORMED'));
    // type byte 0x02 in front of the same key
    expect(() => parseVerifierKey(`PeterNeumann+c74f20a3+${Buffer.concat([Buffer.of(2), Buffer.from(PUBLIC_HEX, 'hex')]).toString('base64')}`)).toThrow(
      expect.objectContaining({ code: 'VERIFIER_KEY_MALFORMED', message: 'verifier key: signature type 0x02 is not supported (only 0x01, Ed25519)' }),
    );
    expect(() => parseVerifierKey('PeterNeumann+c74f20a3')).toThrow(code('VERIFIER_KEY_MALFORMED'));
    expect(() => parseVerifierKey('Peter Neumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW')).toThrow(code('VERIFIER_KEY_MALFORMED'));
    expect(() => parseSignerKey(VKEY)).toThrow(expect.objectContaining({ code: 'SIGNER_KEY_MALFORMED', message: 'a signer key starts with "PRIVATE+KEY+"' }));
    expect(() => parseSignerKey(SKEY.replace('c74f20a3', 'c74f20a4'))).toThrow(code('KEY_ID_MISMATCH'));
  });

  it('round-trips generated keys', () => {
    const key = generateSigningKey();
    const text = formatVerifierKey({ name: 'hub.example/ledger', publicKey: key.publicKey });
    const parsed = parseVerifierKey(text);
    expect(toHex(parsed.publicKey)).toBe(toHex(key.publicKey));
    expect(toHex(parsed.keyId)).toBe(toHex(keyId('hub.example/ledger', key.publicKey)));
    expect(toHex(parseSignerKey(formatSignerKey({ name: 'hub.example/ledger', privateKey: key.privateKey })).privateKey)).toBe(toHex(key.privateKey));
  });
});
