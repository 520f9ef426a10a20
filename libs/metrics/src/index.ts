export * from './http-metrics.js';
