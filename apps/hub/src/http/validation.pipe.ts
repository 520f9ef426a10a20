import { Injectable, type ArgumentMetadata, type PipeTransform } from '@nestjs/common';
import { plainToInstance } from 'class-transformer';
import { getMetadataStorage, validateSync, type ValidationError } from 'class-validator';
import { RequestValidationError, type FieldError } from './hub-problem.js';

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
    const errors = validateSync(instance, { whitelist: true, forbidNonWhitelisted: true, forbidUnknownValues: true, validationError: { target: false, value: false } });
    if (errors.length > 0) throw new RequestValidationError(flatten(errors, ''));
    return instance;
  }
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
