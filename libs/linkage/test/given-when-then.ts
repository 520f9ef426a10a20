import { LinkageError, type Decider, type LinkageErrorCode } from '#linkage';
import { deciderSpec as spec } from '../../../test/support/given-when-then.js';

/** Given / when / then for the linkage deciders; `thenFails` takes a LinkageError code. */
export const deciderSpec = <S, C, E, EIn>(decider: Decider<S, C, E, EIn>) => spec<S, C, E, EIn, LinkageErrorCode>(decider, LinkageError);
