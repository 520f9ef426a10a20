import { Injectable, type ArgumentMetadata, type PipeTransform } from '@nestjs/common';
import { plainToInstance } from 'class-transformer';
import { getMetadataStorage, validateSync, type ValidationError } from 'class-validator';
import { HubProblem, RequestValidationError, type FieldError } from './hub-problem.js';
import { CHECK_DIGIT_CONSTRAINTS } from './identifier.validators.js';

/**
 * Validates bodies, query strings and path parameters bound to a DTO class, and turns every failure into
 * one 400 VALIDATION_FAILED listing each wrong field. Unknown fields are refused, not silently dropped.
 */
@Injectable()
export class DtoValidationPipe implements PipeTransform {
  transform(value: unknown, metadata: ArgumentMetadata): unknown {
    const { metatype, type } = metadata;
    if (type === 'custom' || !metatype || !isDto(metatype)) return value;
    if (typeof value !== 'object' || value === null || Array.isArray(value)) {
      const what = type === 'body' ? 'the request body' : `the ${type} parameters`;
      throw new RequestValidationError([{ field: type === 'body' ? '(body)' : `(${type})`, message: `${what} must be a JSON object` }]);
    }
    const instance = plainToInstance(metatype, value) as object;
    const errors = validateSync(instance, VALIDATION_OPTIONS);
    if (errors.length > 0) throw validationFailure(errors);
    return instance;
  }
}

/** The DTO rules as the HTTP and gRPC edges apply them: unknown fields refused. The values stay out of every message. */
export const VALIDATION_OPTIONS = { whitelist: true, forbidNonWhitelisted: true, forbidUnknownValues: true, validationError: { target: false, value: true } } as const;

/**
 * The problem for failed validations: 422 CHECK_DIGIT_MISMATCH when every wrong field is an identifier
 * of the right form whose check digit is wrong (with `expected` and `actual` when there is one), else
 * 400 VALIDATION_FAILED listing every wrong field. `name` renames fields (gRPC: as the .proto spells them).
 */
export function validationFailure(errors: readonly ValidationError[], name: (field: string) => string = (field) => field): HubProblem {
  const fields = flatten(errors, '').map((e) => ({ field: name(e.field), message: e.message }));
  const mismatches = checkDigitMismatches(errors, '');
  const all = fields.length > 0 && flatten(errors, '').every((e) => mismatches.has(e.field));
  if (!all) return new RequestValidationError(fields);
  const only = mismatches.size === 1 ? [...mismatches.values()][0]! : undefined;
  const detail = fields.length === 1 ? `${fields[0]!.field}: ${fields[0]!.message}` : `${fields.length} fields have a wrong check digit; see errors`;
  return new HubProblem('CHECK_DIGIT_MISMATCH', detail, { ...(only === undefined ? {} : { expected: only.expected, actual: only.actual }), errors: fields });
}

/** Fields (dotted paths) whose only failure is a wrong check digit, with the digits. */
function checkDigitMismatches(errors: readonly ValidationError[], prefix: string): Map<string, { expected: number; actual: number }> {
  const out = new Map<string, { expected: number; actual: number }>();
  for (const e of errors) {
    const field = prefix ? `${prefix}.${e.property}` : e.property;
    const constraints = Object.keys(e.constraints ?? {});
    const check = constraints.length === 1 ? CHECK_DIGIT_CONSTRAINTS[constraints[0]!] : undefined;
    if (check !== undefined && typeof e.value === 'string') {
      const result = check(e.value);
      if (!result.ok && result.code === 'CHECK_DIGIT_MISMATCH') out.set(field, { expected: result.expected!, actual: result.actual! });
    }
    if (e.children && e.children.length > 0) for (const [k, v] of checkDigitMismatches(e.children, field)) out.set(k, v);
  }
  return out;
}

function isDto(metatype: abstract new (...args: never[]) => unknown): boolean {
  return getMetadataStorage().getTargetValidationMetadatas(metatype as new () => unknown, '', true, false).length > 0;
}

/** One entry per failed constraint, with a dotted path for nested fields. */
export function flatten(errors: readonly ValidationError[], prefix: string): FieldError[] {
  const out: FieldError[] = [];
  for (const e of errors) {
    const field = prefix ? `${prefix}.${e.property}` : e.property;
    // Two constraints with the same message (e.g. IsInt and Min) are reported once.
    const messages = new Set(Object.values(e.constraints ?? {}).map((m) => (m.startsWith(`property ${e.property} should not exist`) ? 'is not a known field' : m)));
    for (const message of messages) out.push({ field, message });
    if (e.children && e.children.length > 0) out.push(...flatten(e.children, field));
  }
  return out;
}
