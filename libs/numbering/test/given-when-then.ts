import { expect } from 'vitest';
import { NumberingError, type Decider, type NumberingErrorCode } from '#numbering';

/**
 * Decider tests as given / when / then: fold the given events with `evolve` from `initialState()`,
 * run `decide`, and compare the events or the error code.
 */
export function deciderSpec<S, C, E, EIn>(decider: Decider<S, C, E, EIn>) {
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
            thenFails(code: NumberingErrorCode, message?: RegExp): void {
              expect(run).toThrow(NumberingError);
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
