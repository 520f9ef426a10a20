/**
 * Injection token of the ledger's EventStore port as stored: events as the log holds them (personal fields
 * sealed). Followers of the log, the tree, the relay and the audit endpoints read this.
 */
export const EVENT_STORE = Symbol('EVENT_STORE');
/**
 * Injection token of the ledger as command handlers use it (a SealedEventStore over EVENT_STORE): appends
 * seal the personal fields of each decided event, reads give events opened again.
 */
export const LEDGER = Symbol('LEDGER');
/** Injection token of the clock: `() => Date`. Handlers read time only through it. */
export const CLOCK = Symbol('CLOCK');
export type Clock = () => Date;
/**
 * Injection token of the KurrentDB client the hub's log (and its leadership lease) live on, when
 * HUB_EVENT_STORE is a KurrentDB connection string; `null` on the embedded SQLite ledger.
 */
export const KURRENTDB_CLIENT = Symbol('KURRENTDB_CLIENT');
