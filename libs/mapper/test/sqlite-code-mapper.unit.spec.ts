import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { InMemoryEventStore } from '#ledger';
import { InMemoryCodeMapper, SqliteCodeMapper, catchUp, rebuildFrom } from '#mapper';
import { codeMapperContract } from './code-mapper.contract.js';
import { acquireInStore, population } from './fixtures.js';

codeMapperContract('sqlite', async () => {
  const mapper = new SqliteCodeMapper();
  return { mapper, cleanup: async () => mapper.close() };
});

describe('SqliteCodeMapper', () => {
  test('keeps its codes and checkpoint in its file: reopened, it answers the same and resumes after the checkpoint; a rebuild equals it (I8)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sqlite-code-mapper-'));
    try {
      const store = new InMemoryEventStore();
      const first = population(20);
      await acquireInStore(store, first);
      const live = new SqliteCodeMapper(join(dir, 'codes.db'));
      await catchUp(store, live, { pageSize: 7 });
      live.close();
      const second = population(5);
      await acquireInStore(store, second);
      const reopened = new SqliteCodeMapper(join(dir, 'codes.db'));
      const before = await reopened.checkpoint();
      expect(before).toBeGreaterThan(0);
      await catchUp(store, reopened);
      const reference = new InMemoryCodeMapper();
      await rebuildFrom(store, reference);
      const rebuilt = new SqliteCodeMapper();
      await rebuildFrom(store, rebuilt);
      expect(await reopened.entries()).toEqual(await reference.entries());
      expect(await rebuilt.entries()).toEqual(await reference.entries());
      expect(await reopened.entries()).toHaveLength(first.length + second.length);
      const someone = second[0]!;
      expect(await reopened.resolve(someone.agencyId, someone.code)).toBe(someone.subjectId);
      reopened.close();
      rebuilt.close();
      await store.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
