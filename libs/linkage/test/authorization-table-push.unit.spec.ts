import { describe, expect, test } from 'vitest';
import { LinkageError, authorizePush, compileAuthorizationPolicy, parseAuthorizationTable, pushWithdrawn, type AuthorizationRequest } from '#linkage';
import { readJson, schemaValidator } from '../../../test/support/json-schema.js';
import { T0, TABLE_SCHEMA, rawTable } from './fixtures.js';

/** Format 2 of the authorization table: rows' `push` (docs/subscriptions.md). */

const V2_FILE = 'schemas/authorization/authorization-table.v2.json';
const rawV2 = (): { version: number; effectiveFrom: string; rows: Record<string, unknown>[] } & Record<string, unknown> => readJson(V2_FILE) as never;
const problemsOf = (json: unknown): string[] => {
  try {
    parseAuthorizationTable(json);
    return [];
  } catch (error) {
    expect(error).toBeInstanceOf(LinkageError);
    return ((error as LinkageError).details as { problems: string[] }).problems;
  }
};
const withPush = (push: unknown) => {
  const t = rawV2();
  const i = t.rows.findIndex((r) => (r['procedure'] as { code: string }).code === 'pension-award-claim' && r['providerKind'] === 'municipality');
  t.rows[i] = { ...t.rows[i], push };
  return t;
};

describe('authorization table format 2: push', () => {
  test('version 2 parses, conforms to the schema, takes effect after version 1, and is version 1 plus push on three pension rows', () => {
    const v1 = rawTable() as { effectiveFrom: string; rows: Record<string, unknown>[] };
    const v2 = rawV2();
    expect(schemaValidator(TABLE_SCHEMA)(v2).errors).toBe('No errors');
    expect(schemaValidator(TABLE_SCHEMA)(v1).errors).toBe('No errors');
    expect(v2.version).toBe(2);
    expect(Date.parse(v2.effectiveFrom)).toBeGreaterThan(Date.parse(v1.effectiveFrom));
    const table = parseAuthorizationTable(v2);
    const pushed = table.rows.filter((r) => r.push !== undefined).map((r) => [r.requesterKind, r.procedure.code, r.providerKind, r.push]);
    expect(pushed).toEqual([
      ['pension-service', 'pension-award-claim', 'municipality', ['resident-record', 'local-tax']],
      ['pension-service', 'pensioner-notification-review', 'municipality', ['resident-record', 'local-tax']],
      ['pension-service', 'pre-twenty-disability-pension-income-check', 'municipality', ['local-tax']],
    ]);
    expect(v2.rows.map(({ push: _push, ...row }) => row)).toEqual(v1.rows);
    expect(parseAuthorizationTable(v1).rows.every((r) => r.push === undefined)).toBe(true);
  });

  test.each([
    ['an item outside the row', ['livelihood-protection'], /not one of the row's items/],
    ['an item twice', ['local-tax', 'local-tax'], /listed twice in push/],
    ['not a list', 'local-tax', /push must be a list/],
    ['an ill-formed code', ['Local Tax'], /kebab-case item code/],
  ])('push with %s is refused by the parser, naming the row', (_what, push, problem) => {
    const problems = problemsOf(withPush(push));
    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatch(/^rows\[\d+\]\.push/);
    expect(problems[0]).toMatch(problem);
  });

  test('the schema refuses an ill-formed push code and a repeated one', () => {
    const validate = schemaValidator(TABLE_SCHEMA);
    expect(validate(withPush(['Local Tax'])).valid).toBe(false);
    expect(validate(withPush(['local-tax', 'local-tax'])).valid).toBe(false);
  });

  const policy = compileAuthorizationPolicy(parseAuthorizationTable(rawV2()));
  const request = (r: Partial<AuthorizationRequest> = {}): AuthorizationRequest => ({ requesterKind: 'pension-service', procedureCode: 'pension-award-claim', providerKind: 'municipality', itemCodes: ['local-tax'], at: T0, ...r });

  test('authorizePush: allowed for pushed items, PUSH_NOT_AUTHORIZED for items the row only lets query, a query\'s reason for the rest', () => {
    expect(authorizePush(policy, request())).toMatchObject({ allowed: true, tableVersion: 2 });
    expect(authorizePush(policy, request({ procedureCode: 'pre-twenty-disability-pension-income-check' }))).toMatchObject({ allowed: true });
    expect(authorizePush(policy, request({ procedureCode: 'national-pension-premium-exemption', itemCodes: ['resident-record'] }))).toMatchObject({ allowed: false, reason: 'PUSH_NOT_AUTHORIZED', notPushableItems: ['resident-record'], pushableItems: [] });
    expect(authorizePush(policy, request({ providerKind: 'hello-work', itemCodes: ['employment-insurance'] }))).toMatchObject({ allowed: false, reason: 'PUSH_NOT_AUTHORIZED' });
    expect(authorizePush(policy, request({ itemCodes: ['pension-benefit'] }))).toMatchObject({ allowed: false, reason: 'ITEM_NOT_ALLOWED' });
    expect(authorizePush(policy, request({ requesterKind: 'municipality' }))).toMatchObject({ allowed: false, reason: 'REQUESTER_KIND_NOT_ALLOWED' });
    expect(authorizePush(undefined, request())).toMatchObject({ allowed: false, reason: 'TABLE_VERSION_NOT_IN_FORCE' });
    expect(() => authorizePush(policy, request({ itemCodes: [] }))).toThrow(LinkageError);
  });

  test('pushWithdrawn: the items a version no longer allows to push for a row (all of them with no version, or no row)', () => {
    const row = { requesterKind: 'pension-service' as const, procedureCode: 'pension-award-claim', providerKind: 'municipality' as const };
    expect(pushWithdrawn(policy, { ...row, itemCodes: ['local-tax', 'resident-record'] })).toEqual([]);
    expect(pushWithdrawn(policy, { ...row, procedureCode: 'national-pension-premium-exemption', itemCodes: ['local-tax'] })).toEqual(['local-tax']);
    expect(pushWithdrawn(policy, { ...row, procedureCode: 'gone', itemCodes: ['local-tax'] })).toEqual(['local-tax']);
    expect(pushWithdrawn(undefined, { ...row, itemCodes: ['local-tax'] })).toEqual(['local-tax']);
    const v3 = compileAuthorizationPolicy(parseAuthorizationTable(withPush(['local-tax'])));
    expect(pushWithdrawn(v3, { ...row, itemCodes: ['local-tax', 'resident-record'] })).toEqual(['resident-record']);
  });
});
