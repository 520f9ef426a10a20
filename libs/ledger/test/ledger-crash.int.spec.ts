import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import Database from 'better-sqlite3';
import { CompactRange, leafHash, toHex } from '#audit-log';
import { SqliteEventStore, voidOpenSerials, type AppendResult } from '#ledger';

const here = dirname(fileURLToPath(import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'ledger-crash-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Runs the writer, kills it with SIGKILL once it has acknowledged `acks` appends, returns every ack it printed. */
function runAndKill(path: string, acks: number): Promise<AppendResult[]> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--conditions=source', '--import', 'tsx', join(here, 'fixtures/crash-writer.ts'), path], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let buffer = '';
    let stderr = '';
    const results: AppendResult[] = [];
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      buffer += chunk;
      let nl: number;
      while ((nl = buffer.indexOf('\n')) >= 0) {
        const line = buffer.slice(0, nl);
        buffer = buffer.slice(nl + 1);
        if (line !== 'ready') results.push(JSON.parse(line) as AppendResult);
      }
      if (results.length >= acks && !child.killed) child.kill('SIGKILL');
    });
    child.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c));
    child.on('error', reject);
    child.on('close', (_code, signal) => {
      if (signal !== 'SIGKILL') reject(new Error(`writer ended without being killed (${signal}): ${stderr}`));
      else resolve(results);
    });
  });
}

describe('kill -9 under concurrent load (I9, I2)', () => {
  it('keeps every acknowledged append, leaves positions contiguous, and voids the serials the crash left open', async () => {
    const path = join(dir, 'crash.sqlite');
    const acked = await runAndKill(path, 3000);
    expect(acked.length).toBeGreaterThanOrEqual(3000);

    // The stored Merkle tree covers exactly the events that survived, with their root (I3): it was
    // written in the same transactions, so a crash cannot leave it behind or ahead.
    const raw = new Database(path, { readonly: true });
    const texts = raw.prepare('SELECT envelope FROM events ORDER BY position').pluck().all() as string[];
    const state = raw.prepare('SELECT size, root FROM tree_state').get() as { size: number; root: Buffer };
    raw.close();
    expect(state.size).toBe(texts.length);
    expect(state.root.toString('hex')).toBe(toHex(CompactRange.fromLeafHashes(texts.map((t) => leafHash(t))).root()));

    const store = new SqliteEventStore({ path, nodeId: 5, tree: true });
    const log = await store.readAll();
    expect(log.map((e) => e.position)).toEqual([...Array(log.length).keys()]);
    const byId = new Map(log.map((e) => [e.eventId, e]));
    for (const a of acked) {
      a.eventIds.forEach((id, k) => {
        expect(byId.get(id), `acknowledged event ${id} lost`).toMatchObject({ position: a.firstPosition + k, serial: a.serial });
      });
    }

    const open = await store.openSerials();
    expect(open.length).toBeGreaterThan(0);
    const voided = await voidOpenSerials(store, 'crash-recovery', 'test-restart');
    expect(voided.map((v) => v.serial)).toEqual(open);
    expect(await store.openSerials()).toEqual([]);

    // Every serial of the day, 1..max, exists and ends in exactly one terminal event.
    const all = await store.readAll();
    const terminals = new Map<string, number>();
    for (const e of all) if (e.terminal) terminals.set(e.serial, (terminals.get(e.serial) ?? 0) + 1);
    const serials = [...new Set(all.map((e) => e.serial))].sort();
    expect(serials.map((s) => Number(s.slice(10)))).toEqual(serials.map((_, i) => i + 1));
    for (const s of serials) expect(terminals.get(s), `serial ${s}`).toBe(1);
    for (const v of voided) expect((await store.readSerial(v.serial)).at(-1)).toMatchObject({ type: 'SerialVoided', terminal: 'voided' });

    // Idempotency survives the crash: a retried key finds the original append.
    const keyedAck = acked.find((a) => all[a.firstPosition]!.metadata.idempotency !== undefined)!;
    const original = all[keyedAck.firstPosition]!;
    const i = (original.data as { i: number }).i;
    await expect(
      store.append({
        streamId: `single-${i}`,
        expectedRevision: 'no_stream',
        serial: { allocate: true },
        events: [{ type: 'Done', data: { i }, terminal: 'completed' }],
        metadata: { actor: 'system:crash-test', correlationId: 'retry' },
        idempotency: { key: `crash/${i}`, requestDigest: String(i) },
      }),
    ).resolves.toMatchObject({ status: 'duplicate', serial: original.serial });
    await store.close();
  });
});
