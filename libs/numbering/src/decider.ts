import type { NewEvent } from '#ledger';

/** Emmett's decider: pure functions over plain readonly records. `decide` throws a NumberingError or returns events. */
export interface Decider<State, Command, Event, EvolveEvent = Event> {
  readonly initialState: () => State;
  readonly evolve: (state: State, event: EvolveEvent) => State;
  readonly decide: (command: Command, state: State) => readonly Event[];
}

export interface NumberingCommand<T extends string, D> {
  readonly type: T;
  readonly data: Readonly<D>;
}

/**
 * An event as a numbering decider emits it: the ledger's NewEvent with a literal type. Every numbering
 * command is a single-event business transaction, so its one event ends the serial (`terminal: 'completed'`).
 */
export interface NumberingEvent<T extends string, D> extends NewEvent<D> {
  readonly type: T;
  readonly schemaVersion: 1;
  readonly data: D;
  readonly terminal: 'completed';
  readonly claims?: readonly string[];
}

/** What `evolve` needs of an event: type and data. A stored RecordedEvent narrowed by type fits. */
export type Evolvable<E> = E extends { readonly type: infer T; readonly data: infer D } ? { readonly type: T; readonly data: D } : never;
