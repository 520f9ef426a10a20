export * from './http-metrics.js';
export * from './exposition.js';
