export * from './errors.js';
export * from './relay-message.js';
export * from './dedupe.js';
export * from './relay-checkpoint.js';
export * from './kafka-relay.js';
export * from './relay-consumer.js';
