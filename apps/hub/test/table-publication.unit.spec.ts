import { Logger } from '@nestjs/common';
import type { EventBus } from '@nestjs/cqrs';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { InMemoryEventStore } from '#ledger';
import { AUTHORIZATION_TABLE_STREAM, SELF_DISCLOSURE_TABLE_STREAM } from '#linkage';
import { AUTHORIZATION_TABLE, SELF_DISCLOSURE_TABLE } from '../src/linkage/table-publications.js';
import { publishTableAtStart } from '../src/linkage/table-publication.js';

const ROOT = join(import.meta.dirname, '../../..');
// One shape for both tables in the loop below (each spec is typed for its own table).
type AnyPublication = typeof AUTHORIZATION_TABLE;
const TABLES = [
  { publication: AUTHORIZATION_TABLE as AnyPublication, stream: AUTHORIZATION_TABLE_STREAM, file: join(ROOT, 'schemas/authorization/authorization-table.v1.json') },
  { publication: SELF_DISCLOSURE_TABLE as unknown as AnyPublication, stream: SELF_DISCLOSURE_TABLE_STREAM, file: join(ROOT, 'schemas/authorization/self-disclosure-table.v1.json') },
];

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'table-publication-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

describe.each(TABLES)('publishing the $publication.name at start', ({ publication, stream, file }) => {
  const deps = (store: InMemoryEventStore) => ({ store, eventBus: { publish: vi.fn() } as unknown as EventBus, logger: new Logger('test'), now: () => new Date('2026-12-04T00:00:00.000Z') });
  const variant = (patch: Record<string, unknown>) => {
    const path = join(dir, `${Object.keys(patch).join('-')}.json`);
    writeFileSync(path, JSON.stringify({ ...(JSON.parse(readFileSync(file, 'utf8')) as object), ...patch }));
    return path;
  };

  it('publishes a new version once, under a serial of its own, and not again at the next start', async () => {
    const store = new InMemoryEventStore();
    await publishTableAtStart(publication, file, deps(store));
    await publishTableAtStart(publication, file, deps(store));
    const events = await store.readStream(stream);
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({ streamRevision: 0, terminal: 'completed', metadata: { actor: publication.actor } });
    expect(events[0]!.serial).toMatch(/^\d{20}$/);
  });

  it('refuses the published version with other content, and leaves an older version unpublished', async () => {
    const store = new InMemoryEventStore();
    await publishTableAtStart(publication, variant({ version: 2 }), deps(store));
    await expect(publishTableAtStart(publication, variant({ version: 2, effectiveFrom: '2030-01-01T00:00:00+09:00' }), deps(store))).rejects.toThrow(new RegExp(`${publication.name} version 2 with content other than the published version 2`));
    await publishTableAtStart(publication, file, deps(store));
    expect((await store.readStream(stream)).map((e) => (e.data as { version: number }).version)).toEqual([2]);
  });

  it('leaves a newer version whose effectiveFrom has passed unpublished, logs why, and starts on the version in force', async () => {
    const store = new InMemoryEventStore();
    await publishTableAtStart(publication, file, deps(store));
    const logger = new Logger('test');
    const error = vi.spyOn(logger, 'error').mockImplementation(() => undefined);
    // Published at 2026-12-04, taking effect at 2026-06-01: queries decided under version 1 since then cannot be re-judged.
    await publishTableAtStart(publication, variant({ version: 2, effectiveFrom: '2026-06-01T00:00:00+09:00' }), { ...deps(store), logger });
    expect((await store.readStream(stream)).map((e) => (e.data as { version: number }).version)).toEqual([1]);
    expect(error).toHaveBeenCalledWith(expect.stringMatching(new RegExp(`${publication.name} version 2 of .* not published: .*before (its|its own) publication.* stays the log's \\(version 1\\)`)));
    // A later effectiveFrom is published.
    await publishTableAtStart(publication, variant({ version: 2, effectiveFrom: '2027-01-01T00:00:00+09:00' }), deps(store));
    expect((await store.readStream(stream)).map((e) => (e.data as { version: number }).version)).toEqual([1, 2]);
  });
});
