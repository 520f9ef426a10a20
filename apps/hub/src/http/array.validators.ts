import { ValidateBy, type ValidationOptions } from 'class-validator';

const SHOWN = 10;

/** `name[3] repeats name[0]; …` for each element equal to an earlier one, or undefined when none is. */
export function repeatsProblem(name: string, values: readonly unknown[]): string | undefined {
  const first = new Map<unknown, number>();
  const repeats: string[] = [];
  values.forEach((value, index) => {
    const earlier = first.get(value);
    if (earlier === undefined) first.set(value, index);
    else repeats.push(`${name}[${index}] repeats ${name}[${earlier}]`);
  });
  if (repeats.length === 0) return undefined;
  const more = repeats.length > SHOWN ? `, and ${repeats.length - SHOWN} more` : '';
  return `must list each value once: ${repeats.slice(0, SHOWN).join(', ')}${more}; remove the repeats`;
}

/** An array whose elements are all different; the message names the repeated positions. */
export function IsListedOnce(options?: ValidationOptions): PropertyDecorator {
  return ValidateBy(
    {
      name: 'isListedOnce',
      validator: {
        validate: (value: unknown) => !Array.isArray(value) || repeatsProblem('', value) === undefined,
        defaultMessage: (args) => (Array.isArray(args?.value) ? (repeatsProblem(args.property, args.value) ?? 'is not valid') : 'must be an array'),
      },
    },
    options,
  );
}
