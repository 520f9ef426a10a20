import { describe, expect, it } from 'vitest';
import { MemoryTree, formatVerifierKey, generateSigningKey, leafHash } from '#audit-log';
import { checkpointAppendRequest, defaultCheckpointOrigin, signedCheckpointData } from '#ledger';
import { KurrentDbEventStore } from '#ledger/kurrentdb-event-store';
import { FakeKurrentDb } from '../../../libs/ledger/test/fixtures/fake-kurrentdb.js';
import { AuditorError } from '../src/errors.js';
import { proveSerial, verifyProofBundle } from '../src/prove/proof-bundle.js';
import { verifyLog } from '../src/verify/verify-log.js';

// `verify --kurrentdb` and `prove --kurrentdb`: the log of a KurrentDB-backed ledger read straight from its log stream (here a
// stand-in server with KurrentDB's stream rules), checked like a ledger file or a hub.
const STREAM = 'linkage-ledger';
const meta = { actor: 'agency:pension-service', correlationId: 'c' };

/** 30 three-event linkages written by KurrentDbEventStore, with a signed checkpoint after every 20 events. */
async function buildKurrentLog(): Promise<{ server: FakeKurrentDb; verifierKey: string; checkpoints: number[] }> {
  const server = new FakeKurrentDb();
  const origin = defaultCheckpointOrigin(1);
  const key = generateSigningKey();
  let clock = Date.parse('2026-11-22T01:00:00.000Z');
  const store = await KurrentDbEventStore.open({ connection: server, nodeId: 1, now: () => new Date((clock += 7)) });
  const checkpoints: number[] = [];
  let last = 0;
  for (let i = 0; i < 30; i++) {
    const streamId = `linkage-${i}`;
    const first = await store.append({ streamId, expectedRevision: 'no_stream', serial: { allocate: true }, events: [{ type: 'QueryReceived', data: { i, note: '室蘭市 → 日本年金機構' } }], metadata: meta });
    await store.append({ streamId, expectedRevision: 0, serial: { continue: first.serial }, events: [{ type: 'ProvisionRequested', data: { i } }], metadata: meta });
    const done = await store.append({ streamId, expectedRevision: 1, serial: { continue: first.serial }, events: [{ type: 'ProvisionCompleted', data: { i }, terminal: 'completed' }], metadata: meta });
    if (done.lastPosition + 1 - last >= 20) {
      // The root over exactly the bytes KurrentDB holds.
      const tree = new MemoryTree(server.streams.get(STREAM)!.map((e) => leafHash(Buffer.from(e.data as Uint8Array).toString('utf8'))));
      const cp = await store.append(checkpointAppendRequest(signedCheckpointData(origin, tree.size, tree.root(), clock, key.privateKey), { actor: 'system:checkpoint', correlationId: 'cp' }));
      checkpoints.push(cp.firstPosition);
      last = cp.firstPosition + 1;
    }
  }
  await store.close();
  return { server, verifierKey: formatVerifierKey({ name: origin, publicKey: key.publicKey }), checkpoints };
}

const verify = (server: FakeKurrentDb, verifierKey: string) => verifyLog({ source: { kind: 'kurrentdb', url: 'kurrentdb://stand-in', client: server }, verifierKey, threads: 2 });

/** Rewrites the stored bytes of one revision, as someone with write access to KurrentDB's files could. */
function rewrite(server: FakeKurrentDb, revision: number, change: (text: string) => string): void {
  const stream = server.streams.get(STREAM)!;
  const e = stream[revision]!;
  stream[revision] = { ...e, data: Buffer.from(change(Buffer.from(e.data as Uint8Array).toString('utf8')), 'utf8') };
}

describe('auditor verify --kurrentdb', () => {
  it('verifies every leaf, checkpoint, position, revision and serial of an untouched log stream', async () => {
    const { server, verifierKey, checkpoints } = await buildKurrentLog();
    const report = await verify(server, verifierKey);
    expect(report).toMatchObject({ ok: true, events: server.streams.get(STREAM)!.length, findingCount: 0 });
    expect(report.checkpoints.verified).toBe(checkpoints.length);
    expect(report.source).toContain(STREAM);
  });

  it('fails on one changed byte in one stored event, at the first signed checkpoint that covers it', async () => {
    const { server, verifierKey, checkpoints } = await buildKurrentLog();
    rewrite(server, 7, (t) => t.replace('"i":2', '"i":3'));
    const report = await verify(server, verifierKey);
    // No tree is stored beside a KurrentDB log: the first signed checkpoint above the change names it.
    expect(report.ok).toBe(false);
    expect(report.firstFailure).toMatchObject({ code: 'CHECKPOINT_ROOT_MISMATCH', position: checkpoints[0] });
  });

  it('names the position where an event was taken out of the stream', async () => {
    const { server, verifierKey } = await buildKurrentLog();
    const stream = server.streams.get(STREAM)!;
    stream.splice(10, 1);
    stream.forEach((e, i) => (stream[i] = { ...e, revision: BigInt(i) }));
    const report = await verify(server, verifierKey);
    expect(report.ok).toBe(false);
    expect(report.firstFailure!.position).toBe(10);
  });

  it('proves the events of one serial against the first signed checkpoint covering them, verifiable offline', async () => {
    const { server, verifierKey, checkpoints } = await buildKurrentLog();
    const source = { kind: 'kurrentdb', url: 'kurrentdb://stand-in', client: server } as const;
    const serial = (JSON.parse(Buffer.from(server.streams.get(STREAM)![6]!.data as Uint8Array).toString('utf8')) as { serial: string }).serial;
    const bundle = await proveSerial(source, serial);
    const checked = verifyProofBundle(JSON.parse(JSON.stringify(bundle)), verifierKey);
    expect(checked).toMatchObject({ serial, size: checkpoints[0] });
    expect(checked.events.map((e) => e.position)).toEqual([6, 7, 8]);
    await expect(proveSerial(source, '20261122019999999999')).rejects.toMatchObject({ code: 'SERIAL_UNKNOWN' });
    await expect(proveSerial(source, serial, 5)).rejects.toMatchObject({ code: 'NO_CHECKPOINT' });
    // A proof built from changed bytes does not lead to the signed root.
    rewrite(server, 7, (t) => t.replace('"i":2', '"i":3'));
    const changed = JSON.parse(JSON.stringify(await proveSerial(source, serial))) as unknown;
    expect(() => verifyProofBundle(changed, verifierKey)).toThrow(AuditorError);
  });

  it('refuses a KurrentDB it cannot reach with SOURCE_UNREADABLE', async () => {
    const error = await verifyLog({ source: { kind: 'kurrentdb', url: 'kurrentdb://127.0.0.1:9?tls=false' }, verifierKey: formatVerifierKey({ name: 'x', publicKey: generateSigningKey().publicKey }), threads: 1 }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(AuditorError);
    expect((error as AuditorError).code).toBe('SOURCE_UNREADABLE');
  });
});
