import { readFileSync } from 'node:fs';
import { Ajv2020 } from 'ajv/dist/2020.js';

export const repoFile = (path: string): URL => new URL(`../../${path}`, import.meta.url);

export function readJson(path: string): unknown {
  return JSON.parse(readFileSync(repoFile(path), 'utf8')) as unknown;
}

/**
 * A strict draft 2020-12 validator for one schema file of the repository. `references` are further
 * schema files it may `$ref` by their `$id` (the event that embeds the authorization table does).
 */
export function schemaValidator(path: string, references: readonly string[] = []): (value: unknown) => { readonly valid: boolean; readonly errors: string } {
  const ajv = new Ajv2020({ strict: true, allErrors: true });
  ajv.addFormat('date-time', /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/);
  for (const r of references) ajv.addSchema(readJson(r) as object);
  const validate = ajv.compile(readJson(path) as object);
  return (value) => {
    const valid = validate(value);
    return { valid, errors: ajv.errorsText(validate.errors) };
  };
}
