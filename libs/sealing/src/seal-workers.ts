import { Worker } from 'node:worker_threads';
import type { AppendRequest, NewEvent } from '#ledger';
import { sealSpecOf } from './catalog.js';
import { SealingError, type SealingErrorCode } from './errors.js';
import type { SealingKeys } from './keys.js';
import type { EventSealer } from './sealer.js';

/** What a seal worker is started with: the hub's keys and its key ring's file. */
export interface SealWorkerData {
  readonly keys: SealingKeys;
  readonly keyringPath: string;
}

/** One job: appends to seal, and the people they are about (read from the key ring at once). */
export interface SealJob {
  readonly id: number;
  readonly subjects: readonly string[];
  readonly appends: readonly { readonly streamId: string; readonly events: readonly NewEvent[] }[];
}

export interface SealJobAnswer {
  readonly id: number;
  readonly sealed: readonly ({ readonly events: readonly NewEvent[] } | { readonly error: { readonly code: SealingErrorCode; readonly message: string } })[];
}

/** An append sealed by a worker (its events in their stored form), or the sealing error it met. */
export type SealedAppend = { readonly request: AppendRequest } | { readonly error: SealingError };

/**
 * Sealing in worker threads (a fan-out of one notice to a million people: sealing is most of the main
 * thread's work per event, and the ledger's writer thread leaves a core half idle). Each worker seals with
 * `EventSealer.seal` itself — the same keys, the same key ring file (its own connection), so the stored
 * form is exactly what `SealedEventStore` would append: a fresh nonce per event, the person's key and the
 * year's key. Only for the hub's own SQLite key ring (a shared ring makes keys durable elsewhere first).
 *
 * A person this hub has erased is never handed to a worker: the caller's sealer (whose ring saw the shred)
 * is asked first, and the append answers KEY_SHREDDED, as the inline seal would. A worker reads each job's
 * person keys from the ring's file afresh (no key is kept from one job to the next).
 */
/** tsx's loader API, which a worker under the TypeScript sources registers (development and tests only). */
const TSX_API = 'tsx/esm/api';

export class SealWorkers {
  readonly #workers: Worker[] = [];
  readonly #waiting = new Map<number, { resolve: (a: SealJobAnswer) => void; reject: (e: Error) => void }>();
  readonly #sealer: EventSealer;
  #next = 0;
  #failed: Error | undefined;

  constructor(options: { readonly keys: SealingKeys; readonly keyringPath: string; readonly threads: number; readonly sealer: EventSealer }) {
    if (!Number.isInteger(options.threads) || options.threads < 1) throw new Error(`seal workers need at least one thread, got ${options.threads}`);
    this.#sealer = options.sealer;
    // The keys as data (a function, such as loadKek, does not cross to a thread). A worker wraps under the KEK
    // current when it started: a rotation while it runs leaves its new keys to the next re-wrap (docs/key-rotation.md).
    const { loadKek: _loadKek, ...keys } = options.keys;
    void _loadKek;
    const data: SealWorkerData = { keys, keyringPath: options.keyringPath };
    const source = import.meta.url.endsWith('.ts');
    const entry = new URL(source ? './seal-worker.ts' : './seal-worker.js', import.meta.url).href;
    // Under the TypeScript sources (tsx), the loader's hooks do not reach worker threads: the worker registers
    // them first. tsx is a dev dependency: the built code (an image) never takes this branch.
    const code = source ? `import(${JSON.stringify(TSX_API)}).then((tsx) => { tsx.register(); return import(${JSON.stringify(entry)}); })` : `import(${JSON.stringify(entry)})`;
    for (let t = 0; t < options.threads; t++) {
      const worker = new Worker(code, { eval: true, workerData: data, resourceLimits: { maxYoungGenerationSizeMb: 32 } });
      worker.on('message', (answer: SealJobAnswer) => {
        const w = this.#waiting.get(answer.id);
        this.#waiting.delete(answer.id);
        w?.resolve(answer);
      });
      worker.on('error', (error) => this.#fail(error));
      worker.on('exit', (code) => {
        if (code !== 0) this.#fail(new Error(`a seal worker exited with code ${code}`));
      });
      worker.unref();
      this.#workers.push(worker);
    }
  }

  #fail(error: Error): void {
    this.#failed ??= error;
    for (const w of this.#waiting.values()) w.reject(error);
    this.#waiting.clear();
  }

  /** The appends with their events sealed, in order; an append about an erased person answers KEY_SHREDDED. */
  async seal(requests: readonly AppendRequest[]): Promise<SealedAppend[]> {
    if (this.#failed !== undefined) throw this.#failed;
    const out: (SealedAppend | undefined)[] = new Array<SealedAppend | undefined>(requests.length);
    const subjects: string[] = [];
    const places: number[] = [];
    const appends: { streamId: string; events: readonly NewEvent[] }[] = [];
    requests.forEach((request, i) => {
      let erased = false;
      for (const e of request.events) {
        const field = sealSpecOf(e.type)?.subjectField;
        const subject = field === undefined ? undefined : (e.data as Record<string, unknown> | null)?.[field];
        if (typeof subject !== 'string') continue;
        if (this.#sealer.isErased(subject)) erased = true;
        else subjects.push(subject);
      }
      if (erased) out[i] = { error: new SealingError('KEY_SHREDDED', 'this person\'s key was shredded (erasure): nothing more is recorded about them', {}) };
      else {
        places.push(i);
        appends.push({ streamId: request.streamId, events: request.events });
      }
    });
    if (appends.length > 0) {
      const id = this.#next++;
      const worker = this.#workers[id % this.#workers.length]!;
      const answer = await new Promise<SealJobAnswer>((resolve, reject) => {
        this.#waiting.set(id, { resolve, reject });
        worker.postMessage({ id, subjects, appends } satisfies SealJob);
      });
      answer.sealed.forEach((s, k) => {
        const i = places[k]!;
        out[i] = 'error' in s ? { error: new SealingError(s.error.code, s.error.message, {}) } : { request: { ...requests[i]!, events: s.events } };
      });
    }
    return out as SealedAppend[];
  }

  async close(): Promise<void> {
    await Promise.all(this.#workers.splice(0).map((w) => w.terminate()));
  }
}
