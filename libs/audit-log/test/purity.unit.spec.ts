import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

// The audit core MUST stay pure: replaying a log must compute the same bytes anywhere, any time.
const SRC = join(import.meta.dirname, '..', 'src');
const sources = readdirSync(SRC)
  .filter((f) => f.endsWith('.ts'))
  .map((f) => ({ file: f, text: readFileSync(join(SRC, f), 'utf8') }));

describe('libs/audit-log purity', () => {
  it('imports only node:crypto and its own files', () => {
    const imports = sources.flatMap(({ file, text }) =>
      [...text.matchAll(/(?:import|export)[^'";]*?from\s+'([^']+)'/g)].map((m) => `${file}: ${m[1] ?? ''}`),
    );
    expect(imports.length).toBeGreaterThan(10);
    expect(imports.filter((i) => !/: (?:node:crypto|\.\/[a-z-]+\.js)$/.test(i))).toEqual([]);
  });

  it('reads no clock, no environment and no randomness (key generation aside)', () => {
    const forbidden = /Date\.now|new Date\b|performance\.now|process\.hrtime|process\.env|Math\.random|randomBytes|randomUUID/;
    expect(sources.filter(({ text }) => forbidden.test(text)).map(({ file }) => file)).toEqual([]);
    // generateKeyPairSync is the documented exception, used once, in generateSigningKey
    expect(sources.flatMap(({ file, text }) => (text.match(/generateKeyPairSync\(/g) ?? []).map(() => file))).toEqual(['note.ts']);
  });
});
