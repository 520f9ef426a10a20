import { Transform } from 'class-transformer';
import { ValidateBy, type ValidationOptions } from 'class-validator';

/**
 * Composite decorators for query-string parameters (paging and dates). Query strings are text: a value
 * is judged as the caller sent it, and a parameter given twice never gets here (query-parameters.ts).
 */

const RFC3339 = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.\d{1,9})?(?:Z|([+-])(\d{2}):(\d{2}))$/i;

/** Why `text` is not an RFC 3339 instant with a real date and time, or undefined. */
export function instantProblem(text: string): string | undefined {
  const m = RFC3339.exec(text);
  if (!m) return 'must be an RFC 3339 date and time with an offset, e.g. 2026-04-01T09:00:00+09:00 or 2026-04-01T00:00:00Z';
  const [year, month, day, hour, minute, second] = m.slice(1, 7).map(Number) as [number, number, number, number, number, number];
  if (month < 1 || month > 12) return `has month ${m[2]}; months are 01 to 12`;
  const days = new Date(Date.UTC(year, month, 0)).getUTCDate();
  if (day < 1 || day > days) return `has day ${m[3]}; ${m[1]}-${m[2]} has days 01 to ${days}`;
  if (hour > 23 || minute > 59 || second > 59) return `has time ${m[4]}:${m[5]}:${m[6]}; hours are 00 to 23, minutes and seconds 00 to 59`;
  if (m[7] !== undefined && (Number(m[8]) > 23 || Number(m[9]) > 59)) return `has offset ${m[7]}${m[8]}:${m[9]}; offsets are at most ±23:59`;
  return undefined;
}

/** An RFC 3339 instant (date, time and offset) that exists on the calendar. */
export function IsInstant(options?: ValidationOptions): PropertyDecorator {
  return ValidateBy(
    {
      name: 'isInstant',
      validator: {
        validate: (value: unknown) => typeof value === 'string' && instantProblem(value) === undefined,
        defaultMessage: (args) => (typeof args?.value === 'string' ? (instantProblem(args.value) ?? 'is not valid') : 'must be an RFC 3339 date and time'),
      },
    },
    options,
  );
}

/** Only plain decimal digits become a number; anything else stays text and fails the integer check. */
export const ToInteger = (): PropertyDecorator => Transform(({ value }: { value: unknown }) => (typeof value === 'string' && /^\d{1,15}$/.test(value) ? Number(value) : value));

/** An integer from `min` to `max` in a query string, with one message for every way of missing it. */
export function IsIntegerFrom(min: number, max: number, options?: ValidationOptions): PropertyDecorator {
  const message = `must be an integer from ${min} to ${max}`;
  return ValidateBy(
    {
      name: 'isIntegerFrom',
      validator: {
        validate: (value: unknown) => typeof value === 'number' && Number.isSafeInteger(value) && value >= min && value <= max,
        defaultMessage: () => message,
      },
    },
    options,
  );
}
