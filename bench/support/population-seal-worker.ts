/**
 * A worker thread of bench/support/population-log.ts: decides and seals groups of people with the hub's
 * keys (PeopleSealer) and posts the sealed appends back, in the order it was asked, as one JSON text per
 * group: copying one long string to the main thread and parsing it there costs a fraction of the
 * structured clone of the appends' hundred thousand small objects.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { PeopleSealer, type SealingContext } from './population-log.js';

const sealer = new PeopleSealer(workerData as SealingContext);
parentPort!.on('message', ({ from, to }: { from: number; to: number }) => {
  parentPort!.postMessage(JSON.stringify(sealer.group(from, to)));
});
