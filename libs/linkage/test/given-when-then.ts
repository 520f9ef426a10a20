import { expect } from 'vitest';
import { LinkageError, type Decider, type LinkageErrorCode } from '#linkage';

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
            thenFails(code: LinkageErrorCode, message?: RegExp): void {
              expect(run).toThrow(LinkageError);
              expect(run).toThrow(expect.objectContaining({ code }));
              if (message !== undefined) expect(run).toThrow(message);
            },
          };
        },
      };
    },
  };
}
