import { ValidateBy, type ValidationOptions } from 'class-validator';
import { displayTextProblem, type DisplayTextRule } from '#text';

/**
 * Free text (names, locations, reasons, notice titles and bodies) under the shared rule of libs/text,
 * the one the deciders apply: NFKC-judged, something visible, no control character (line breaks only
 * where `rule.multiline`), no unpaired surrogate, at most `rule.max` characters. The text is kept as the
 * caller gave it; the message never quotes it.
 */
export function IsDisplayText(rule: DisplayTextRule, options?: ValidationOptions): PropertyDecorator {
  return ValidateBy(
    {
      name: 'isDisplayText',
      validator: {
        validate: (value: unknown) => displayTextProblem(value, rule) === undefined,
        defaultMessage: (args) => displayTextProblem(args?.value, rule)?.message ?? 'is not valid text',
      },
    },
    options,
  );
}
