/**
 * Free text that people read (corporate names and locations, agency names, revocation reasons, notice
 * titles and bodies, the authorization table's names): one rule for the HTTP edge's DTOs and the pure
 * deciders, so the edge refuses exactly what the decider would.
 *
 * The text is judged in its Unicode NFKC form (full-width spaces and compatibility fillers become what
 * they look like) and refused when it is not a string, holds an unpaired UTF-16 surrogate, is longer than
 * allowed, holds a control character, or holds nothing visible. Messages follow the field's name
 * ("name must not be …") and never quote the text: it may be personal (a notice).
 */

export interface DisplayTextRule {
  /** Most characters (Unicode code points), counted on the text as given and on its NFKC form. */
  readonly max: number;
  /**
   * Line breaks allowed (a notice body): LF, or CR LF. Every other control character (Cc), and the
   * line and paragraph separators U+2028/U+2029, are refused in every text, multi-line or not.
   */
  readonly multiline?: boolean;
  /**
   * White space around the text: `keep` (default) judges the text as given; `trim` judges it without
   * (the caller stores it trimmed); `refuse` refuses text that begins or ends with white space.
   */
  readonly surroundingSpace?: 'keep' | 'trim' | 'refuse';
}

export type DisplayTextFault = 'not-a-string' | 'unpaired-surrogate' | 'surrounding-space' | 'too-long' | 'control-character' | 'invisible';

export interface DisplayTextProblem {
  readonly fault: DisplayTextFault;
  /** To follow the field's name, e.g. `name` + ` must not be empty or only white space …`. */
  readonly message: string;
}

const UNPAIRED_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;
// C0 and C1 controls (Cc), and the line and paragraph separators (they end a line in CSV readers and in JavaScript).
const CONTROL = /[\u0000-\u001f\u007f-\u009f\u2028\u2029]/;
const CONTROL_BUT_LINE_FEED = /[\u0000-\u0009\u000b\u000c\u000e-\u001f\u007f-\u009f\u2028\u2029]|\r(?!\n)/;
/**
 * What shows nothing on its own: white space (Zs, Zl, Zp and the White_Space controls), other controls
 * (Cc), format characters (Cf: zero-width space and joiners, bidi marks, the BOM), default-ignorable code
 * points (Hangul fillers, variation selectors), combining marks without a base (M) and the blank Braille
 * pattern U+2800.
 */
const INVISIBLE_ONLY = /^[\p{White_Space}\p{Cc}\p{Cf}\p{Z}\p{Default_Ignorable_Code_Point}\p{M}\u2800]*$/u;

/** Why `value` is not acceptable display text under `rule`, or undefined when it is. Pure. */
export function displayTextProblem(value: unknown, rule: DisplayTextRule): DisplayTextProblem | undefined {
  if (typeof value !== 'string') return { fault: 'not-a-string', message: 'must be a string' };
  const surrogate = UNPAIRED_SURROGATE.exec(value);
  if (surrogate !== null) {
    const at = [...value.slice(0, surrogate.index)].length + 1;
    return {
      fault: 'unpaired-surrogate',
      message: `must be well-formed Unicode: character ${at} is an unpaired UTF-16 surrogate (${codePoint(surrogate[0])}); send the text as valid UTF-8`,
    };
  }
  const space = rule.surroundingSpace ?? 'keep';
  const given = space === 'trim' ? value.trim() : value;
  // Each code point is one or two UTF-16 units: well past the limit, there is nothing to normalise.
  const long = given.length > 2 * rule.max ? [...given].length : undefined;
  if (long !== undefined) return tooLong(long, rule.max, false);
  const normalized = given.normalize('NFKC');
  const givenLength = [...given].length;
  const normalizedLength = [...normalized].length;
  if (givenLength > rule.max || normalizedLength > rule.max) {
    return tooLong(Math.max(givenLength, normalizedLength), rule.max, normalizedLength > givenLength);
  }
  const control = (rule.multiline === true ? CONTROL_BUT_LINE_FEED : CONTROL).exec(normalized);
  if (control !== null) {
    const what = rule.multiline === true ? 'control characters other than line breaks (LF or CR LF)' : 'control characters or line breaks';
    return { fault: 'control-character', message: `must not contain ${what}; remove ${codePoint(control[0][0]!)}` };
  }
  if (INVISIBLE_ONLY.test(normalized)) {
    return {
      fault: 'invisible',
      message: 'must not be empty or only white space or invisible characters (zero-width, format or filler characters); give visible text',
    };
  }
  if (space === 'refuse' && value.trim() !== value) {
    return { fault: 'surrounding-space', message: 'must not begin or end with white space; trim it' };
  }
  return undefined;
}

/** True when `value` is acceptable display text under `rule`. */
export function isDisplayTextUnder(value: unknown, rule: DisplayTextRule): value is string {
  return displayTextProblem(value, rule) === undefined;
}

function tooLong(length: number, max: number, byNormalization: boolean): DisplayTextProblem {
  const how = byNormalization ? ' once normalised (Unicode NFKC: e.g. ㍿ is 株式会社)' : '';
  return { fault: 'too-long', message: `is ${length} characters long${how}; at most ${max} are allowed` };
}

function codePoint(character: string): string {
  return `U+${character.charCodeAt(0).toString(16).toUpperCase().padStart(4, '0')}`;
}
