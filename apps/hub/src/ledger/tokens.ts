/** Injection token of the ledger's EventStore port. */
export const EVENT_STORE = Symbol('EVENT_STORE');
/** Injection token of the clock: `() => Date`. Handlers read time only through it. */
export const CLOCK = Symbol('CLOCK');
export type Clock = () => Date;
