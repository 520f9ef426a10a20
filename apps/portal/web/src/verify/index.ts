export * from './bytes.js';
export * from './commitment.js';
export * from './jcs.js';
export * from './merkle.js';
export * from './note.js';
export * from './verify-record.js';
export * from './key-chain.js';
