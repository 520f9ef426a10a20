import type { EventStore, ExpectedRevision, RecordedEvent } from '#ledger';

export interface LoadedStream<S> {
  readonly state: S;
  /** What to append with: 'no_stream' for a new stream, else its last revision. */
  readonly expectedRevision: ExpectedRevision;
}

export interface Fold<S, E> {
  readonly initialState: () => S;
  readonly evolve: (state: S, event: E) => S;
  /** The event types `evolve` knows; others (e.g. a recovery SerialVoided) leave the state as it is. */
  readonly types: ReadonlySet<string>;
}

/** Load step of a handler: read the stream and fold it with the decider's evolve. */
export async function loadStream<S, E extends { readonly type: string }>(store: EventStore, streamId: string, fold: Fold<S, E>): Promise<LoadedStream<S>> {
  const events = await store.readStream(streamId);
  let state = fold.initialState();
  for (const event of events) {
    if (fold.types.has(event.type)) state = fold.evolve(state, event as RecordedEvent as unknown as E);
  }
  const last = events.at(-1);
  return { state, expectedRevision: last === undefined ? 'no_stream' : last.streamRevision };
}
