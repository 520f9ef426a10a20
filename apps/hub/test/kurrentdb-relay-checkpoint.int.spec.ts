import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { KurrentLogClient } from '#ledger/kurrentdb-event-store';
import { KurrentRelayCheckpoint, RelayCheckpointDeposedError, relayCheckpointStreamOf } from '../src/relay/kurrent-relay-checkpoint.js';
import { SharedLog, announceServer } from './kurrentdb-hub.support.js';

/** The positions saved in the stream, oldest first, with the hub that wrote each. */
async function saved(client: KurrentLogClient, stream: string): Promise<{ position: number; instanceId: string }[]> {
  const out: { position: number; instanceId: string }[] = [];
  for await (const resolved of client.readStream(stream, { fromRevision: 'end', maxCount: 1000n, direction: 'backwards' })) {
    out.unshift(JSON.parse(Buffer.from(resolved.event!.data as Uint8Array).toString('utf8')) as { position: number; instanceId: string });
  }
  return out;
}

describe('the Kafka relay position on KurrentDB is fenced by its expected revision', () => {
  const log = new SharedLog();
  let client: KurrentLogClient;
  beforeAll(async () => {
    announceServer();
    client = await log.client();
  });
  afterAll(() => log.dispose());

  const newStream = () => relayCheckpointStreamOf(log.logStream, `topic-${randomUUID()}`);

  it('a fresh stream loads -1; a deposed leader cannot save over the new leader, nor take the stream back when its relay resumes', async () => {
    const stream = newStream();
    const old = new KurrentRelayCheckpoint(client, stream, 'hub-a');
    expect(await old.load()).toBe(-1);
    await old.save(10);
    await old.save(20);

    // The new leader resumes where the old one was acknowledged.
    const leader = new KurrentRelayCheckpoint(client, stream, 'hub-b');
    expect(await leader.load()).toBe(20);
    await leader.save(30);

    // The old leader has not yet seen that it lost the lease: its next save is refused, naming the writer.
    const refused = await old.save(25).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(RelayCheckpointDeposedError);
    expect((refused as Error).message).toContain('hub hub-b');
    // Its relay resuming after that failure reloads: refused too, the stream not taken back.
    await expect(old.load()).rejects.toBeInstanceOf(RelayCheckpointDeposedError);
    await expect(old.save(40)).rejects.toBeInstanceOf(RelayCheckpointDeposedError);

    // The new leader's position stands and it goes on saving.
    await leader.save(50);
    expect(await leader.load()).toBe(50);
    const all = await saved(client, stream);
    expect(all.at(-1)).toEqual({ position: 50, instanceId: 'hub-b' });
    expect(all.filter((s) => s.instanceId === 'hub-a').map((s) => s.position)).toEqual([-1, 10, 20]);
    expect(await new KurrentRelayCheckpoint(client, stream, 'reader').load()).toBe(50);
  });

  it('a hub that leads again takes the stream over in its new term, and the one it replaced is refused', async () => {
    const stream = newStream();
    const a = new KurrentRelayCheckpoint(client, stream, 'hub-a');
    const b = new KurrentRelayCheckpoint(client, stream, 'hub-b');
    await a.load();
    await a.save(5);
    expect(await b.load()).toBe(5);
    await expect(a.save(6)).rejects.toBeInstanceOf(RelayCheckpointDeposedError);

    a.newTerm();
    expect(await a.load()).toBe(5);
    await a.save(7);
    await expect(b.save(8)).rejects.toBeInstanceOf(RelayCheckpointDeposedError);
    expect((await saved(client, stream)).at(-1)).toEqual({ position: 7, instanceId: 'hub-a' });
  });

  it("a save of the deposed leader between the new leader's read and its take-over: the new leader reads again and takes the later position", async () => {
    const stream = newStream();
    const old = new KurrentRelayCheckpoint(client, stream, 'hub-a');
    await old.load();
    await old.save(100);
    // The new leader's client lets the old leader save just before the new leader's first append.
    let interleaved = false;
    const racing: KurrentLogClient = {
      readStream: (name, options) => client.readStream(name, options),
      appendToStream: async (name, events, options) => {
        if (!interleaved) {
          interleaved = true;
          await old.save(150);
        }
        return client.appendToStream(name, events, options);
      },
      dispose: () => Promise.resolve(),
    };
    const leader = new KurrentRelayCheckpoint(racing, stream, 'hub-b');
    expect(await leader.load()).toBe(150);
    await expect(old.save(200)).rejects.toBeInstanceOf(RelayCheckpointDeposedError);
    await leader.save(210);
    expect((await saved(client, stream)).map((s) => `${s.instanceId}:${s.position}`)).toEqual(['hub-a:-1', 'hub-a:100', 'hub-a:150', 'hub-b:150', 'hub-b:210']);
  });

  it('a save before any load takes the stream over first', async () => {
    const stream = newStream();
    const a = new KurrentRelayCheckpoint(client, stream, 'hub-a');
    await a.load();
    await a.save(3);
    const b = new KurrentRelayCheckpoint(client, stream, 'hub-b');
    await b.save(-1); // a relay reset
    await expect(a.save(4)).rejects.toBeInstanceOf(RelayCheckpointDeposedError);
    expect(await b.load()).toBe(-1);
  });
});
