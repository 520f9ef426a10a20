import { createHmac } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { LookupSeal } from '../src/state/lookup-seal.js';

const handleOf = (secret: string) => (domain: string, value: string, bytes: number) => createHmac('sha256', secret).update(`${domain}\0${value}`).digest().subarray(0, bytes).toString('hex');
const SUBJECT = '0194f7a2-1c3d-7a4b-8c5d-6e7f8091a2b3';
const CODE = 'AAECAwQFBgcICQoLDA0ODw'.slice(0, 21) + 'w';

describe('LookupSeal', () => {
  const seal = new LookupSeal(handleOf('hub-1'));

  it('enciphers subject ids and codes to one block each, and gives them back', () => {
    const s = seal.subject(SUBJECT);
    expect(s).toHaveLength(16);
    expect(s.equals(Buffer.from(SUBJECT.replaceAll('-', ''), 'hex'))).toBe(false);
    expect(seal.subjectOf(s)).toBe(SUBJECT);
    const c = seal.code(CODE);
    expect(c).toHaveLength(16);
    expect(c.equals(Buffer.from(CODE, 'base64url'))).toBe(false);
    expect(seal.codeOf(c)).toBe(CODE);
  });

  it('is deterministic (equal values, equal bytes: they can be keys) and depends on the hub key', () => {
    expect(seal.subject(SUBJECT).equals(seal.subject(SUBJECT))).toBe(true);
    expect(seal.row('{"a":1}').equals(seal.row('{"a":1}'))).toBe(true);
    expect(seal.key('number', 'x').equals(seal.key('number', 'x'))).toBe(true);
    expect(seal.key('number', 'x').equals(seal.key('secret', 'x'))).toBe(false);
    const other = new LookupSeal(handleOf('hub-2'));
    expect(other.subject(SUBJECT).equals(seal.subject(SUBJECT))).toBe(false);
    expect(other.key('number', 'x').equals(seal.key('number', 'x'))).toBe(false);
  });

  it('seals rows (authenticated): another hub key cannot open them', () => {
    const row = seal.row('{"passkeyId":"p-1","label":"phone"}');
    expect(row.includes(Buffer.from('phone'))).toBe(false);
    expect(seal.openRow(row)).toBe('{"passkeyId":"p-1","label":"phone"}');
    expect(() => new LookupSeal(handleOf('hub-2')).openRow(row)).toThrow();
  });

  it('refuses a value that is not one block (it would put the streaming cipher out of step)', () => {
    expect(() => seal.codeOf(Buffer.alloc(15))).toThrow(RangeError);
    expect(() => seal.code('AAAA')).toThrow(RangeError);
    // Still in step afterwards.
    expect(seal.subjectOf(seal.subject(SUBJECT))).toBe(SUBJECT);
  });
});
