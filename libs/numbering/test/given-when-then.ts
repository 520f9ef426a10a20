import { NumberingError, type Decider, type NumberingErrorCode } from '#numbering';
import { deciderSpec as spec } from '../../../test/support/given-when-then.js';

export { outcome } from '../../../test/support/given-when-then.js';

/** Given / when / then for the numbering deciders; `thenFails` takes a NumberingError code. */
export const deciderSpec = <S, C, E, EIn>(decider: Decider<S, C, E, EIn>) => spec<S, C, E, EIn, NumberingErrorCode>(decider, NumberingError);
