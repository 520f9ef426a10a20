/**
 * A worker thread of SealWorkers: seals the events of appends with the hub's keys and its key ring (its own
 * connection to the ring's file), and answers each request in the order it was asked.
 */
import { parentPort, workerData } from 'node:worker_threads';
import type { NewEvent } from '#ledger';
import { SealingError } from './errors.js';
import type { SealingKeys } from './keys.js';
import { EventSealer } from './sealer.js';
import { SqliteKeyring } from './sqlite-keyring.js';
import type { SealJob, SealJobAnswer, SealWorkerData } from './seal-workers.js';

const data = workerData as SealWorkerData;
const buffer = (b: Uint8Array): Buffer => Buffer.from(b.buffer, b.byteOffset, b.byteLength);
const keys: SealingKeys = {
  kid: data.keys.kid,
  locator: buffer(data.keys.locator),
  keyEncryption: buffer(data.keys.keyEncryption),
  handle: buffer(data.keys.handle),
  hub: buffer(data.keys.hub),
  ...(data.keys.kekId === undefined ? {} : { kekId: data.keys.kekId }),
  ...(data.keys.previousKeks === undefined ? {} : { previousKeks: new Map([...data.keys.previousKeks].map(([id, k]) => [id, buffer(k)])) }),
};
// A small cache: each job's people are read afresh (a key shredded since the last job is not sealed from memory).
const ring = new SqliteKeyring({ path: data.keyringPath, keys, cacheSize: 16 });

parentPort!.on('message', (job: SealJob) => {
  // A sealer per job: nothing of an earlier job's people is kept in its caches.
  const sealer = new EventSealer(keys, ring);
  sealer.prepareSubjects(job.subjects);
  const answer: SealJobAnswer = {
    id: job.id,
    sealed: job.appends.map(({ streamId, events }) => {
      try {
        return { events: events.map((e: NewEvent) => sealer.seal(streamId, e)) };
      } catch (error) {
        if (error instanceof SealingError) return { error: { code: error.code, message: error.message } };
        throw error;
      }
    }),
  };
  parentPort!.postMessage(answer);
});
