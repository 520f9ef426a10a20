import { ValidateBy, type ValidationOptions } from 'class-validator';
import {
  validateCorporateNumber,
  validateLocalGovernmentCode,
  validateMyNumber,
  validateResidentRecordCode,
  type Validation,
} from '#numbering';

/**
 * Composite class-validator decorators for the identifiers of the numbering system. Each message says
 * exactly what is wrong (length, a non-digit's position, the expected check digit) and never echoes a
 * personal identifier back (it would end up in logs and proxies).
 */

type Check = (value: string) => string | undefined;

/**
 * The constraints whose identifier carries a check digit, by class-validator constraint name: a field
 * that fails only its check digit is answered 422 CHECK_DIGIT_MISMATCH (validation.pipe.ts), not 400.
 */
export const CHECK_DIGIT_CONSTRAINTS: Readonly<Record<string, (value: string) => Validation<unknown>>> = {
  isMyNumber: validateMyNumber,
  isCorporateNumber: validateCorporateNumber,
  isLocalGovernmentCode: validateLocalGovernmentCode,
};

function identifier(name: string, check: Check, options?: ValidationOptions): PropertyDecorator {
  return ValidateBy(
    {
      name,
      validator: {
        validate: (value: unknown) => typeof value === 'string' && check(value) === undefined,
        defaultMessage: (args) => (typeof args?.value === 'string' ? (check(args.value) ?? 'is not valid') : 'must be a string of ASCII digits'),
      },
    },
    options,
  );
}

/** The message of a failed validation, with the input left out. */
function withoutInput(what: string, result: Validation<unknown>): string | undefined {
  if (result.ok) return undefined;
  if (result.code === 'CHECK_DIGIT_MISMATCH') return `${what} check digit is ${result.actual}, expected ${result.expected}`;
  return result.message;
}

/** 個人番号: 12 ASCII digits with a valid mod-11 check digit. */
export function IsMyNumber(options?: ValidationOptions): PropertyDecorator {
  return identifier('isMyNumber', (v) => withoutInput('individual number', validateMyNumber(v)), options);
}

/** 法人番号: 13 ASCII digits whose FIRST digit is a valid mod-9 check digit. */
export function IsCorporateNumber(options?: ValidationOptions): PropertyDecorator {
  return identifier('isCorporateNumber', (v) => withoutInput('corporate number (first digit)', validateCorporateNumber(v)), options);
}

/** 全国地方公共団体コード: 6 ASCII digits with a valid mod-11 check digit (whether it is in force is checked later). */
export function IsLocalGovernmentCode(options?: ValidationOptions): PropertyDecorator {
  return identifier('isLocalGovernmentCode', (v) => withoutInput('local government code', validateLocalGovernmentCode(v)), options);
}

/** 住民票コード: 11 ASCII digits (its check-digit rule is not public, so only the form is checked). */
export function IsResidentRecordCode(options?: ValidationOptions): PropertyDecorator {
  return identifier('isResidentRecordCode', (v) => withoutInput('resident record code', validateResidentRecordCode(v)), options);
}

/** The 12-digit base of a corporate number (e.g. the commercial registry number), without the check digit. */
export function IsCorporateNumberBase(options?: ValidationOptions): PropertyDecorator {
  return identifier(
    'isCorporateNumberBase',
    (v) => {
      return /^[0-9]{12}$/.test(v) ? undefined : 'must be 12 ASCII digits (0-9): the corporate number without its leading check digit';
    },
    options,
  );
}

/** A path segment that must have the form of a corporate number; its check digit is judged by the handler (422). */
export function HasCorporateNumberForm(options?: ValidationOptions): PropertyDecorator {
  return identifier('hasCorporateNumberForm', (v) => (/^[0-9]{13}$/.test(v) ? undefined : 'must be 13 ASCII digits (0-9)'), options);
}
