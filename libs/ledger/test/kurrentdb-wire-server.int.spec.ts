import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  NO_STREAM,
  STREAM_EXISTS,
  START,
  binaryEvent,
  jsonEvent,
  streamNameFilter,
  eventTypeFilter,
  type AppendStreamState,
  type EventData,
  type Filter,
  type ReadPosition,
} from '@kurrent/kurrentdb-client';
import { FakeKurrentDb } from './fixtures/fake-kurrentdb.js';
import { WIRE_SERVER_VERSION } from './fixtures/kurrentdb-wire-server.js';
import { KURRENTDB_URL, announceKurrentServer, startKurrentTestServer, type KurrentTestServer } from './fixtures/kurrentdb-test-server.js';

// The two stand-ins agree, and agree with the server: the same operations, through the real client against
// the server (the wire-level stand-in, or the KurrentDB server at KURRENTDB_URL), and on the in-process
// FakeKurrentDb, give the same answers (revisions, error classes and their expected/actual states, what
// reads return, tombstones, stream metadata). Against a real server this checks the stand-ins' rules.
announceKurrentServer('KurrentDB stand-in agreement tests');

/** What the scenarios use of a client: the real one, or FakeKurrentDb. */
interface Client {
  appendToStream(stream: string, events: EventData[], options: { streamState: AppendStreamState }): Promise<unknown>;
  readStream(stream: string, options: { fromRevision: bigint | 'start' | 'end'; maxCount: bigint; direction?: 'forwards' | 'backwards' }): AsyncIterable<{ event?: { streamId: string; revision: bigint; type: string; isJson: boolean; data: unknown } }>;
  readAll(options: { fromPosition?: ReadPosition; maxCount?: number; filter?: Filter }): AsyncIterable<{ event?: { streamId: string; revision: bigint; type: string } }>;
  tombstoneStream(stream: string, options?: { expectedRevision?: AppendStreamState }): Promise<unknown>;
}

type Outcome = Record<string, unknown>;

function failure(error: unknown): Outcome {
  const e = error as Error & { expectedState?: unknown; actualState?: unknown };
  const out: Outcome = { error: e.constructor.name };
  if (e.expectedState !== undefined) out['expected'] = String(e.expectedState);
  if (e.actualState !== undefined) out['actual'] = String(e.actualState);
  return out;
}

async function step(what: () => Promise<Outcome>): Promise<Outcome> {
  try {
    return await what();
  } catch (error) {
    return failure(error);
  }
}

const bytes = (text: string) => Buffer.from(text, 'utf8');

/** The transcript of one run of the scenarios on a client, with stream names relative to `prefix`. */
async function scenarios(client: Client, prefix: string): Promise<Record<string, Outcome>> {
  const s = (name: string) => `${prefix}${name}`;
  const append = (stream: string, events: EventData[], streamState: AppendStreamState) =>
    step(async () => ({ next: String((await client.appendToStream(s(stream), events, { streamState }) as { nextExpectedRevision: bigint }).nextExpectedRevision) }));
  const read = (stream: string, options: Parameters<Client['readStream']>[1]) =>
    step(async () => {
      const events: unknown[] = [];
      for await (const r of client.readStream(s(stream), options)) {
        const e = r.event!;
        events.push([Number(e.revision), e.type, e.isJson, e.data instanceof Uint8Array ? Buffer.from(e.data).toString('utf8') : e.data]);
      }
      return { events };
    });
  const all = (filter: Filter) =>
    step(async () => {
      const events: unknown[] = [];
      for await (const r of client.readAll({ fromPosition: START, maxCount: 1000, filter })) {
        const e = r.event!;
        // Only this run's streams (a real server holds other tests' streams too), named without the prefix.
        if (!e.streamId.startsWith(prefix)) continue;
        events.push([e.streamId.slice(prefix.length), e.type, e.revision === 9223372036854775807n ? 'max' : Number(e.revision)]);
      }
      return { events };
    });
  const out: Record<string, Outcome> = {};
  out['create'] = await append('a', [binaryEvent({ type: 'First', data: bytes('one') })], NO_STREAM);
  out['create again'] = await append('a', [binaryEvent({ type: 'First', data: bytes('one again') })], NO_STREAM);
  out['at revision 0'] = await append('a', [binaryEvent({ type: 'Second', data: bytes('two') }), binaryEvent({ type: 'Third', data: bytes('three') })], 0n);
  out['at a stale revision'] = await append('a', [binaryEvent({ type: 'Late', data: bytes('late') })], 1n);
  out['at a revision ahead'] = await append('a', [binaryEvent({ type: 'Ahead', data: bytes('ahead') })], 9n);
  out['exists, but missing'] = await append('missing', [binaryEvent({ type: 'X', data: bytes('x') })], STREAM_EXISTS);
  out['revision, but missing'] = await append('missing', [binaryEvent({ type: 'X', data: bytes('x') })], 3n);
  out['exists'] = await append('a', [binaryEvent({ type: 'Fourth', data: bytes('four') })], STREAM_EXISTS);
  out['json'] = await append('j', [jsonEvent({ type: 'Json', data: { name: '室蘭', n: 1 } })], NO_STREAM);
  out['read forwards'] = await read('a', { fromRevision: 'start', maxCount: 10n });
  out['read from 1, 2'] = await read('a', { fromRevision: 1n, maxCount: 2n });
  out['read past the end'] = await read('a', { fromRevision: 10n, maxCount: 2n });
  out['read backwards from the end'] = await read('a', { fromRevision: 'end', maxCount: 2n, direction: 'backwards' });
  out['read backwards from 1'] = await read('a', { fromRevision: 1n, maxCount: 5n, direction: 'backwards' });
  out['read json'] = await read('j', { fromRevision: 'start', maxCount: 10n });
  out['read missing'] = await read('missing', { fromRevision: 'start', maxCount: 10n });
  out['tombstone at a wrong revision'] = await step(async () => (await client.tombstoneStream(s('a'), { expectedRevision: 1n }), {}));
  out['tombstone'] = await step(async () => (await client.tombstoneStream(s('a'), { expectedRevision: 3n }), {}));
  out['read tombstoned'] = await read('a', { fromRevision: 'start', maxCount: 10n });
  out['append to tombstoned'] = await append('a', [binaryEvent({ type: 'After', data: bytes('after') })], 'any');
  out['tombstone again'] = await step(async () => (await client.tombstoneStream(s('a')), {}));
  out['$all by name prefix'] = await all(streamNameFilter({ prefixes: [prefix] }));
  out['$all by name regex'] = await all(streamNameFilter({ regex: `^${prefix.replace(/[-.]/g, '\\$&')}j` }));
  out['$all by type prefix'] = await all(eventTypeFilter({ prefixes: ['Thi', 'Fou'] }));
  return out;
}

let server: KurrentTestServer;
beforeAll(async () => {
  server = await startKurrentTestServer();
});
afterAll(async () => {
  await server.dispose();
});

describe('the KurrentDB stand-ins agree with each other and with the server', () => {
  it('the same operations give the same answers through the client (server) and on FakeKurrentDb (in process)', async () => {
    const prefix = `agree-${randomUUID()}-`;
    const overWire = await scenarios(server.connect() as unknown as Client, prefix);
    const inProcess = await scenarios(new FakeKurrentDb() as unknown as Client, prefix);
    expect(overWire).toEqual(inProcess);
    // And what they agree on is KurrentDB's rules (pinned here, so that both cannot drift together).
    expect(overWire['create']).toEqual({ next: '0' });
    expect(overWire['create again']).toEqual({ error: 'WrongExpectedVersionError', expected: 'no_stream', actual: '0' });
    expect(overWire['at revision 0']).toEqual({ next: '2' });
    expect(overWire['at a stale revision']).toEqual({ error: 'WrongExpectedVersionError', expected: '1', actual: '2' });
    expect(overWire['exists, but missing']).toMatchObject({ error: 'WrongExpectedVersionError', actual: 'no_stream' });
    expect(overWire['exists']).toEqual({ next: '3' });
    expect(overWire['read forwards']).toEqual({ events: [[0, 'First', false, 'one'], [1, 'Second', false, 'two'], [2, 'Third', false, 'three'], [3, 'Fourth', false, 'four']] });
    expect(overWire['read backwards from the end']).toEqual({ events: [[3, 'Fourth', false, 'four'], [2, 'Third', false, 'three']] });
    expect(overWire['read json']).toEqual({ events: [[0, 'Json', true, { name: '室蘭', n: 1 }]] });
    expect(overWire['read missing']).toEqual({ error: 'StreamNotFoundError' });
    expect(overWire['tombstone at a wrong revision']).toEqual({ error: 'WrongExpectedVersionError', expected: '1', actual: '3' });
    expect(overWire['tombstone']).toEqual({});
    expect(overWire['read tombstoned']).toEqual({ error: 'StreamDeletedError' });
    expect(overWire['append to tombstoned']).toEqual({ error: 'StreamDeletedError' });
    expect(overWire['$all by name regex']).toEqual({ events: [['j', 'Json', 0]] });
    expect(overWire['$all by type prefix']).toEqual({ events: [['a', 'Third', 2], ['a', 'Fourth', 3]] });
    // The tombstoned stream's events stay in $all (until a scavenge), followed by its tombstone.
    expect(overWire['$all by name prefix']).toEqual({
      events: [['a', 'First', 0], ['a', 'Second', 1], ['a', 'Third', 2], ['a', 'Fourth', 3], ['j', 'Json', 0], ['a', '$streamDeleted', 'max']],
    });
  });

  it('the client appends through Streams.Append (BatchAppend is not advertised) and reads through the Rust half over the same server', async () => {
    if (server.wire === undefined) return; // the calls are counted by the stand-in
    const client = server.connect();
    const stream = `calls-${randomUUID()}`;
    const before = new Map(server.wire.calls);
    await client.appendToStream(stream, [binaryEvent({ type: 'X', data: bytes('x') })], { streamState: NO_STREAM });
    for await (const r of client.readStream(stream, { fromRevision: 'start', maxCount: 1n })) expect(r.event?.type).toBe('X');
    await client.setStreamMetadata(stream, { maxCount: 10 });
    expect(await client.getStreamMetadata(stream)).toMatchObject({ streamName: stream, metadata: { maxCount: 10 } });
    const delta = (m: string) => (server.wire!.calls.get(m) ?? 0) - (before.get(m) ?? 0);
    expect(delta('Append')).toBe(2);
    expect(delta('Read')).toBe(2);
    expect(server.wire.calls.get('GetSupportedMethods')).toBeGreaterThan(0);
    expect(server.wire.db.streams.get(`$$${stream}`)?.map((e) => [e.type, e.isJson])).toEqual([['$metadata', true]]);
    expect(WIRE_SERVER_VERSION).toMatch(/^24\./);
  });

  it('says which server it ran against', () => {
    expect(server.url).toBe(KURRENTDB_URL ?? server.wire!.url);
  });
});
