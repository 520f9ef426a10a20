import 'reflect-metadata';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { DynamicModule, Type } from '@nestjs/common';
import { FastifyAdapter, type NestFastifyApplication } from '@nestjs/platform-fastify';
import { Test } from '@nestjs/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { corporateNumberCheckDigit, individualNumberCheckDigit, validateCorporateNumber, validateLocalGovernmentCode, validateMyNumber } from '#numbering';
import { AppModule } from '../src/app.module.js';
import { loadHubConfig } from '../src/config/hub-config.js';
import { openApiDocument } from '../src/http/openapi.js';

/**
 * Every identifier example in the hub's generated OpenAPI document has a valid check digit (a corporate
 * number's is its FIRST digit), and every example of a check-digit mismatch names the digit the rule
 * computes. The document is built from all of the application's controllers, their dependencies mocked.
 */

/** The controllers of a module tree (static @Module metadata and dynamic modules alike). */
function controllersOf(module: Type | DynamicModule, seen = new Set<unknown>()): Type[] {
  const cls = 'module' in module ? module.module : module;
  if (seen.has(module)) return [];
  seen.add(module);
  const dynamic = 'module' in module ? module : undefined;
  const own = [...((Reflect.getMetadata('controllers', cls) as Type[] | undefined) ?? []), ...(dynamic?.controllers ?? [])];
  const imports = [...((Reflect.getMetadata('imports', cls) as (Type | DynamicModule)[] | undefined) ?? []), ...((dynamic?.imports ?? []) as (Type | DynamicModule)[])];
  return [...own, ...imports.filter((i) => i !== undefined && (typeof i === 'function' || 'module' in i)).flatMap((i) => controllersOf(i, seen))];
}

interface Example {
  /** Where in the document: the property or parameter name last seen on the way. */
  readonly name: string;
  readonly path: string;
  readonly value: unknown;
}

/** Every `example` (and each of `examples`) in the document, with the name of what it exemplifies. */
function examplesIn(node: unknown, path = '', name = ''): Example[] {
  if (typeof node !== 'object' || node === null) return [];
  const record = node as Record<string, unknown>;
  const out: Example[] = [];
  const own = typeof record['name'] === 'string' && record['in'] !== undefined ? (record['name'] as string) : name;
  for (const [key, value] of Object.entries(record)) {
    const at = `${path}/${key}`;
    if (key === 'example') out.push({ name: own, path: at, value });
    else if (key === 'examples' && Array.isArray(value)) out.push(...value.map((v, i) => ({ name: own, path: `${at}/${i}`, value: v })));
    else out.push(...examplesIn(value, at, path.endsWith('/properties') ? key : own));
  }
  return out;
}

let doc: unknown;
let dataDir: string;

beforeAll(async () => {
  dataDir = mkdtempSync(join(tmpdir(), 'hub-openapi-'));
  const controllers = controllersOf(AppModule.forRoot(loadHubConfig({ HUB_DATA_DIR: dataDir })));
  const moduleRef = await Test.createTestingModule({ controllers }).useMocker(() => ({})).compile();
  const app = moduleRef.createNestApplication<NestFastifyApplication>(new FastifyAdapter({ logger: false }), { logger: false });
  doc = openApiDocument(app);
  await app.close();
});
afterAll(() => {
  rmSync(dataDir, { recursive: true, force: true });
});

describe('the OpenAPI document\'s identifier examples', () => {
  it('covers every route of the hub', () => {
    const paths = Object.keys((doc as { paths: Record<string, unknown> }).paths);
    expect(paths).toEqual(expect.arrayContaining(['/v1/corporate-numbers/{number}', '/v1/individual-numbers', '/v1/agency-codes', '/v1/events', '/v1/audit/entries']));
    expect(paths.length).toBeGreaterThanOrEqual(27);
  });

  it('every corporate number (13 digits), individual number (12 digits) and municipality code carries a valid check digit', () => {
    const examples = examplesIn(doc);
    const checked: Record<string, string[]> = { corporate: [], individual: [], municipality: [] };
    for (const { name, path, value } of examples) {
      if (typeof value !== 'string') continue;
      for (const [, number] of value.matchAll(/(?<!\d)(\d{13})(?!\d)/g)) {
        // The one deliberately wrong number: the example of a CHECK_DIGIT_MISMATCH problem (checked below).
        if (/\/ProblemDto\//.test(path)) continue;
        expect(validateCorporateNumber(number!), `${path}: ${value}`).toMatchObject({ ok: true });
        checked['corporate']!.push(path);
      }
      if (/^\d{12}$/.test(value)) {
        // A registry number is a corporate number's 12-digit base, before its check digit is prefixed.
        if (name === 'registryNumber') continue;
        expect(validateMyNumber(value), `${path}: ${value}`).toMatchObject({ ok: true });
        checked['individual']!.push(path);
      }
      if (/^\d{6}$/.test(value) && /municipality/i.test(name)) {
        expect(validateLocalGovernmentCode(value), `${path}: ${value}`).toMatchObject({ ok: true });
        checked['municipality']!.push(path);
      }
    }
    expect(checked['corporate']!.length).toBeGreaterThanOrEqual(7);
    expect(checked['individual']!.length).toBeGreaterThanOrEqual(3);
    expect(checked['municipality']!.length).toBeGreaterThanOrEqual(2);
  });

  it('an example of a mismatch names the digit the rule computes, and the problem example\'s expected digit is that digit', () => {
    const examples = examplesIn(doc).filter((e) => typeof e.value === 'string') as (Example & { value: string })[];
    let mismatches = 0;
    for (const { path, value } of examples) {
      const corporate = /corporate number (\d{13}): check digit \(the first digit\) is (\d), expected (\d)/.exec(value);
      if (corporate) {
        expect({ actual: Number(corporate[2]), expected: Number(corporate[3]) }, path).toEqual({ actual: Number(corporate[1]![0]), expected: corporateNumberCheckDigit(corporate[1]!.slice(1)) });
        const problem = (doc as { components: { schemas: Record<string, { properties: Record<string, { example?: unknown }> }> } }).components.schemas['ProblemDto']!.properties;
        expect({ expected: problem['expected']!.example, actual: problem['actual']!.example }).toEqual({ expected: Number(corporate[3]), actual: Number(corporate[2]) });
        mismatches++;
      }
      const individual = /individual number (\d{12}): check digit is (\d), expected (\d)/.exec(value);
      if (individual) {
        expect(Number(individual[3]), path).toBe(individualNumberCheckDigit(individual[1]!.slice(0, 11)));
        mismatches++;
      }
    }
    expect(mismatches).toBeGreaterThanOrEqual(1);
  });
});
