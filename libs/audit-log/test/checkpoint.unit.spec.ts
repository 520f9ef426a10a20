import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  type Checkpoint,
  EMPTY_ROOT,
  type Hash,
  formatCheckpoint,
  generateSigningKey,
  hashFromHex,
  parseCheckpoint,
  signCheckpoint,
  signNote,
  toHex,
  verifyCheckpoint,
} from '../src/index.js';

const ROOT8 = hashFromHex('5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328');
const ROOT8_B64 = 'XcnaeacGWamtVZy3Ad7ZoqudgjqtL0lgz+Nw7/RgQyg=';
const SEED = Buffer.from('810a1402d5146c8d84f2443330f54080ebf98ee17d9c74f6252fc5d5c7283173', 'hex');
const PUBLIC = Buffer.from('1a5cd907143c384c41e830c5bce12aa8817ec5649aaabf2c31388b35b2d744d6', 'hex');
const ORIGIN = 'PeterNeumann';
const signer = { name: ORIGIN, privateKey: SEED };
const verifier = { name: ORIGIN, publicKey: PUBLIC };
const code = (c: string) => expect.objectContaining({ code: c });
const fail = (c: string, message: string) => expect.objectContaining({ code: c, message });

describe('checkpoint known answers', () => {
  it('parses the c2sp.org/tlog-checkpoint example body', () => {
    const cp = parseCheckpoint('example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n');
    expect({ ...cp, root: toHex(cp.root) }).toEqual({
      origin: 'example.com/behind-the-sofa',
      size: 20852163,
      // printf CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I= | base64 -d | xxd -p -c 32
      root: '0ac5186a91863e8e1d90c808014aa89bf5da8e3ee1d9f07630f0378f68f1ab62',
      extensions: [],
    });
  });

  it('formats origin, size, base64 root and the time line', () => {
    // printf 5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328 | xxd -r -p | base64
    expect(formatCheckpoint({ origin: ORIGIN, size: 8, root: ROOT8, timeMs: 1_700_000_000_000 })).toBe(`PeterNeumann\n8\n${ROOT8_B64}\ntime 1700000000000\n`);
    expect(formatCheckpoint({ origin: 'o', size: 0, root: EMPTY_ROOT, extensions: ['x y'] })).toBe('o\n0\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\nx y\n');
  });

  it('signs a checkpoint to the signature openssl computes with the same key', () => {
    // printf 'PeterNeumann\n8\nXcnaeacGWamtVZy3Ad7ZoqudgjqtL0lgz+Nw7/RgQyg=\ntime 1700000000000\n' > /tmp/cp.txt && openssl pkeyutl -sign -rawin -keyform DER -inkey <(printf 302e020100300506032b657004220420810a1402d5146c8d84f2443330f54080ebf98ee17d9c74f6252fc5d5c7283173 | xxd -r -p) -in /tmp/cp.txt | (printf c74f20a3 | xxd -r -p; cat) | base64 -w0
    const note = signCheckpoint({ origin: ORIGIN, size: 8, root: ROOT8, timeMs: 1_700_000_000_000 }, signer);
    expect(note).toBe(
      `PeterNeumann\n8\n${ROOT8_B64}\ntime 1700000000000\n\n— PeterNeumann x08go7nWmoIIWQT7Z2yZvgufkznD6fqWPw5pOVqR3dRoYhLV0fDHZd/0TIF7bXrg5BSE6l394PjG/oUydifTZ1q9cAc=\n`,
    );
    const cp = verifyCheckpoint(note, verifier, ORIGIN);
    expect({ ...cp, root: toHex(cp.root) }).toEqual({ origin: ORIGIN, size: 8, root: toHex(ROOT8), timeMs: 1_700_000_000_000, extensions: [] });
  });
});

describe('checkpoint round trips', () => {
  const arbLine = fc.string({ unit: 'grapheme', minLength: 1, maxLength: 40 }).filter((s) => !/[\u0000-\u001f]/.test(s));
  const arbCheckpoint: fc.Arbitrary<Checkpoint> = fc.record({
    origin: arbLine,
    size: fc.oneof(fc.constantFrom(0, 1, Number.MAX_SAFE_INTEGER), fc.nat()),
    root: fc.uint8Array({ minLength: 32, maxLength: 32 }).map((b) => b as Hash),
    timeMs: fc.option(fc.oneof(fc.constant(0), fc.nat(), fc.constant(Number.MAX_SAFE_INTEGER)), { nil: undefined }),
    extensions: fc.array(arbLine.filter((l) => l !== 'time' && !l.startsWith('time ')), { maxLength: 3 }),
  });

  it('parse(format(c)) is c, and format(parse(body)) is body', () => {
    fc.assert(
      fc.property(arbCheckpoint, (cp) => {
        const body = formatCheckpoint(cp);
        const parsed = parseCheckpoint(body);
        expect(parsed.origin).toBe(cp.origin);
        expect(parsed.size).toBe(cp.size);
        expect(toHex(parsed.root)).toBe(toHex(cp.root));
        expect(parsed.timeMs).toBe(cp.timeMs);
        expect(parsed.extensions).toEqual(cp.extensions);
        expect(formatCheckpoint(parsed)).toBe(body);
      }),
    );
  });

  it('sign then verify returns the checkpoint', () => {
    const key = generateSigningKey();
    fc.assert(
      fc.property(arbCheckpoint, (cp) => {
        const origin = cp.origin.replace(/[\s+]/gu, '_');
        const note = signCheckpoint({ ...cp, origin }, { name: origin, privateKey: key.privateKey });
        const back = verifyCheckpoint(note, { name: origin, publicKey: key.publicKey }, origin);
        expect(formatCheckpoint(back)).toBe(formatCheckpoint({ ...cp, origin }));
      }),
      { numRuns: 50 },
    );
  });
});

describe('verifyCheckpoint trusts nothing before the signature', () => {
  const note = signCheckpoint({ origin: ORIGIN, size: 8, root: ROOT8, timeMs: 1_700_000_000_000 }, signer);
  const body = note.slice(0, note.indexOf('\n\n') + 1);

  it('rejects a checkpoint signed by another key', () => {
    const other = generateSigningKey();
    const forged = signCheckpoint({ origin: ORIGIN, size: 8, root: ROOT8 }, { name: ORIGIN, privateKey: other.privateKey });
    expect(() => verifyCheckpoint(forged, verifier, ORIGIN)).toThrow(code('NOTE_NOT_SIGNED'));
  });

  it('rejects a body altered by one byte anywhere', () => {
    fc.assert(
      fc.property(fc.nat({ max: body.length - 2 }), fc.constantFrom('0', '9', 'A', '/', 'x'), (at, ch) => {
        fc.pre(body[at] !== ch && body[at] !== '\n');
        const altered = `${body.slice(0, at)}${ch}${note.slice(at + 1)}`;
        expect(() => verifyCheckpoint(altered, verifier, ORIGIN)).toThrow(code('NOTE_SIGNATURE_INVALID'));
      }),
    );
  });

  it('reports a bad signature, not a bad body, when both are wrong', () => {
    const garbage = `${'not a checkpoint\n'}${note.slice(body.length)}`;
    expect(() => verifyCheckpoint(garbage, verifier, ORIGIN)).toThrow(code('NOTE_SIGNATURE_INVALID'));
  });

  it('rejects a valid checkpoint of another origin signed by the same key', () => {
    const other = signNote(formatCheckpoint({ origin: 'other.example/log', size: 8, root: ROOT8 }), signer);
    expect(() => verifyCheckpoint(other, verifier, ORIGIN)).toThrow(
      fail('CHECKPOINT_ORIGIN_MISMATCH', 'checkpoint is for origin "other.example/log", expected "PeterNeumann"'),
    );
  });

  it('parses the body only after the signature verified', () => {
    const bad = signNote('PeterNeumann\n08\nAAAA\n', signer);
    expect(() => verifyCheckpoint(bad, verifier, ORIGIN)).toThrow(code('CHECKPOINT_SIZE_INVALID'));
  });
});

describe('parseCheckpoint rejects malformed bodies precisely', () => {
  const R = ROOT8_B64;
  it.each([
    ['missing final newline', `o\n1\n${R}`, 'CHECKPOINT_MISSING_NEWLINE', 'a checkpoint body must end in a newline'],
    ['two lines', 'o\n1\n', 'CHECKPOINT_TOO_FEW_LINES', 'a checkpoint body has at least 3 lines (origin, size, root), got 2'],
    ['an empty origin', `\n1\n${R}\n`, 'CHECKPOINT_ORIGIN_INVALID', 'line 1: the origin is empty'],
    ['a CR in the origin', `o\r\n1\n${R}\n`, 'CHECKPOINT_ORIGIN_INVALID', 'line 1: the origin contains control character U+000d at offset 1'],
    ['a negative size', `o\n-1\n${R}\n`, 'CHECKPOINT_SIZE_INVALID', 'line 2: tree size "-1" is not a decimal number without leading zeros below 2^53'],
    ['a non-decimal size', `o\n0x10\n${R}\n`, 'CHECKPOINT_SIZE_INVALID', 'line 2: tree size "0x10" is not a decimal number without leading zeros below 2^53'],
    ['an exponent size', `o\n1e3\n${R}\n`, 'CHECKPOINT_SIZE_INVALID', 'line 2: tree size "1e3" is not a decimal number without leading zeros below 2^53'],
    ['a leading zero', `o\n08\n${R}\n`, 'CHECKPOINT_SIZE_INVALID', 'line 2: tree size "08" is not a decimal number without leading zeros below 2^53'],
    ['a double zero', `o\n00\n${R}\n`, 'CHECKPOINT_SIZE_INVALID', 'line 2: tree size "00" is not a decimal number without leading zeros below 2^53'],
    ['a space in the size', `o\n 8\n${R}\n`, 'CHECKPOINT_SIZE_INVALID', 'line 2: tree size " 8" is not a decimal number without leading zeros below 2^53'],
    ['an empty size', `o\n\n${R}\n`, 'CHECKPOINT_SIZE_INVALID', 'line 2: tree size "" is not a decimal number without leading zeros below 2^53'],
    ['a size of 2^53', `o\n9007199254740992\n${R}\n`, 'CHECKPOINT_SIZE_INVALID', 'line 2: tree size "9007199254740992" is not a decimal number without leading zeros below 2^53'],
    ['bad base64', 'o\n8\nnot base64!\n', 'CHECKPOINT_ROOT_INVALID', 'line 3: root hash "not base64!" is not canonical standard base64'],
    ['base64url', `o\n8\n${R.replace('/', '_')}\n`, 'CHECKPOINT_ROOT_INVALID', `line 3: root hash "${R.replace('/', '_')}" is not canonical standard base64`],
    ['missing padding', `o\n8\n${R.slice(0, -1)}\n`, 'CHECKPOINT_ROOT_INVALID', `line 3: root hash "${R.slice(0, -1)}" is not canonical standard base64`],
    ['non-zero trailing bits', `o\n8\n${R.slice(0, -2)}h=\n`, 'CHECKPOINT_ROOT_INVALID', `line 3: root hash "${R.slice(0, -2)}h=" is not canonical standard base64`],
    // printf '%.0s\x00' {1..31} | base64
    ['a 31-byte root', 'o\n8\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA==\n', 'CHECKPOINT_ROOT_INVALID', 'line 3: root hash is 31 bytes, must be 32'],
    ['a 33-byte root', 'o\n8\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\n', 'CHECKPOINT_ROOT_INVALID', 'line 3: root hash is 33 bytes, must be 32'],
    ['an empty root', 'o\n8\n\n', 'CHECKPOINT_ROOT_INVALID', 'line 3: root hash is 0 bytes, must be 32'],
    ['an empty extension line', `o\n8\n${R}\n\n`, 'CHECKPOINT_EXTENSION_INVALID', 'line 4: extension lines MUST NOT be empty'],
    ['a trailing blank line after extensions', `o\n8\n${R}\ntime 1\nx\n\n`, 'CHECKPOINT_EXTENSION_INVALID', 'line 6: extension lines MUST NOT be empty'],
    ['a bare time keyword', `o\n8\n${R}\ntime\n`, 'CHECKPOINT_TIME_INVALID', 'line 4: time "" is not decimal milliseconds without leading zeros'],
    ['a time with a leading zero', `o\n8\n${R}\ntime 017\n`, 'CHECKPOINT_TIME_INVALID', 'line 4: time "017" is not decimal milliseconds without leading zeros'],
    ['a fractional time', `o\n8\n${R}\ntime 1.5\n`, 'CHECKPOINT_TIME_INVALID', 'line 4: time "1.5" is not decimal milliseconds without leading zeros'],
    ['a second time line', `o\n8\n${R}\ntime 1\ntime 2\n`, 'CHECKPOINT_TIME_INVALID', 'line 5: a time line MUST be the first extension line and appear once'],
    ['a time line after another extension', `o\n8\n${R}\nx\ntime 2\n`, 'CHECKPOINT_TIME_INVALID', 'line 5: a time line MUST be the first extension line and appear once'],
  ])('%s', (_, body, c, message) => {
    expect(() => parseCheckpoint(body)).toThrow(fail(c, message));
  });
});

describe('formatCheckpoint refuses what it could not parse back', () => {
  it.each([
    ['an empty origin', { origin: '', size: 1, root: ROOT8 }, 'CHECKPOINT_ORIGIN_INVALID'],
    ['a newline in the origin', { origin: 'a\nb', size: 1, root: ROOT8 }, 'CHECKPOINT_ORIGIN_INVALID'],
    ['a negative size', { origin: 'o', size: -1, root: ROOT8 }, 'TREE_SIZE_INVALID'],
    ['a fractional size', { origin: 'o', size: 1.5, root: ROOT8 }, 'TREE_SIZE_INVALID'],
    ['a short root', { origin: 'o', size: 1, root: new Uint8Array(31) as Hash }, 'HASH_LENGTH_INVALID'],
    ['a fractional time', { origin: 'o', size: 1, root: ROOT8, timeMs: 1.5 }, 'CHECKPOINT_TIME_INVALID'],
    ['a negative time', { origin: 'o', size: 1, root: ROOT8, timeMs: -1 }, 'CHECKPOINT_TIME_INVALID'],
    ['an empty extension', { origin: 'o', size: 1, root: ROOT8, extensions: [''] }, 'CHECKPOINT_EXTENSION_INVALID'],
    ['a multi-line extension', { origin: 'o', size: 1, root: ROOT8, extensions: ['a\nb'] }, 'CHECKPOINT_EXTENSION_INVALID'],
    ['a time line among extensions', { origin: 'o', size: 1, root: ROOT8, extensions: ['time 5'] }, 'CHECKPOINT_EXTENSION_INVALID'],
  ])('%s', (_, cp, c) => {
    expect(() => formatCheckpoint(cp as Checkpoint)).toThrow(code(c));
  });
});
