import { Injectable, type ArgumentMetadata, type PipeTransform } from '@nestjs/common';
import { plainToInstance } from 'class-transformer';
import { getMetadataStorage, validateSync, type ValidationError } from 'class-validator';
import { AgencyProblem } from './agency-problem.js';

/** Bodies and query strings bound to a DTO class: one 400 VALIDATION_FAILED listing each wrong field; unknown fields refused. */
@Injectable()
export class DtoValidationPipe implements PipeTransform {
  transform(value: unknown, metadata: ArgumentMetadata): unknown {
    const { metatype, type } = metadata;
    if (type === 'custom' || !metatype || getMetadataStorage().getTargetValidationMetadatas(metatype, '', true, false).length === 0) return value;
    if (typeof value !== 'object' || value === null || Array.isArray(value)) {
      throw new AgencyProblem('VALIDATION_FAILED', `the ${type === 'body' ? 'request body' : `${type} parameters`} must be a JSON object`);
    }
    const instance = plainToInstance(metatype, value) as object;
    const errors = flatten(validateSync(instance, { whitelist: true, forbidNonWhitelisted: true, forbidUnknownValues: true, validationError: { target: false, value: false } }), '');
    if (errors.length > 0) {
      throw new AgencyProblem('VALIDATION_FAILED', errors.length === 1 ? `${errors[0]!.field}: ${errors[0]!.message}` : `${errors.length} fields are not valid; see errors`, { errors });
    }
    return instance;
  }
}

function flatten(errors: readonly ValidationError[], prefix: string): { field: string; message: string }[] {
  const out: { field: string; message: string }[] = [];
  for (const e of errors) {
    const field = prefix ? `${prefix}.${e.property}` : e.property;
    for (const m of new Set(Object.values(e.constraints ?? {}))) out.push({ field, message: m.startsWith(`property ${e.property} should not exist`) ? 'is not a known field' : m });
    if (e.children?.length) out.push(...flatten(e.children, field));
  }
  return out;
}
