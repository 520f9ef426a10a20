/**
 * Injection token of the hub's Leadership (leadership.ts) when its log is on KurrentDB; `null` on the
 * embedded SQLite ledger, where the one hub process always leads.
 */
export const LEADERSHIP = Symbol('LEADERSHIP');
