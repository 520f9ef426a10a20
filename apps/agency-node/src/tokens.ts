/** Injection tokens for values that are not classes. */
export const CLOCK = Symbol('CLOCK');
export const AGENCY_CONFIG = Symbol('AGENCY_CONFIG');
export type Clock = () => Date;
