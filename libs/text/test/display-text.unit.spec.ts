import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import { displayTextProblem, isDisplayTextUnder, type DisplayTextFault } from '#text';

const LINE = { max: 10 };
const BODY = { max: 10, multiline: true };
const fault = (value: unknown, rule: Parameters<typeof displayTextProblem>[1] = LINE): DisplayTextFault | undefined => displayTextProblem(value, rule)?.fault;

describe('display text', () => {
  test('accepts ordinary text in any script, with spaces inside, emoji sequences and combining marks on a base', () => {
    for (const text of ['室蘭市', 'Muroran City', 'ｶﾌﾞｼｷ', '👩‍👩‍👧', 'e\u0301t\u0065\u0301', 'ａ\u200bｂ', '𠮷野家']) expect(fault(text, { max: 20 })).toBeUndefined();
  });

  test.each([
    ['empty', ''],
    ['spaces', '   '],
    ['an ideographic space', '\u3000'],
    ['zero-width spaces only', '\u200b\u200b\u200b'],
    ['joiners and the BOM', '\u200c\u200d\u2060\ufeff'],
    ['bidi marks', '\u200e\u200f\u202a\u202c'],
    ['Hangul fillers (and the half-width one NFKC turns into a filler)', '\u3164\u115f\uffa0'],
    ['a variation selector', '\ufe0f'],
    ['combining marks without a base', '\u0301\u0308'],
    ['the blank Braille pattern', '\u2800'],
    ['a mix of them', ' \u200b\u3000\u2060\u00a0'],
  ])('refuses text that shows nothing: %s', (_case, text) => {
    const problem = displayTextProblem(text, LINE);
    expect(problem?.fault).toBe('invisible');
    expect(problem?.message).toMatch(/^must not be empty or only white space or invisible characters .*; give visible text$/);
  });

  test('refuses an unpaired surrogate anywhere, naming its position in characters', () => {
    expect(displayTextProblem('\ud800', LINE)).toEqual({ fault: 'unpaired-surrogate', message: expect.stringContaining('character 1 is an unpaired UTF-16 surrogate (U+D800)') });
    expect(displayTextProblem('𠮷a\udc00', LINE)?.message).toContain('character 3 is an unpaired UTF-16 surrogate (U+DC00)');
    expect(fault('ab\ud83d')).toBe('unpaired-surrogate');
    expect(fault('\ud83d\ude00')).toBeUndefined();
  });

  test('refuses control characters; a multi-line text takes LF and CR LF and nothing else', () => {
    for (const text of ['a\nb', 'a\r\nb', 'a\tb', 'a\u0000', 'a\u007f', 'a\u0085', 'a\u2028b', 'a\u2029b']) expect(fault(text), JSON.stringify(text)).toBe('control-character');
    expect(displayTextProblem('a\u0007', LINE)?.message).toBe('must not contain control characters or line breaks; remove U+0007');
    expect(fault('a\nb\r\nc', BODY)).toBeUndefined();
    for (const text of ['a\rb', 'a\tb', 'a\u000bb', 'a\u2028b', 'a\u0000']) expect(fault(text, BODY), JSON.stringify(text)).toBe('control-character');
    expect(displayTextProblem('a\rb', BODY)?.message).toBe('must not contain control characters other than line breaks (LF or CR LF); remove U+000D');
    expect(fault('\n\n', BODY)).toBe('invisible');
  });

  test('counts code points, on the text as given and on its NFKC form', () => {
    expect(fault('𠮷'.repeat(10))).toBeUndefined();
    expect(displayTextProblem('𠮷'.repeat(11), LINE)?.message).toBe('is 11 characters long; at most 10 are allowed');
    expect(displayTextProblem('x'.repeat(100_000), LINE)?.message).toBe('is 100000 characters long; at most 10 are allowed');
    // ㍿ is one character that NFKC turns into four.
    expect(displayTextProblem('㍿㍿㍿', LINE)?.message).toBe('is 12 characters long once normalised (Unicode NFKC: e.g. ㍿ is 株式会社); at most 10 are allowed');
  });

  test('surrounding white space: kept and judged, trimmed first, or refused', () => {
    expect(fault(` ${'a'.repeat(10)} `)).toBe('too-long');
    expect(fault(` ${'a'.repeat(10)} `, { max: 10, surroundingSpace: 'trim' })).toBeUndefined();
    expect(displayTextProblem(' 室蘭市', { max: 10, surroundingSpace: 'refuse' })).toEqual({ fault: 'surrounding-space', message: 'must not begin or end with white space; trim it' });
    expect(fault('\u3000', { max: 10, surroundingSpace: 'trim' })).toBe('invisible');
  });

  test('refuses what is not a string', () => {
    for (const value of [undefined, null, 1, ['a'], { a: 1 }]) expect(displayTextProblem(value, LINE)).toEqual({ fault: 'not-a-string', message: 'must be a string' });
  });

  test('never throws, and accepts exactly what has a visible character, no control, no lone surrogate and fits', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 14 }), (text) => {
        const problem = displayTextProblem(text, LINE);
        expect(isDisplayTextUnder(text, LINE)).toBe(problem === undefined);
        if (problem === undefined) {
          const n = text.normalize('NFKC');
          expect([...n].length).toBeLessThanOrEqual(10);
          expect(n).toMatch(/[^\p{White_Space}\p{Cc}\p{Cf}\p{Z}\p{Default_Ignorable_Code_Point}\p{M}]/u);
          expect(n).not.toMatch(/\p{Cc}/u);
          expect(text).not.toMatch(/[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/);
        } else {
          expect(problem.message).not.toContain(text.length > 0 ? text : '\u0000\u0000');
        }
      }),
      { numRuns: 500 },
    );
  });
});
