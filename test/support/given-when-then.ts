import { expect } from 'vitest';

/** The decider shape shared by the pure libs (Emmett style). */
export interface SpecDecider<S, C, E, EIn> {
  initialState(): S;
  evolve(state: S, event: EIn): S;
  decide(command: C, state: S): readonly E[];
}

/**
 * Decider tests as given / when / then: fold the given events with `evolve` from `initialState()`,
 * run `decide`, and compare the events, or the error class and its stable `code`.
 */
export function deciderSpec<S, C, E, EIn, Code extends string>(
  decider: SpecDecider<S, C, E, EIn>,
  errorClass: abstract new (...args: never[]) => Error & { readonly code: Code },
) {
  return {
    given(events: readonly EIn[]) {
      const state = events.reduce((s, e) => decider.evolve(s, e), decider.initialState());
      return {
        state,
        when(command: C) {
          const run = (): readonly E[] => decider.decide(command, state);
          return {
            then(expected: readonly E[]): void {
              expect(run()).toEqual(expected);
            },
            thenEvents(): readonly E[] {
              return run();
            },
            thenFails(code: Code, message?: RegExp): void {
              expect(run).toThrow(errorClass);
              expect(run).toThrow(expect.objectContaining({ code }));
              if (message !== undefined) expect(run).toThrow(message);
            },
          };
        },
      };
    },
  };
}

/** Runs `fn` and reports what happened, so that assertions stay outside any try/catch. */
export function outcome<T>(fn: () => T): { readonly ok: true; readonly value: T } | { readonly ok: false; readonly error: unknown } {
  try {
    return { ok: true, value: fn() };
  } catch (error) {
    return { ok: false, error };
  }
}
