import type { NewEvent, TerminalOutcome } from '#ledger';

/**
 * Emmett's decider: pure functions over plain readonly records. `decide` throws a LinkageError for a
 * request that must change nothing, and returns events otherwise (an empty list means "already done").
 */
export interface Decider<State, Command, Event, EvolveEvent = Event> {
  readonly initialState: () => State;
  readonly evolve: (state: State, event: EvolveEvent) => State;
  readonly decide: (command: Command, state: State) => readonly Event[];
}

export interface LinkageCommand<T extends string, D> {
  readonly type: T;
  readonly data: Readonly<D>;
}

/** An event as a linkage decider emits it: the ledger's NewEvent with a literal type and schema version 1. */
export interface LinkageEvent<T extends string, D> extends NewEvent<D> {
  readonly type: T;
  readonly schemaVersion: 1;
  readonly data: D;
  readonly terminal?: TerminalOutcome;
  readonly claims?: readonly string[];
}

/** What `evolve` needs of an event: type and data. A stored RecordedEvent narrowed by type fits. */
export type Evolvable<E> = E extends { readonly type: infer T; readonly data: infer D } ? { readonly type: T; readonly data: D } : never;
