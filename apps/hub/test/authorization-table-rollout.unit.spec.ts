import 'reflect-metadata';
import { Logger } from '@nestjs/common';
import type { EventBus } from '@nestjs/cqrs';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { InMemoryEventStore } from '#ledger';
import { AUTHORIZATION_TABLE_STREAM } from '#linkage';
import type { IdempotencyKeys } from '../src/ledger/idempotency.js';
import { LeaderGatedEventStore } from '../src/leadership/leader-gated-event-store.js';
import type { Leadership } from '../src/leadership/leadership.js';
import { AUTHORIZATION_TABLE } from '../src/linkage/table-publications.js';
import { publishTableAtStart } from '../src/linkage/table-publication.js';
import { AuthorizationTableRollout } from '../src/linkage/tables/authorization-table-rollout.js';

const ROOT = join(import.meta.dirname, '../../..');
const V1_FILE = join(ROOT, 'schemas/authorization/authorization-table.v1.json');
const V2_FILE = join(ROOT, 'schemas/authorization/authorization-table.v2.json');
const v2 = (): Record<string, unknown> => JSON.parse(readFileSync(V2_FILE, 'utf8')) as Record<string, unknown>;
const OPERATOR = { actor: 'operator:hub', correlationId: 'c-1' };

let dir: string;
let now: Date;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'table-rollout-'));
  now = new Date('2026-12-04T00:00:00.000Z');
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

function setUp() {
  const store = new InMemoryEventStore();
  const eventBus = { publish: vi.fn() } as unknown as EventBus;
  const logger = new Logger('test');
  const noKeys = { scope: () => undefined } as unknown as IdempotencyKeys;
  const rollout = new AuthorizationTableRollout(store, () => now, eventBus, noKeys);
  const deps = { store, eventBus, logger, now: () => now };
  const file = (patch: Record<string, unknown>) => {
    const path = join(dir, `${JSON.stringify(patch).replace(/\W+/g, '-')}.json`);
    writeFileSync(path, JSON.stringify({ ...v2(), ...patch }));
    return path;
  };
  const versions = async () => (await store.readStream(AUTHORIZATION_TABLE_STREAM)).map((e) => `${e.type === 'AuthorizationTablePublished' ? 'published' : 'withdrawn'} ${(e.data as { version: number }).version}`);
  return { store, rollout, logger, deps, file, versions };
}

describe('the start-up file and the API publish on one stream', () => {
  it('a version published through the API is not overridden by an older start-up file: the file is left unpublished with a warning', async () => {
    const { rollout, deps, logger, versions } = setUp();
    await publishTableAtStart(AUTHORIZATION_TABLE, V2_FILE, deps);
    const published = await rollout.publish({ ...v2(), version: 3, effectiveFrom: '2027-04-01T00:00:00+09:00' }, OPERATOR);
    expect(published.value).toMatchObject({ version: 3, state: 'scheduled', serial: expect.stringMatching(/^\d{20}$/), diff: { againstVersion: 2, rowsAdded: [], rowsRemoved: [] } });
    const warn = vi.spyOn(logger, 'warn').mockImplementation(() => undefined);
    await publishTableAtStart(AUTHORIZATION_TABLE, V2_FILE, deps); // a restart with the default file
    expect(await versions()).toEqual(['published 2', 'published 3']);
    expect(warn).not.toHaveBeenCalled(); // the same version and content as published: nothing to say
    await publishTableAtStart(AUTHORIZATION_TABLE, V1_FILE, deps);
    expect(warn).toHaveBeenCalledWith(expect.stringMatching(/holds version 1, older than the published version 3: nothing published/));
    expect(await versions()).toEqual(['published 2', 'published 3']);
    expect((await rollout.list()).versions.map((v) => [v.version, v.state])).toEqual([[2, 'in-force'], [3, 'scheduled']]);
    now = new Date('2027-04-01T00:00:00+09:00');
    expect((await rollout.list()).versions.map((v) => [v.version, v.state])).toEqual([[2, 'superseded'], [3, 'in-force']]);
  });

  it('a start-up file naming a version withdrawn through the API publishes nothing, and says so', async () => {
    const { rollout, deps, logger, file, versions } = setUp();
    await publishTableAtStart(AUTHORIZATION_TABLE, V2_FILE, deps);
    const v3 = file({ version: 3, effectiveFrom: '2027-04-01T00:00:00+09:00' });
    await publishTableAtStart(AUTHORIZATION_TABLE, v3, deps);
    await rollout.withdraw(3, 'postponed', OPERATOR);
    const warn = vi.spyOn(logger, 'warn').mockImplementation(() => undefined);
    await publishTableAtStart(AUTHORIZATION_TABLE, v3, deps);
    expect(await versions()).toEqual(['published 2', 'published 3', 'withdrawn 3']);
    expect(warn).toHaveBeenCalledWith(expect.stringMatching(/version 3, withdrawn at 2026-12-04T00:00:00.000Z: nothing published; number the corrected table 4 or higher/));
  });

  it('a newer start-up file whose effectiveFrom has passed stays unpublished (error logged), as the API refuses it: TABLE_NOT_EFFECTIVE', async () => {
    const { rollout, deps, logger, file, versions } = setUp();
    await publishTableAtStart(AUTHORIZATION_TABLE, V1_FILE, deps);
    const error = vi.spyOn(logger, 'error').mockImplementation(() => undefined);
    // v2's effectiveFrom (2026-04-01) is before "now" (2026-12-04): a hub upgraded on a log that holds version 1.
    await publishTableAtStart(AUTHORIZATION_TABLE, V2_FILE, deps);
    expect(error).toHaveBeenCalledWith(expect.stringMatching(/authorization table version 2 of .* not published: .*before its publication/));
    await expect(rollout.publish(v2(), OPERATOR)).rejects.toMatchObject({ code: 'TABLE_NOT_EFFECTIVE' });
    await expect(rollout.validate(v2())).rejects.toMatchObject({ code: 'TABLE_NOT_EFFECTIVE' });
    // The fix: a later effectiveFrom, through either path.
    await publishTableAtStart(AUTHORIZATION_TABLE, file({ effectiveFrom: '2026-12-04T00:00:00.000Z' }), deps);
    expect(await versions()).toEqual(['published 1', 'published 2']);
    expect((await rollout.list()).inForce).toBe(2);
  });
});

describe('AuthorizationTableRollout', () => {
  it('validate answers what publish would, appending nothing', async () => {
    const { rollout, deps, store } = setUp();
    await publishTableAtStart(AUTHORIZATION_TABLE, V1_FILE, deps);
    const before = await store.readStream(AUTHORIZATION_TABLE_STREAM);
    const checked = await rollout.validate({ ...v2(), effectiveFrom: '2027-01-01T00:00:00Z' });
    expect(await store.readStream(AUTHORIZATION_TABLE_STREAM)).toHaveLength(before.length);
    expect(checked.serial).toBeUndefined();
    const published = await rollout.publish({ ...v2(), effectiveFrom: '2027-01-01T00:00:00Z' }, OPERATOR);
    expect(published.value).toEqual({ ...checked, serial: published.value.serial });
    // Version 2 adds push to three pension rows of version 1.
    expect(checked.diff.rowsChanged.map((c) => c.pushAdded.length > 0)).toEqual([true, true, true]);
  });

  it('each refusal is its own code, with the problems listed', async () => {
    const { rollout, deps } = setUp();
    await publishTableAtStart(AUTHORIZATION_TABLE, V1_FILE, deps);
    const later: Record<string, unknown> = { ...v2(), effectiveFrom: '2027-01-01T00:00:00Z' };
    await expect(rollout.publish({ ...later, rows: 'none' }, OPERATOR)).rejects.toMatchObject({ code: 'AUTHORIZATION_TABLE_SCHEMA_VIOLATION', extensions: { problems: ['/rows: must be array'] } });
    await expect(rollout.publish({ ...later, owner: 'x' }, OPERATOR)).rejects.toMatchObject({ code: 'AUTHORIZATION_TABLE_SCHEMA_VIOLATION', extensions: { problems: ['(table): must NOT have additional properties ("owner")'] } });
    const rows = later['rows'] as Record<string, unknown>[];
    await expect(rollout.publish({ ...later, rows: [{ ...rows[0], providerKind: 'ministry' }, ...rows.slice(1)] }, OPERATOR)).rejects.toMatchObject({
      code: 'AUTHORIZATION_TABLE_UNKNOWN_CODE',
      extensions: { problems: [expect.stringMatching(/^rows\[0\]\.providerKind: unknown agency kind "ministry"/)] },
    });
    await expect(rollout.publish({ ...later, rows: [rows[0], rows[0], ...rows.slice(1)] }, OPERATOR)).rejects.toMatchObject({ code: 'INVALID_AUTHORIZATION_TABLE' });
    await expect(rollout.publish({ ...later, version: 1 }, OPERATOR)).rejects.toMatchObject({ code: 'TABLE_VERSION_NOT_NEWER' });
  });

  it('withdraws a scheduled version, refuses once it is in force', async () => {
    const { rollout, deps } = setUp();
    await publishTableAtStart(AUTHORIZATION_TABLE, V1_FILE, deps);
    await rollout.publish({ ...v2(), effectiveFrom: '2027-01-01T00:00:00Z' }, OPERATOR);
    await rollout.publish({ ...v2(), version: 3, effectiveFrom: '2027-06-01T00:00:00Z' }, OPERATOR);
    const withdrawn = await rollout.withdraw(3, 'postponed', OPERATOR);
    expect(withdrawn.value).toEqual({ version: 3, serial: expect.stringMatching(/^\d{20}$/), withdrawnAt: now.toISOString() });
    now = new Date('2027-01-01T00:00:00Z');
    await expect(rollout.withdraw(2, 'too late', OPERATOR)).rejects.toMatchObject({ code: 'TABLE_VERSION_IN_FORCE' });
    now = new Date('2027-07-01T00:00:00Z');
    const list = await rollout.list();
    expect(list.versions.map((v) => [v.version, v.state])).toEqual([[1, 'superseded'], [2, 'in-force'], [3, 'withdrawn']]);
    expect(list.versions[2]).toMatchObject({ withdrawnAt: '2026-12-04T00:00:00.000Z', withdrawalReason: 'postponed' });
    expect(list.inForce).toBe(2);
  });
});

describe('on KurrentDB only the leader publishes', () => {
  it('a standby refuses publication and withdrawal with NOT_LEADER, appending nothing; validation and the list answer from the log', async () => {
    const { store, deps, rollout } = setUp();
    await publishTableAtStart(AUTHORIZATION_TABLE, V2_FILE, deps);
    await rollout.publish({ ...v2(), version: 3, effectiveFrom: '2027-04-01T00:00:00+09:00' }, OPERATOR); // by the leader
    const leadership = { role: 'standby', acceptsCommands: false, inTakeover: false, instanceId: 'hub-b', leader: { instanceId: 'hub-a' } } as unknown as Leadership;
    const standby = new AuthorizationTableRollout(new LeaderGatedEventStore(store, leadership), () => now, { publish: vi.fn() } as unknown as EventBus, { scope: () => undefined } as unknown as IdempotencyKeys);
    const v4 = { ...v2(), version: 4, effectiveFrom: '2027-05-01T00:00:00+09:00' };
    await expect(standby.publish(v4, OPERATOR)).rejects.toMatchObject({ code: 'NOT_LEADER' });
    await expect(standby.withdraw(3, 'postponed', OPERATOR)).rejects.toMatchObject({ code: 'NOT_LEADER' });
    expect(await store.readStream(AUTHORIZATION_TABLE_STREAM)).toHaveLength(2);
    expect(await standby.validate(v4)).toMatchObject({ version: 4, diff: { againstVersion: 2 } });
    expect((await standby.list()).inForce).toBe(2);
  });
});
