import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { inputsDigest } from '../src/build-if-stale.js';

describe('npm start builds only when an input changed', () => {
  let dir: string;
  const write = (path: string, text: string) => {
    mkdirSync(join(dir, path, '..'), { recursive: true });
    writeFileSync(join(dir, path), text);
  };

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'build-inputs-'));
    write('package.json', '{}');
    write('tsconfig.json', '{}');
    write('apps/hub/src/main.ts', 'export {};');
    write('libs/ledger/src/index.ts', 'export const a = 1;');
    write('apps/portal/web/src/app.tsx', 'export const b = 2;');
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('keeps the digest when nothing changed', () => {
    expect(inputsDigest(dir)).toBe(inputsDigest(dir));
  });

  it.each([
    ['a library source', 'libs/ledger/src/index.ts', 'export const a = 2;'],
    ['an app source', 'apps/hub/src/main.ts', 'export const x = 0;'],
    ['the portal web app', 'apps/portal/web/src/app.tsx', 'export const b = 3;'],
    ['the lock file', 'package-lock.json', '{"lockfileVersion":3}'],
    ['a new source file', 'apps/hub/src/new.ts', 'export {};'],
  ])('changes the digest when %s changes', (_what, path, text) => {
    const before = inputsDigest(dir);
    write(path, text);
    expect(inputsDigest(dir)).not.toBe(before);
  });

  it('ignores what the build does not read: tests, docs, dist, node_modules', () => {
    const before = inputsDigest(dir);
    write('apps/hub/test/x.int.spec.ts', 'test');
    write('apps/hub/src/y.unit.spec.ts', 'test');
    write('apps/hub/README.md', '# hub');
    write('dist/apps/hub/src/main.js', '');
    write('apps/portal/web/node_modules/p/index.js', '');
    expect(inputsDigest(dir)).toBe(before);
  });

  it('tells a renamed file from an unchanged tree', () => {
    const before = inputsDigest(dir);
    rmSync(join(dir, 'apps/hub/src/main.ts'));
    write('apps/hub/src/main2.ts', 'export {};');
    expect(inputsDigest(dir)).not.toBe(before);
  });
});
