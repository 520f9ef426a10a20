import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';

/**
 * docs/threat-model.md names, for every claim, the tests that pin it:
 *   `apps/hub/test/refusals.int.spec.ts` › “a title” (› “a nested title” …)
 * This test keeps the document from rotting: each named file exists and is a test file of a tier, each
 * title is the literal title of a describe/it/test call in it (nested in the one before it, when several
 * are given), never a skipped or todo one, and every claim (`- **C<n>**`) names at least one test by its
 * title. A test file named without a title (in prose) must exist all the same.
 */

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const DOC = 'docs/threat-model.md';
const TIER = /^(?:apps|libs|test)\/.+\.(?:unit|int|e2e)\.spec\.ts$/;

export interface TestReference {
  readonly line: number;
  readonly path: string;
  readonly titles: readonly string[];
}

export interface DocItem {
  readonly line: number;
  readonly id: string | undefined;
  readonly text: string;
}

const squash = (s: string) => s.replace(/\s+/g, ' ').trim();

/** Every `path.spec.ts` › “title” … in the text, with the line it starts on. */
export function referencesIn(markdown: string): TestReference[] {
  const out: TestReference[] = [];
  const pattern = /`([^`\s]+\.spec\.ts)`((?:\s*›\s*“[^”]+”)*)/g;
  for (const m of markdown.matchAll(pattern)) {
    const line = markdown.slice(0, m.index).split('\n').length;
    const titles = [...(m[2] ?? '').matchAll(/“([^”]+)”/g)].map((t) => squash(t[1]!));
    out.push({ line, path: m[1]!, titles });
  }
  return out;
}

/** List items (`- ` at the start of a line, continued by indented lines), with their bold id if any. */
export function itemsIn(markdown: string): DocItem[] {
  const items: DocItem[] = [];
  let current: { line: number; lines: string[] } | undefined;
  const close = () => {
    if (!current) return;
    const text = current.lines.join('\n');
    items.push({ line: current.line, id: /^- \*\*([A-Z]\d+)\*\*/.exec(text)?.[1], text });
    current = undefined;
  };
  markdown.split('\n').forEach((l, i) => {
    if (l.startsWith('- ')) {
      close();
      current = { line: i + 1, lines: [l] };
    } else if (current && /^\s+\S/.test(l)) current.lines.push(l);
    else close();
  });
  close();
  return items;
}

interface TitleNode {
  readonly title: string | undefined;
  readonly skipped: boolean;
  readonly children: TitleNode[];
}

const CALLS = new Set(['describe', 'it', 'test']);
const SKIPS = new Set(['skip', 'todo', 'fails']);

/** The describe/it/test calls of a test file as a tree of their literal titles (template titles: undefined). */
export function titleTree(source: string, fileName = 'x.spec.ts'): TitleNode {
  const sf = ts.createSourceFile(fileName, source, ts.ScriptTarget.Latest, false);
  const root: TitleNode = { title: undefined, skipped: false, children: [] };
  const calleeOf = (e: ts.Expression): { base: string | undefined; skipped: boolean } => {
    let skipped = false;
    for (;;) {
      if (ts.isPropertyAccessExpression(e)) {
        if (SKIPS.has(e.name.text)) skipped = true;
        e = e.expression;
      } else if (ts.isCallExpression(e)) e = e.expression; // it.each(rows)('title', …)
      else break;
    }
    return { base: ts.isIdentifier(e) ? e.text : undefined, skipped };
  };
  const visit = (node: ts.Node, parent: TitleNode): void => {
    if (ts.isCallExpression(node)) {
      const { base, skipped } = calleeOf(node.expression);
      const first = node.arguments[0];
      if (base !== undefined && CALLS.has(base) && first !== undefined) {
        const title = ts.isStringLiteral(first) || ts.isNoSubstitutionTemplateLiteral(first) ? squash(first.text) : undefined;
        const child: TitleNode = { title, skipped: skipped || parent.skipped, children: [] };
        parent.children.push(child);
        for (const arg of node.arguments.slice(1)) visit(arg, child);
        return;
      }
    }
    ts.forEachChild(node, (c) => visit(c, parent));
  };
  visit(sf, root);
  return root;
}

function descendants(node: TitleNode): TitleNode[] {
  return node.children.flatMap((c) => [c, ...descendants(c)]);
}

/** What is wrong with one reference, or undefined when it holds. */
export function problemOf(ref: TestReference, read: (path: string) => string | undefined, trees = new Map<string, TitleNode>()): string | undefined {
  const where = `${DOC}:${ref.line} \`${ref.path}\``;
  if (!TIER.test(ref.path)) return `${where}: not a test file of the unit, int or e2e tier`;
  const source = read(ref.path);
  if (source === undefined) return `${where}: no such file`;
  const tree = trees.get(ref.path) ?? titleTree(source, ref.path);
  trees.set(ref.path, tree);
  let scope: TitleNode[] = [tree];
  for (const title of ref.titles) {
    const found = scope.flatMap(descendants).filter((n) => n.title === title);
    if (found.length === 0) return `${where}: no describe/it/test titled “${title}”${scope.length === 1 && scope[0]!.title === undefined ? '' : ' inside the title before it'}`;
    if (found.every((n) => n.skipped)) return `${where}: “${title}” is skipped or todo`;
    scope = found.filter((n) => !n.skipped);
  }
  return undefined;
}

/** Every problem of the document: broken references, claims without a test, ids twice or unknown. */
export function problemsOf(markdown: string, read: (path: string) => string | undefined): string[] {
  const problems: string[] = [];
  const trees = new Map<string, TitleNode>();
  for (const ref of referencesIn(markdown)) {
    const p = problemOf(ref, read, trees);
    if (p) problems.push(p);
  }
  const items = itemsIn(markdown);
  const ids = new Map<string, number>();
  for (const item of items) {
    if (item.id === undefined) continue;
    if (ids.has(item.id)) problems.push(`${DOC}:${item.line}: ${item.id} is defined twice (first at line ${ids.get(item.id)})`);
    ids.set(item.id, item.line);
    if (item.id.startsWith('C') && !referencesIn(item.text).some((r) => r.titles.length > 0)) problems.push(`${DOC}:${item.line}: claim ${item.id} names no test (\`path\` › “title” expected)`);
  }
  for (const m of markdown.matchAll(/\b([COR]\d+)\b/g)) {
    if (!ids.has(m[1]!)) problems.push(`${DOC}:${markdown.slice(0, m.index).split('\n').length}: ${m[1]} is mentioned but not defined`);
  }
  return [...new Set(problems)];
}

const readFromRepo = (path: string) => {
  const full = join(ROOT, path);
  return existsSync(full) ? readFileSync(full, 'utf8') : undefined;
};

describe('docs/threat-model.md', () => {
  const markdown = readFileSync(join(ROOT, DOC), 'utf8');

  // Parses some seventy test files with the TypeScript parser: seconds on a busy machine.
  it('names only tests that exist, by the titles they have, and a test for every claim', { timeout: 60_000 }, () => {
    expect(problemsOf(markdown, readFromRepo)).toEqual([]);
  });

  it('pins its claims (the document is not empty of them)', () => {
    const claims = itemsIn(markdown).filter((i) => i.id?.startsWith('C'));
    expect(claims.length).toBeGreaterThanOrEqual(40);
    expect(referencesIn(markdown).filter((r) => r.titles.length > 0).length).toBeGreaterThanOrEqual(claims.length);
    // Open items and residual risks are listed too, apart from the claims.
    expect(itemsIn(markdown).filter((i) => i.id?.startsWith('O')).length).toBeGreaterThan(0);
    expect(itemsIn(markdown).filter((i) => i.id?.startsWith('R')).length).toBeGreaterThan(0);
  });
});

describe('the reference check itself', () => {
  const files: Record<string, string> = {
    'apps/x/test/a.int.spec.ts': [
      "describe('outer', () => {",
      "  it('holds the line', () => {});",
      "  it.skip('was skipped', () => {});",
      "  it.each([1])('row %s', () => {});",
      '  it(`made ${1} at run time`, () => {});',
      '});',
      "describe('other', () => { test('holds the line', () => {}); });",
      "test('an \\'escaped\\' quote', () => {});",
    ].join('\n'),
  };
  const read = (p: string) => files[p];
  const doc = (body: string) => `# x\n\n${body}\n`;

  it('reads a reference with nested titles, escapes and it.each titles as written in the source', () => {
    const text = doc(
      '- **C1** a claim: `apps/x/test/a.int.spec.ts` › “outer” › “holds the line”; `apps/x/test/a.int.spec.ts` › “row %s”, `apps/x/test/a.int.spec.ts` › “an \'escaped\' quote”.',
    );
    expect(referencesIn(text).map((r) => r.titles)).toEqual([['outer', 'holds the line'], ['row %s'], ["an 'escaped' quote"]]);
    expect(problemsOf(text, read)).toEqual([]);
  });

  it('finds a missing file, a missing title, a title under the wrong describe, a skipped test and a file of no tier', () => {
    const problems = problemsOf(
      doc(
        [
          '- **C1** `apps/x/test/gone.int.spec.ts` › “holds the line”',
          '- **C2** `apps/x/test/a.int.spec.ts` › “holds no line”',
          '- **C3** `apps/x/test/a.int.spec.ts` › “other” › “was skipped”',
          '- **C4** `apps/x/test/a.int.spec.ts` › “was skipped”',
          '- **C5** `apps/x/test/a.spec.ts` › “holds the line”',
          '- **C6** `apps/x/test/a.int.spec.ts` › “made 1 at run time”',
          '- **C7** `apps/x/test/a.int.spec.ts`, a file without a title',
        ].join('\n'),
      ),
      read,
    );
    expect(problems).toEqual([
      expect.stringContaining('`apps/x/test/gone.int.spec.ts`: no such file'),
      expect.stringContaining('no describe/it/test titled “holds no line”'),
      expect.stringContaining('“was skipped” inside the title before it'),
      expect.stringContaining('“was skipped” is skipped or todo'),
      expect.stringContaining('not a test file of the unit, int or e2e tier'),
      expect.stringContaining('no describe/it/test titled “made 1 at run time”'),
      expect.stringContaining('claim C7 names no test'),
    ]);
  });

  it('finds a claim without a test, an id defined twice and an id mentioned but not defined', () => {
    const problems = problemsOf(
      doc(['- **C1** a claim with no test,', '  continued on a second line.', '', '- **O1** open.', '- **O1** open again; see C9.'].join('\n')),
      read,
    );
    expect(problems).toEqual([
      expect.stringContaining('claim C1 names no test'),
      expect.stringContaining('O1 is defined twice'),
      expect.stringContaining('C9 is mentioned but not defined'),
    ]);
  });

  it('takes a reference wrapped over two lines of a claim', () => {
    const text = doc('- **C1** a claim:\n  `apps/x/test/a.int.spec.ts` › “outer”\n  › “holds the\n  line”.');
    expect(referencesIn(text)).toEqual([{ line: 4, path: 'apps/x/test/a.int.spec.ts', titles: ['outer', 'holds the line'] }]);
    expect(problemsOf(text, read)).toEqual([]);
  });
});
