import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { SqliteEventStore } from '#ledger';
import { MURORAN, nextResidentRecordCode, startTestHub } from './support/test-hub.js';

describe('start-up', () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'hub-recovery-'));
  afterAll(() => rmSync(dataDir, { recursive: true, force: true }));

  it('voids serials a crash left open before taking commands (I2), and keeps its keys across restarts', async () => {
    const first = await startTestHub({ dataDir });
    const residentRecordCode = nextResidentRecordCode();
    const issued = await first.post('/v1/individual-numbers', { residentRecordCode, municipalityCode: MURORAN }, { ...first.operator, 'idempotency-key': 'restart-1' });
    expect(issued.statusCode).toBe(201);
    await first.close();

    // A serial opened and never ended, as if the process died mid-transaction.
    const raw = new SqliteEventStore({ path: join(dataDir, 'ledger.sqlite'), nodeId: 1 });
    const open = await raw.append({
      streamId: 'query-1',
      expectedRevision: 'no_stream',
      serial: { allocate: true },
      events: [{ type: 'QueryAccepted', data: {} }],
      metadata: { actor: 'agency:test', correlationId: 'c-open' },
    });
    await raw.close();

    const second = await startTestHub({ dataDir });
    try {
      const ready = await second.get('/health/ready');
      // The self-check at start re-hashed the whole log, the recovery's SerialVoided included.
      const selfCheck = { status: 'passed', verifiedThrough: 3, run: 'start', runId: expect.any(String), checked: 3, total: 3 };
      expect(ready.json()).toEqual({ status: 'ready', head: 3, openSerials: 0, voidedAtStartup: 1, codeMapper: { mode: 'store' }, rateLimits: { mode: 'local', shared: false, fallbacks: 0 }, selfCheck, role: 'leader' });
      const events = await second.store.readSerial(open.serial);
      expect(events.at(-1)).toMatchObject({ type: 'SerialVoided', terminal: 'voided', metadata: { actor: 'system:recovery' } });
      // Same keys: the retry after restart unseals the original number.
      const retry = await second.post('/v1/individual-numbers', { residentRecordCode, municipalityCode: MURORAN }, { ...second.operator, 'idempotency-key': 'restart-1' });
      expect(retry.statusCode).toBe(201);
      expect(retry.json()).toEqual(issued.json());
      expect(await second.head()).toBe(3);
    } finally {
      await second.close();
    }
  });
});
