import { readFileSync } from 'node:fs';
import { Ajv2020, type ErrorObject, type ValidateFunction } from 'ajv/dist/2020.js';
import { unknownTableCodes } from '#linkage';
import { defaultSchemaFile } from '../../config/hub-config.js';
import { HubProblem } from '../../http/hub-problem.js';

/** The JSON Schema of the authorization table's format (formats 1 and 2: `push` is format 2's addition). */
export const AUTHORIZATION_TABLE_SCHEMA_FILE = 'authorization/authorization-table.schema.json';

const RFC3339 = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/;
/** A schema error that only says an agency kind is not one of the enum's: reported as an unknown code. */
const KIND_PATH = /^\/rows\/\d+\/(requesterKind|providerKind)$/;
const MAX_PROBLEMS = 50;

/**
 * Checks a table sent to the API before the decider sees it, so that each kind of fault is its own
 * problem (docs/authorization-table-rollout.md): AUTHORIZATION_TABLE_SCHEMA_VIOLATION when it does not
 * conform to schemas/authorization/authorization-table.schema.json, then AUTHORIZATION_TABLE_UNKNOWN_CODE
 * when it names an agency kind the hub does not know, or a row item its catalogue does not define (or a
 * push item outside its row). Each lists its problems in `problems` (at most 50). What JSON Schema cannot
 * express (one row per key, one name per code) is the decider's INVALID_AUTHORIZATION_TABLE.
 */
export class AuthorizationTableSchema {
  readonly #validate: ValidateFunction;

  constructor(file: string = defaultSchemaFile(AUTHORIZATION_TABLE_SCHEMA_FILE)) {
    const ajv = new Ajv2020({ strict: true, allErrors: true });
    ajv.addFormat('date-time', { type: 'string', validate: (s: string) => RFC3339.test(s) && !Number.isNaN(Date.parse(s)) });
    this.#validate = ajv.compile(JSON.parse(readFileSync(file, 'utf8')) as object);
  }

  check(table: unknown): void {
    const errors: readonly ErrorObject[] = this.#validate(table) ? [] : (this.#validate.errors ?? []);
    const kinds = errors.filter((e) => e.keyword === 'enum' && KIND_PATH.test(e.instancePath));
    const shape = errors.filter((e) => !kinds.includes(e) && !(e.keyword === 'if' || e.keyword === 'anyOf' || e.keyword === 'oneOf'));
    if (shape.length > 0) {
      const problems = shape.slice(0, MAX_PROBLEMS).map((e) => `${e.instancePath === '' ? '(table)' : e.instancePath}: ${e.message ?? 'is not valid'}${e.keyword === 'additionalProperties' ? ` ("${String((e.params as { additionalProperty?: unknown }).additionalProperty)}")` : ''}`);
      throw new HubProblem('AUTHORIZATION_TABLE_SCHEMA_VIOLATION', `the table does not conform to schemas/${AUTHORIZATION_TABLE_SCHEMA_FILE} (${shape.length} problem(s)): ${problems.slice(0, 5).join('; ')}`, { problems });
    }
    const unknown = unknownTableCodes(table);
    if (unknown.length > 0) {
      const problems = unknown.slice(0, MAX_PROBLEMS);
      throw new HubProblem('AUTHORIZATION_TABLE_UNKNOWN_CODE', `the table names ${unknown.length} code(s) that are not defined: ${problems.slice(0, 5).join('; ')}`, { problems });
    }
  }
}
