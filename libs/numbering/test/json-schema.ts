import { readFileSync } from 'node:fs';
// ajv 8 arrives with Fastify (@fastify/ajv-compiler); it is used here only to check our schema files.
import { Ajv2020 } from 'ajv/dist/2020.js';

export const repoFile = (path: string): URL => new URL(`../../../${path}`, import.meta.url);

export function readJson(path: string): unknown {
  return JSON.parse(readFileSync(repoFile(path), 'utf8')) as unknown;
}

/** A strict draft 2020-12 validator for one schema file of the repository. */
export function schemaValidator(path: string): (value: unknown) => { readonly valid: boolean; readonly errors: string } {
  const ajv = new Ajv2020({ strict: true, allErrors: true });
  // RFC 3339 date-time, as `format` asserts in our schemas (ajv-formats would be the full implementation).
  ajv.addFormat('date-time', /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/);
  const validate = ajv.compile(readJson(path) as object);
  return (value) => {
    const valid = validate(value);
    return { valid, errors: ajv.errorsText(validate.errors) };
  };
}
