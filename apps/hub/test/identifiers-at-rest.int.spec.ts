import { existsSync, readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MURORAN, SAPPORO, nextResidentRecordCode, startTestHub, type TestHub } from './support/test-hub.js';

/** The byte patterns under which a string could sit in a file: UTF-8/ASCII, UTF-16LE, UTF-16BE. */
function encodings(text: string): Buffer[] {
  const le = Buffer.from(text, 'utf16le');
  const be = Buffer.from(le);
  be.swap16();
  return [Buffer.from(text, 'utf8'), le, be];
}

/** I4: numbering events keep identifiers only as keyed digests and sealed boxes, in every file of the ledger. */
describe('I4: no plaintext identifier in the ledger files', () => {
  let hub: TestHub;
  const secrets: string[] = [];

  beforeAll(async () => {
    hub = await startTestHub();
    const residents = [nextResidentRecordCode(), nextResidentRecordCode(), nextResidentRecordCode(), nextResidentRecordCode()];
    for (const [i, residentRecordCode] of residents.entries()) {
      const res = await hub.post('/v1/individual-numbers', { residentRecordCode, municipalityCode: i % 2 ? MURORAN : SAPPORO }, { ...hub.operator, 'idempotency-key': `i4-${i}` });
      expect(res.statusCode).toBe(201);
      secrets.push(residentRecordCode, res.json<{ individualNumber: string }>().individualNumber);
    }
    const change = await hub.post('/v1/individual-numbers/changes', { residentRecordCode: residents[0], municipalityCode: SAPPORO, reason: 'leak' }, { ...hub.operator, 'idempotency-key': 'i4-change' });
    expect(change.statusCode).toBe(201);
    secrets.push(change.json<{ individualNumber: string }>().individualNumber);
  });
  afterAll(async () => {
    await hub.dispose();
  });

  function ledgerFiles(): Buffer[] {
    const base = hub.config.ledgerPath;
    return [base, `${base}-wal`, `${base}-shm`].filter((p) => existsSync(p)).map((p) => readFileSync(p));
  }

  it('finds the events in the files (the scan is not vacuous)', async () => {
    expect(existsSync(`${hub.config.ledgerPath}-wal`)).toBe(true);
    const files = Buffer.concat(ledgerFiles());
    const event = (await hub.store.readAll()).find((e) => e.type === 'IndividualNumberIssued');
    const sealed = (event!.data as { sealed: { box: string } }).sealed;
    expect(files.includes(Buffer.from(sealed.box))).toBe(true);
    expect(files.includes(Buffer.from(MURORAN))).toBe(true);
  });

  it('holds no plaintext individual number or resident record code while running (main file and WAL)', () => {
    expect(secrets).toHaveLength(9);
    for (const file of ledgerFiles()) {
      for (const secret of secrets) for (const pattern of encodings(secret)) expect(file.includes(pattern)).toBe(false);
    }
  });

  it('holds none after shutdown either (the WAL checkpointed into the main file)', async () => {
    await hub.close();
    const files = ledgerFiles();
    expect(files.length).toBeGreaterThan(0);
    for (const file of files) {
      for (const secret of secrets) for (const pattern of encodings(secret)) expect(file.includes(pattern)).toBe(false);
    }
  });
});
