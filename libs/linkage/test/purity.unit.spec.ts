import { readFileSync, readdirSync } from 'node:fs';
import { describe, expect, test } from 'vitest';

// libs/linkage is pure (README, Layout): no Nest, no drivers, no clock, no randomness, no crypto, no I/O.
const srcDir = new URL('../src/', import.meta.url);
const sources = readdirSync(srcDir)
  .filter((f) => f.endsWith('.ts'))
  .map((f) => [f, readFileSync(new URL(f, srcDir), 'utf8')] as const);

describe('libs/linkage stays pure', () => {
  test('there are sources to check', () => {
    expect(sources.map(([f]) => f)).toEqual(expect.arrayContaining(['query.decider.ts', 'agency-code.decider.ts', 'agency-registry.decider.ts', 'authorization-policy.ts']));
  });

  test.each(sources)('%s imports only sibling modules, the pure text rules, and the ledger for types only', (_file, text) => {
    const imports = [...text.matchAll(/^\s*(import|export)\s+(type\s+)?[^'"]*?from\s+'([^']+)'/gm)].map((m) => ({ typeOnly: m[2] !== undefined, from: m[3] ?? '' }));
    for (const i of imports) {
      const allowed = /^\.\/[a-z0-9.-]+\.js$/.test(i.from) || i.from === '#text' || (i.typeOnly && i.from === '#ledger');
      expect(allowed, `import from ${i.from}`).toBe(true);
    }
    expect(text).not.toMatch(/\bimport\s*\(/);
    expect(text).not.toMatch(/\brequire\s*\(/);
  });

  test.each(sources)('%s reads no clock, random source or environment', (_file, text) => {
    expect(text).not.toMatch(/Date\.now|new Date\b|Math\.random|performance\.now|process\.|crypto|setTimeout|setInterval/);
  });
});
