import { corporateNumberDecider, type CorporateNumberEvent, type CorporateNumberState, type Evolvable } from '#numbering';
import type { Fold } from '../ledger/load-stream.js';

export const corporateNumberFold: Fold<CorporateNumberState, Evolvable<CorporateNumberEvent>> = {
  initialState: corporateNumberDecider.initialState,
  evolve: corporateNumberDecider.evolve,
  types: new Set(['CorporateNumberDesignated', 'CorporateNumberChanged', 'CorporateNumberClosed']),
};
