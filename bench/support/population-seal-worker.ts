/**
 * A worker thread of bench/support/population-log.ts: decides and seals groups of people with the hub's
 * keys (PeopleSealer) and posts the sealed appends back, in the order it was asked. As objects: a group's
 * structured clone (posted and received) took 15–20 µs per event here, one JSON text 21–37 µs (its parse
 * in the main thread the larger part).
 */
import { parentPort, workerData } from 'node:worker_threads';
import { PeopleSealer, type SealingContext } from './population-log.js';

const sealer = new PeopleSealer(workerData as SealingContext);
parentPort!.on('message', ({ from, to }: { from: number; to: number }) => {
  parentPort!.postMessage(sealer.group(from, to));
});
