export * from './errors.js';
export * from './keys.js';
export * from './catalog.js';
export * from './commitment.js';
export * from './keyring.js';
export * from './sqlite-keyring.js';
export * from './sealer.js';
export * from './sealed-event-store.js';
