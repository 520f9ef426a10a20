import { readFileSync, readdirSync } from 'node:fs';
import { describe, expect, test } from 'vitest';

// libs/text is pure: the numbering and linkage deciders import it, so it imports nothing at all.
const srcDir = new URL('../src/', import.meta.url);
const sources = readdirSync(srcDir)
  .filter((f) => f.endsWith('.ts'))
  .map((f) => [f, readFileSync(new URL(f, srcDir), 'utf8')] as const);

describe('libs/text stays pure', () => {
  test('there are sources to check', () => {
    expect(sources.map(([f]) => f)).toContain('display-text.ts');
  });

  test.each(sources)('%s imports only sibling modules', (_file, text) => {
    const imports = [...text.matchAll(/^\s*(import|export)\s+(type\s+)?[^'"]*?from\s+'([^']+)'/gm)].map((m) => m[3] ?? '');
    for (const from of imports) expect(/^\.\/[a-z0-9.-]+\.js$/.test(from), `import from ${from}`).toBe(true);
    expect(text).not.toMatch(/\bimport\s*\(/);
    expect(text).not.toMatch(/\brequire\s*\(/);
  });

  test.each(sources)('%s reads no clock, random source or environment', (_file, text) => {
    expect(text).not.toMatch(/Date\.now|new Date\b|Math\.random|performance\.now|process\.|crypto|setTimeout|setInterval/);
  });
});
