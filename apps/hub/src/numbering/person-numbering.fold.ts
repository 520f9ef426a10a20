import { personNumberingDecider, type PersonNumberingEvent, type PersonNumberingState, type Evolvable } from '#numbering';
import type { Fold } from '../ledger/load-stream.js';

export const personNumberingFold: Fold<PersonNumberingState, Evolvable<PersonNumberingEvent>> = {
  initialState: personNumberingDecider.initialState,
  evolve: personNumberingDecider.evolve,
  types: new Set(['IndividualNumberIssued', 'IndividualNumberChanged']),
};
