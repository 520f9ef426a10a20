import { afterAll, describe, expect, it } from 'vitest';
import { KurrentDbEventStore } from '#ledger/kurrentdb-event-store';
import { SelfCheckService, type SelfCheckRun } from '../src/audit/self-check.service.js';
import { SharedLog, announceServer, eventually, startKurrentHub, type KurrentTestHub } from './kurrentdb-hub.support.js';

// A hub on KurrentDB restarted on its data dir resumes from its own files (I11): the log's index from its
// checkpoint, the self-check from its verified mark (the rest by a scrub right after start).
announceServer();

// Every log is "long" here, so that a start check resumes from the mark as it would on a long log.
const ENV = { HUB_AUTHORIZATION_TABLE_FILE: '', HUB_CHECKPOINT_EVERY_EVENTS: '5', HUB_SELF_CHECK_FULL_MAX_EVENTS: '1' };
const log = new SharedLog();
let hub: KurrentTestHub | undefined;

afterAll(async () => {
  await hub?.close();
  await log.dispose();
});

let registry = 630_002_000_000;
async function designate(h: KurrentTestHub, count: number): Promise<void> {
  for (let i = 0; i < count; i++) {
    const body = { registryNumber: String(++registry), name: `株式会社再起動${registry}`, location: '北海道室蘭市幸町1番2号', kind: 'stock-company' };
    const res = await h.post('/v1/corporate-numbers', body, h.operator);
    expect(res.statusCode, res.body).toBe(201);
  }
}
const runs = (h: KurrentTestHub): SelfCheckRun[] => h.app.get(SelfCheckService).list();
const restart = async (dataDir: string) => {
  await hub!.close();
  hub = await startKurrentHub(log, { instanceId: 'hub-a', dataDir, env: ENV });
  return hub;
};

describe('a hub on KurrentDB restarted on its data dir', () => {
  it('opens its log index from its checkpoint and checks the log from the verified mark at start, the rest by a scrub', async () => {
    hub = await startKurrentHub(log, { instanceId: 'hub-a', env: ENV });
    const dataDir = hub.dataDir;
    await designate(hub, 40);

    // No mark yet: the start check reads the whole log and sets the mark at its head.
    let h = await restart(dataDir);
    const store = h.leadership.store as KurrentDbEventStore;
    const head2 = (runs(h).find((r) => r.kind === 'start')!).to;
    expect(store.resumedFrom).toBeGreaterThan(40);
    expect(runs(h).find((r) => r.kind === 'start')).toMatchObject({ status: 'passed', from: 0 });
    expect(head2).toBeGreaterThan(40);
    expect(h.app.get(SelfCheckService).view().verifiedThrough).toBe(head2);

    await designate(h, 3);
    const head3 = await h.head();
    h = await restart(dataDir);
    // The index read only what the log gained since it closed; the start check only the leaves from the mark.
    expect((h.leadership.store as KurrentDbEventStore).resumedFrom).toBe(head3);
    const start = runs(h).find((r) => r.kind === 'start')!;
    expect(start).toMatchObject({ status: 'passed', from: head2, scope: 'checkpoints-through-port' });
    expect(start.checked).toBe(start.to - head2);
    expect(start.checked).toBeLessThan(10);
    const scrub = await eventually('the scrub below the mark passed', async () => runs(h).find((r) => r.kind === 'scrub' && r.status !== 'running'));
    expect(scrub).toMatchObject({ status: 'passed', from: 0, to: head2 });
    expect(scrub.checkpoints).toBeGreaterThan(0);
    expect(h.app.get(SelfCheckService).view()).toMatchObject({ status: 'passed', verifiedThrough: start.to });
  });

  it('an event changed below the mark is found by the scrub right after start: not ready, no checkpoint signed', async () => {
    if (log.fake === undefined) return; // the server's stored events cannot be changed from here
    const dataDir = hub!.dataDir;
    const mark = hub!.app.get(SelfCheckService).view().verifiedThrough;
    await hub!.close();
    const stored = log.fake.streams.get(log.logStream)!;
    const victim = stored.findIndex((e, i) => i < mark - 10 && Buffer.from(e.data as Uint8Array).toString('utf8').includes('株式会社再起動'));
    expect(victim).toBeGreaterThanOrEqual(0);
    const text = Buffer.from(stored[victim]!.data as Uint8Array).toString('utf8').replace('株式会社再起動', '株式会社再記動');
    (stored[victim] as { data: Uint8Array }).data = Uint8Array.from(Buffer.from(text, 'utf8'));
    hub = await startKurrentHub(log, { instanceId: 'hub-a', dataDir, env: ENV });
    const h = hub;
    expect(runs(h).find((r) => r.kind === 'start')).toMatchObject({ status: 'passed', from: mark });
    const scrub = await eventually('the scrub ended', async () => runs(h).find((r) => r.kind === 'scrub' && r.status !== 'running'));
    expect(scrub.status).toBe('failed');
    expect(scrub.findings[0]).toMatchObject({ code: 'CHECKPOINT_ROOT_MISMATCH' });
    expect((await h.get('/health/ready')).statusCode).toBe(503);
    expect(h.app.get(SelfCheckService).allowsSigning).toBe(false);
  });
});
