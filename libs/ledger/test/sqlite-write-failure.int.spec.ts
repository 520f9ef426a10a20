import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { SqliteEventStore, type AppendRequest, type CommitHook, type PlannedEvent } from '#ledger';

const dir = mkdtempSync(join(tmpdir(), 'ledger-failure-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const request = (i: number): AppendRequest => ({
  streamId: `s-${i}`,
  expectedRevision: 'no_stream',
  serial: { allocate: true },
  events: [{ type: 'Done', data: { i }, terminal: 'completed', claims: [`claim:${i}`] }],
  metadata: { actor: 'system:test', correlationId: 'c' },
  idempotency: { key: `k/${i}`, requestDigest: 'd' },
});

describe('a batch the writer cannot commit', () => {
  it('fails its appends and the ones planned behind it, then the ledger goes on with no gap in positions or serials', async () => {
    let sabotage = false;
    const rolledBack: number[] = [];
    // A hook whose write fails inside the transaction when told to: the whole batch must roll back.
    const hook: CommitHook = {
      prepare: (events: readonly PlannedEvent[]) => (sabotage ? [{ sql: 'INSERT INTO no_such_table VALUES (?)', rows: [[events.length]] }] : []),
      rollback: (durableHead) => rolledBack.push(durableHead),
    };
    const store = new SqliteEventStore({ path: join(dir, 'f.sqlite'), nodeId: 3, hooks: [hook] });
    await Promise.all([0, 1, 2].map((i) => store.append(request(i))));

    sabotage = true;
    const failing = Promise.allSettled([3, 4, 5].map((i) => store.append(request(i))));
    await new Promise((r) => setImmediate(r));
    sabotage = false;
    const failed = await failing;
    expect(failed.every((r) => r.status === 'rejected')).toBe(true);
    expect((failed[0] as PromiseRejectedResult).reason).toMatchObject({ code: 'WRITE_FAILED' });
    expect(rolledBack).toEqual([3]);
    expect(await store.head()).toBe(3);

    // The failed requests held nothing: their keys, claims and streams are free, and the next serial follows on.
    const again = await Promise.all([3, 4, 5].map((i) => store.append(request(i))));
    expect(again.map((r) => r.firstPosition)).toEqual([3, 4, 5]);
    expect(again.map((r) => r.status)).toEqual(['appended', 'appended', 'appended']);
    expect(again.map((r) => r.serial.slice(10))).toEqual(['0000000004', '0000000005', '0000000006']);
    const log = await store.readAll();
    expect(log.map((e) => e.position)).toEqual([0, 1, 2, 3, 4, 5]);
    await store.close();
  });

  it('with another batch planned behind the failed one, rolls back once: the next batch takes the failed one\'s first position', async () => {
    let sabotaged = 0;
    const rolledBack: number[] = [];
    // Only the first batch of the group fails; the one planned behind it is refused by the writer.
    const hook: CommitHook = {
      prepare: (events: readonly PlannedEvent[]) => (sabotaged++ === 0 ? [{ sql: 'INSERT INTO no_such_table VALUES (?)', rows: [[events.length]] }] : []),
      rollback: (durableHead) => rolledBack.push(durableHead),
    };
    const store = new SqliteEventStore({ path: join(dir, 'behind.sqlite'), nodeId: 3, hooks: [hook] });
    const batches: number[] = [];
    store.observeBatches((appends) => batches.push(appends));
    // 40 appends at an idle store: two batches of 20, planned before the first commits.
    const failed = await Promise.allSettled(Array.from({ length: 40 }, (_, i) => store.append(request(i))));
    expect(batches).toEqual([20, 20]);
    expect(failed.every((r) => r.status === 'rejected')).toBe(true);
    expect((failed[39] as PromiseRejectedResult).reason).toMatchObject({ code: 'WRITE_FAILED' });
    expect(rolledBack).toEqual([0]);
    expect(await store.head()).toBe(0);

    const again = await Promise.all(Array.from({ length: 40 }, (_, i) => store.append(request(i))));
    expect(again.map((r) => r.firstPosition)).toEqual([...Array(40).keys()]);
    expect(again.at(-1)!.serial.slice(10)).toBe('0000000040');
    expect((await store.readAll()).map((e) => e.position)).toEqual([...Array(40).keys()]);
    expect(rolledBack).toEqual([0]);
    await store.close();
  });
});
