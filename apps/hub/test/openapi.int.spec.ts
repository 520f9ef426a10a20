import { writeFileSync } from 'node:fs';
import { Validator } from '@seriousme/openapi-schema-validator';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestHub, type TestHub } from './support/test-hub.js';

type Operation = {
  operationId?: string;
  security?: Record<string, string[]>[];
  responses: Record<string, { description?: string; content?: Record<string, { schema?: unknown }> }>;
};
type Document = {
  openapi: string;
  paths: Record<string, Record<string, Operation>>;
  components?: { securitySchemes?: Record<string, { type: string; scheme?: string }>; schemas?: Record<string, unknown> };
};

const METHODS = ['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace'];

describe('the OpenAPI document the hub serves', () => {
  let hub: TestHub;
  let doc: Document;
  beforeAll(async () => {
    hub = await startTestHub();
    doc = (await hub.get('/docs/json')).json<Document>();
    if (process.env['OPENAPI_DUMP']) writeFileSync(process.env['OPENAPI_DUMP'], JSON.stringify(doc, null, 2));
  });
  afterAll(async () => {
    await hub.dispose();
  });

  it('is valid against the OpenAPI schema of its version (no error at all)', async () => {
    const validator = new Validator();
    const result = await validator.validate(structuredClone(doc));
    expect(result.errors ?? []).toEqual([]);
    expect(result.valid).toBe(true);
  });

  it('defines the bearer scheme that operations name', () => {
    expect(doc.components?.securitySchemes?.['bearer']).toMatchObject({ type: 'http', scheme: 'bearer' });
    const named = new Set<string>();
    for (const [, op] of operations(doc)) for (const requirement of op.security ?? []) for (const name of Object.keys(requirement)) named.add(name);
    expect([...named]).toEqual(['bearer']);
  });

  it('documents the success answer of every operation: its status and, unless 204, the schema of each media type', () => {
    const missing: string[] = [];
    for (const [where, op] of operations(doc)) {
      const success = Object.entries(op.responses).filter(([status]) => /^2\d\d$/.test(status));
      if (success.length === 0) missing.push(`${where}: no 2xx response`);
      for (const [status, response] of success) {
        if (status === '204') {
          if (response.content !== undefined) missing.push(`${where} ${status}: a body on 204`);
          continue;
        }
        const media = Object.entries(response.content ?? {});
        if (media.length === 0) missing.push(`${where} ${status}: no content`);
        for (const [type, m] of media) if (m.schema === undefined) missing.push(`${where} ${status} ${type}: no schema`);
      }
    }
    expect(missing).toEqual([]);
  });

  it('documents the success status each operation really answers with, CSV as text/csv', () => {
    const success = (path: string, method: string) => Object.keys(doc.paths[path]![method]!.responses).filter((s) => s.startsWith('2'));
    expect(success('/v1/individual-numbers', 'post')).toEqual(['201']);
    expect(success('/v1/citizens/me/session', 'delete')).toEqual(['204']);
    expect(success('/v1/audit/self-checks', 'post')).toEqual(['202']);
    expect(Object.keys(doc.paths['/v1/citizens/me/provision-records.csv']!['get']!.responses['200']!.content!)).toEqual(['text/csv']);
    expect(Object.keys(doc.paths['/v1/corporate-numbers.csv']!['get']!.responses['200']!.content!)).toEqual(['text/csv']);
    expect(Object.keys(doc.paths['/v1/audit/checkpoint']!['get']!.responses['200']!.content!).sort()).toEqual(['application/json', 'text/plain']);
  });

  it('serves Swagger UI at /docs and at /docs/ (a working page: its scripts and styles load)', async () => {
    for (const url of ['/docs', '/docs/']) {
      let res = await hub.get(url);
      let at = url;
      if (res.statusCode >= 300 && res.statusCode < 400) {
        at = new URL(String(res.headers['location']), `http://hub${url}`).pathname;
        res = await hub.get(at);
      }
      expect(res.statusCode, url).toBe(200);
      expect(res.headers['content-type']).toMatch(/text\/html/);
      const assets = [...res.body.matchAll(/(?:src|href)="([^"]+\.(?:js|css))"/g)].map((m) => m[1]!);
      expect(assets.length, url).toBeGreaterThan(0);
      for (const asset of assets) {
        const resolved = new URL(asset, `http://hub${at}`).pathname;
        const loaded = await hub.get(resolved);
        expect(loaded.statusCode, `${url} → ${resolved}`).toBe(200);
      }
      const init = await hub.get(new URL('swagger-ui-init.js', `http://hub${at.endsWith('/') ? at : `${at}/`}`).pathname);
      if (init.statusCode === 200) expect(init.body).toContain('Linkage ledger hub');
    }
  });
});

function* operations(doc: Document): Generator<[string, Operation]> {
  for (const [path, item] of Object.entries(doc.paths)) {
    for (const [method, op] of Object.entries(item)) if (METHODS.includes(method)) yield [`${method.toUpperCase()} ${path}`, op];
  }
}
