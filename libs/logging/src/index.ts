export * from './json-logs.js';
