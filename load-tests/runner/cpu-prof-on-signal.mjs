// Preloaded (`node --cpu-prof --import <this file> …`) into a process that ends by re-raising SIGTERM or SIGINT
// after its shutdown hooks (Nest's enableShutdownHooks does): V8 writes a --cpu-prof profile only on a normal
// exit, so the re-raised signal becomes process.exit with the signal's usual status (128 + its number).
import process from 'node:process';

const kill = process.kill.bind(process);
const STATUS = { SIGTERM: 143, SIGINT: 130 };
process.kill = (pid, signal) => {
  if (pid === process.pid && typeof signal === 'string' && signal in STATUS) process.exit(STATUS[signal]);
  return kill(pid, signal);
};
