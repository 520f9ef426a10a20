/**
 * A population-sized log for `npm run bench:population`, written into a hub's data directory through the
 * ledger as the hub writes it: SqliteEventStore with the Merkle tree kept by its writer, sealed through
 * SealedEventStore with the hub's own sealing keys and key ring (I10), events decided by the real
 * deciders. For each numbered person: IndividualNumberIssued (as POST /v1/individual-numbers appends it,
 * actor operator:hub) and two AgencyCodeIssued (as POST /v1/agency-codes appends them for the Japan
 * Pension Service and Muroran City, codes minted by the hub's code locator). Each append opens and ends
 * its own serial, as the hub's do; many appends are in flight at once so that the ledger commits them in
 * large groups.
 *
 * People are numbered 0..N-1 and derived from a seed kept in the data directory: person i's subject id,
 * individual number, resident record code and the random part of both codes are keyed hashes of i, so a
 * rerun (or the linkage phase) can name any person's codes again without storing them.
 */
import { createHmac } from 'node:crypto';
import { getPriority, setPriority } from 'node:os';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { SqliteEventStore, type EventId, type EventMetadata, type NewEvent, type RecordedEvent, type SerialNumber } from '#ledger';
import {
  agencyCodeStreamId,
  agencyFacts,
  agencyStreamId,
  decideAgencyCode,
  evolveAgencyRegistry,
  initialAgencyCodeState,
  initialAgencyRegistryState,
  type AgencyCode,
  type AgencyFacts,
  type AgencyId,
  type AgencyRegistryEvent,
  type Evolvable,
} from '#linkage';
import type { CodeLocator } from '#mapper';
import { decidePersonNumbering, individualNumberFromRandomBase, initialPersonNumberingState, personNumberingStreamId, type MyNumber } from '#numbering';
import { EventSealer, KEYRING_FILE, SealedEventStore, SqliteKeyring } from '#sealing';
import { NUMBERING_OPERATOR } from '../../apps/hub/src/linkage/authenticator.js';
import { agencyCodeDigest } from '../../apps/hub/src/linkage/codes/agency-codes.js';
import { loadOrCreateCodeLocator, newBearerToken, tokenDigest } from '../../apps/hub/src/linkage/hub-secrets.js';
import { loadOrCreateSealingKeys } from '../../apps/hub/src/sealing/sealing-keys.js';
import { LookupSeal } from '../../apps/hub/src/state/lookup-seal.js';
import { LOOKUPS_FILE, SqliteLookupStore } from '../../apps/hub/src/state/lookup-store.js';
import { IdentifierVault } from '../../apps/hub/src/vault/identifier-vault.js';
import { loadOrCreateVaultKeys } from '../../apps/hub/src/vault/vault-keys.js';

export const PENSION = 'jpn-pension-service' as AgencyId;
export const MURORAN_CITY = 'muroran-city' as AgencyId;
/** Muroran's local government code: every generated person is a resident of Muroran. */
export const MURORAN_MUNICIPALITY = '012050';

/** The parts of person i that the seed decides. */
export interface GeneratedPerson {
  readonly subjectId: string;
  readonly individualNumber: string;
  readonly residentRecordCode: string;
}

/** Person i, derived from the seed (hex). Numbers and resident record codes are distinct per i. */
export class Population {
  readonly #seed: Buffer;

  constructor(
    seedHex: string,
    readonly locator: CodeLocator,
  ) {
    this.#seed = Buffer.from(seedHex, 'hex');
  }

  #bytes(what: string): Buffer {
    return createHmac('sha256', this.#seed).update(what).digest();
  }

  person(i: number): GeneratedPerson {
    const h = this.#bytes(`subject|${i}`).toString('hex');
    // A version-4 UUID (the hub draws its subject ids with randomUUID()).
    const subjectId = `${h.slice(0, 8)}-${h.slice(8, 12)}-4${h.slice(13, 16)}-${((parseInt(h[16]!, 16) & 3) | 8).toString(16)}${h.slice(17, 20)}-${h.slice(20, 32)}`;
    return {
      subjectId,
      individualNumber: individualNumberFromRandomBase(String(10_000_000_000 + i)),
      residentRecordCode: String(20_000_000_000 + i),
    };
  }

  /** The code the hub minted for person i and this agency (its random part from the seed). */
  code(i: number, agencyId: string, subjectId: string = this.person(i).subjectId): AgencyCode {
    return this.locator.mint(subjectId, this.#bytes(`code|${i}|${agencyId}`).subarray(0, 9));
  }
}

export interface WritePeopleOptions {
  readonly dataDir: string;
  readonly nodeId: number;
  readonly people: number;
  readonly seedHex: string;
  /** People per group: their subject keys are made in one key ring transaction, their appends go out together. */
  readonly group?: number;
  /** Groups whose appends may be in flight at once. */
  readonly groupsInFlight?: number;
  /** Worker threads that decide and seal (0: this thread does). */
  readonly sealThreads?: number;
  /**
   * Fold the hub's look-ups file (lookups.db, apps/hub/src/state/lookup-store.ts) as the groups become
   * durable, as a live hub keeps it while it appends, from the events' data before sealing (nothing is
   * opened again): the hub's first start then resumes at the log's head instead of rebuilding the file
   * from the whole log. Default false (the hub builds it at its first start).
   */
  readonly lookups?: boolean;
  /**
   * Niceness of the write (0–19): this thread's, set before the ledger's writer thread and the seal
   * workers start (they inherit it), and this thread's own restored when the write ends, so that what
   * runs after (the hub, measured) is not niced. Default: left as it is.
   */
  readonly nice?: number;
  /** Called after each group is durable, with the opened AgencyCodeIssued events of the group in position order. */
  readonly onGroup?: (done: { people: number; events: number; codes: readonly RecordedEvent[] }) => Promise<void> | void;
}

export interface WrittenPeople {
  readonly events: number;
  readonly seconds: number;
  /** CPU seconds of this process over the write, all its threads (the seal workers and the ledger's writer included). */
  readonly cpuSeconds?: number;
  readonly firstPosition: number;
  readonly lastPosition: number;
  /** Where the wall time went: seconds deciding and sealing (in this thread), folding the look-ups, in `onGroup`; each thread's busy share. */
  readonly phases?: { readonly sealSeconds: number; readonly foldSeconds: number; readonly onGroupSeconds: number; readonly mainBusy: number; readonly writerBusy: number };
}

/** The registry's facts about an agency, folded from its stream as the hub's views fold it. */
async function factsOf(store: SealedEventStore, agencyId: AgencyId): Promise<AgencyFacts> {
  const events = await store.readStream(agencyStreamId(agencyId));
  const state = events.reduce((s, e) => evolveAgencyRegistry(s, e as unknown as Evolvable<AgencyRegistryEvent>), initialAgencyRegistryState());
  const facts = agencyFacts(state);
  if (facts === undefined) throw new Error(`agency ${agencyId} is not registered in the hub's log: register it at the hub first`);
  return facts;
}

/** One append the hub would make, its events already sealed; for a code, the event's opened data too (for the mapper). */
export interface SealedAppend {
  readonly streamId: string;
  readonly events: readonly NewEvent[];
  readonly metadata: EventMetadata;
  readonly opened?: { readonly type: string; readonly schemaVersion: number; readonly data: unknown; readonly recordedAt: string };
  /** Every event of the append as decided, before sealing (for the look-ups' fold), in order. */
  readonly plain?: readonly { readonly type: string; readonly schemaVersion: number; readonly data: unknown }[];
}

/** What deciding and sealing a group of people needs: the hub's keys in its data directory, the seed, the agencies' facts. */
export interface SealingContext {
  readonly dataDir: string;
  readonly seedHex: string;
  readonly agencies: readonly AgencyFacts[];
  /** Base of the people's issue instants (person i at baseMs + i). */
  readonly baseMs: number;
}

/**
 * Decides and seals the appends of people [from, to) as the hub's handlers do: a number issued, then
 * each agency's code acquired. Makes the people's key ring keys in one transaction first.
 */
export class PeopleSealer {
  readonly #ring: SqliteKeyring;
  readonly #sealer: EventSealer;
  readonly #vault: IdentifierVault;
  readonly #population: Population;
  readonly #context: SealingContext;

  constructor(context: SealingContext) {
    const keysDir = join(context.dataDir, 'keys');
    const keys = loadOrCreateSealingKeys(keysDir);
    this.#ring = new SqliteKeyring({ path: join(context.dataDir, KEYRING_FILE), keys });
    this.#sealer = new EventSealer(keys, this.#ring);
    this.#vault = new IdentifierVault(loadOrCreateVaultKeys(keysDir));
    this.#population = new Population(context.seedHex, loadOrCreateCodeLocator(keysDir));
    this.#context = context;
  }

  group(from: number, to: number): SealedAppend[] {
    const { baseMs, agencies } = this.#context;
    const vault = this.#vault;
    const sealer = this.#sealer;
    const persons = Array.from({ length: to - from }, (_, k) => this.#population.person(from + k));
    // The key ring's per-person keys in one transaction (the sealer would otherwise make them one by one).
    this.#ring.ensureSubjectKeys(persons.map((p) => p.subjectId));
    const out: SealedAppend[] = [];
    persons.forEach((p, k) => {
      const i = from + k;
      const at = new Date(baseMs + i).toISOString();
      const correlation = `population-${baseMs.toString(36)}-${i.toString(36)}`;
      const citizenSecret = newBearerToken();
      const residentDigest = vault.digest('resident-record-code', p.residentRecordCode);
      const issued = decidePersonNumbering(
        {
          type: 'IssueIndividualNumber',
          data: {
            subjectId: p.subjectId,
            municipalityCode: MURORAN_MUNICIPALITY,
            municipalityKnown: true,
            number: p.individualNumber as MyNumber,
            numberDigest: vault.digest('individual-number', p.individualNumber),
            residentDigest,
            identifiers: { individualNumber: p.individualNumber, residentRecordCode: p.residentRecordCode, citizenSecret },
            citizenCredentialDigest: tokenDigest(citizenSecret),
            issuedAt: at,
          },
        },
        initialPersonNumberingState(),
      );
      const numberingStream = personNumberingStreamId(residentDigest);
      out.push({
        streamId: numberingStream,
        events: issued.map((e) => sealer.seal(numberingStream, e)),
        metadata: { actor: NUMBERING_OPERATOR, correlationId: `${correlation}-n` },
        plain: issued.map((e) => ({ type: e.type, schemaVersion: e.schemaVersion ?? 1, data: e.data })),
      });
      for (const agency of agencies) {
        const code = this.#population.code(i, agency.agencyId, p.subjectId);
        const acquisitionNumber = `${agency.agencyId === PENSION ? 'JPS' : 'MRN'}-${i}`;
        const decided = decideAgencyCode(
          {
            type: 'AcquireAgencyCode',
            data: { subjectId: p.subjectId, agencyId: agency.agencyId, agency, acquisitionNumber, candidateCode: code, candidateCodeDigest: agencyCodeDigest(sealer, code), acquiredAt: at },
          },
          initialAgencyCodeState(),
        );
        const streamId = agencyCodeStreamId(sealer.handle('agency-code-stream', `${p.subjectId}|${agency.agencyId}`));
        const e = decided[0]!;
        out.push({
          streamId,
          events: decided.map((d) => sealer.seal(streamId, d)),
          metadata: { actor: `agency:${agency.agencyId}`, correlationId: `${correlation}-${agency.agencyId}` },
          opened: { type: e.type, schemaVersion: e.schemaVersion ?? 1, data: e.data, recordedAt: at },
          plain: decided.map((d) => ({ type: d.type, schemaVersion: d.schemaVersion ?? 1, data: d.data })),
        });
      }
    });
    return out;
  }

  close(): void {
    this.#ring.close();
  }
}

/**
 * The writer's ledger filters (streams, idempotency keys, claims): sized for the log it writes, about
 * 16 bits per key (3 per person), from the ledger's default 4 MiB to 256 MiB each. With the default at
 * 30,000,000 keys nearly every new stream and claim would also be looked up in the index (a false-positive
 * rate near 80 %). The hub does not inherit them: a hub whose filter size differs rebuilds its own from
 * the log at its first open (the bench's untimed start) and saves them at its clean close.
 */
export function writerFilterBytes(people: number): number {
  const bytes = 2 ** Math.ceil(Math.log2(Math.max(1, people * 3 * 2)));
  return Math.min(256 * 1024 * 1024, Math.max(4 * 1024 * 1024, bytes));
}

/**
 * Appends the people to the hub's ledger in its data directory (the hub must not be running on it).
 * Every append is the one the hub would make: same stream, expected revision, serial, actor and sealing
 * (SealedEventStore seals then appends to the raw store; here the sealing may run in worker threads,
 * the appends stay in this thread, in person order).
 */
export async function writePeople(options: WritePeopleOptions): Promise<WrittenPeople> {
  const { dataDir, people } = options;
  const GROUP = options.group ?? 2000;
  const IN_FLIGHT = options.groupsInFlight ?? 3;
  const THREADS = options.sealThreads ?? 0;
  const keysDir = join(dataDir, 'keys');
  const keys = loadOrCreateSealingKeys(keysDir);
  const priorityBefore = getPriority();
  if (options.nice !== undefined) setPriority(options.nice);
  const raw = new SqliteEventStore({ path: join(dataDir, 'ledger.sqlite'), nodeId: options.nodeId, tree: true, filters: { bytes: writerFilterBytes(people) } });
  const started = process.hrtime.bigint();
  const cpuStarted = process.cpuUsage();
  const mainElu = performance.eventLoopUtilization();
  const writerElu = raw.writerUtilization();
  const clock = { seal: 0, fold: 0, onGroup: 0 };
  const timed = async <T>(what: keyof typeof clock, run: () => T | Promise<T>): Promise<T> => {
    const t0 = performance.now();
    try {
      return await run();
    } finally {
      clock[what] += (performance.now() - t0) / 1000;
    }
  };
  let firstPosition = -1;
  let lastPosition = -1;
  let events = 0;
  const workers: Worker[] = [];
  let inline: PeopleSealer | undefined;
  let ring: SqliteKeyring | undefined;
  let lookups: LookupFolder | undefined;
  let phases: WrittenPeople['phases'];
  try {
    firstPosition = await raw.head();
    ring = new SqliteKeyring({ path: join(dataDir, KEYRING_FILE), keys });
    const hubSealer = new EventSealer(keys, ring);
    const opened = new SealedEventStore(raw, hubSealer);
    const agencies = [await factsOf(opened, PENSION), await factsOf(opened, MURORAN_CITY)];
    if (options.lookups === true) {
      lookups = new LookupFolder(dataDir, hubSealer, raw);
      await lookups.catchUp(firstPosition);
    } else {
      ring.close();
      ring = undefined;
    }
    const context: SealingContext = { dataDir, seedHex: options.seedHex, agencies, baseMs: Date.now() };

    // Sealing: inline, or spread over worker threads (round robin; each answers its groups in order).
    let seal: (from: number, to: number) => Promise<SealedAppend[]>;
    if (THREADS === 0) {
      const sealer = (inline = new PeopleSealer(context));
      seal = async (from, to) => timed('seal', () => sealer.group(from, to));
    } else {
      const waiting: { resolve: (appends: SealedAppend[]) => void; reject: (error: Error) => void }[][] = [];
      for (let t = 0; t < THREADS; t++) {
        // tsx's loader hooks do not reach worker threads: the worker registers them, then loads the module.
        const main = new URL('./population-seal-worker.ts', import.meta.url).href;
        const worker = new Worker(`import('tsx/esm/api').then((tsx) => { tsx.register(); return import(${JSON.stringify(main)}); })`, { eval: true, workerData: context });
        waiting.push([]);
        worker.on('message', (appends: SealedAppend[]) => waiting[t]!.shift()!.resolve(appends));
        worker.on('error', (error) => {
          for (const w of waiting[t]!.splice(0)) w.reject(error);
        });
        workers.push(worker);
      }
      let next = 0;
      seal = (from, to) => {
        const t = next++ % THREADS;
        return new Promise<SealedAppend[]>((resolve, reject) => {
          waiting[t]!.push({ resolve, reject });
          workers[t]!.postMessage({ from, to });
        });
      };
    }

    /** One group's appends, made in person order; resolves with its opened code events once all are durable (and folds the look-ups). */
    const appendGroup = (appends: readonly SealedAppend[]): Promise<RecordedEvent[]> =>
      Promise.all(
        appends.map((a) =>
          raw.append({ streamId: a.streamId, expectedRevision: 'no_stream', events: a.events, serial: { allocate: true }, metadata: a.metadata }).then((r) => {
            const recorded = (k: number, e: { type: string; schemaVersion: number; data: unknown }, recordedAt: string): RecordedEvent => ({
              eventId: r.eventIds[k]! as EventId,
              type: e.type,
              schemaVersion: e.schemaVersion,
              streamId: a.streamId,
              streamRevision: k,
              position: r.firstPosition + k,
              serial: r.serial as SerialNumber,
              terminal: 'completed',
              recordedAt,
              data: e.data,
              metadata: a.metadata,
            });
            const recordedAt = a.opened?.recordedAt ?? new Date().toISOString();
            return {
              code: a.opened === undefined ? undefined : recorded(0, a.opened, a.opened.recordedAt),
              plain: lookups === undefined || a.plain === undefined ? [] : a.plain.map((e, k) => recorded(k, e, recordedAt)),
            };
          }),
        ),
      ).then(async (all) => {
        if (lookups !== undefined) await timed('fold', () => lookups!.fold(all.flatMap((x) => x.plain).sort((a, b) => a.position - b.position)));
        return all.flatMap((x) => (x.code === undefined ? [] : [x.code])).sort((a, b) => a.position - b.position);
      });

    // Sealed groups are appended in order; sealing runs up to IN_FLIGHT groups ahead.
    const sealed: { to: number; appends: Promise<SealedAppend[]> }[] = [];
    const appending: { to: number; done: Promise<RecordedEvent[]> }[] = [];
    let written = 0;
    let nextFrom = 0;
    const refill = () => {
      while (sealed.length < Math.max(IN_FLIGHT, THREADS * 2) && nextFrom < people) {
        const to = Math.min(people, nextFrom + GROUP);
        sealed.push({ to, appends: seal(nextFrom, to) });
        nextFrom = to;
      }
    };
    const settleOldest = async () => {
      const { to, done } = appending.shift()!;
      const codes = await done;
      events += (to - written) * 3;
      written = to;
      await timed('onGroup', () => options.onGroup?.({ people: written, events, codes }));
    };
    refill();
    while (sealed.length > 0) {
      const { to, appends } = sealed.shift()!;
      const ready = await appends;
      refill();
      appending.push({ to, done: appendGroup(ready) });
      if (appending.length >= IN_FLIGHT) await settleOldest();
      // Let the writer thread's replies in between groups.
      await new Promise((r) => setImmediate(r));
    }
    while (appending.length > 0) await settleOldest();
    lastPosition = (await raw.head()) - 1;
    await lookups?.catchUp(lastPosition + 1);
    phases = {
      sealSeconds: clock.seal,
      foldSeconds: clock.fold,
      onGroupSeconds: clock.onGroup,
      mainBusy: performance.eventLoopUtilization(mainElu).utilization,
      writerBusy: raw.writerUtilization(writerElu).utilization,
    };
  } finally {
    await Promise.all(workers.map((w) => w.terminate()));
    inline?.close();
    await lookups?.close();
    ring?.close();
    await raw.close();
    if (options.nice !== undefined) setPriority(priorityBefore);
  }
  const cpu = process.cpuUsage(cpuStarted);
  return { events, seconds: Number(process.hrtime.bigint() - started) / 1e9, cpuSeconds: (cpu.user + cpu.system) / 1e6, firstPosition, lastPosition, ...(phases === undefined ? {} : { phases }) };
}

/**
 * The hub's look-ups file folded beside the bulk writer: the events the writer decided are folded from
 * their data before sealing; any other event (the hub's own, written before) is read from the log and
 * opened with the hub's keys, as the hub's catch-up would. The fold refuses a gap (PROJECTION_GAP).
 */
export class LookupFolder {
  readonly #store: SqliteLookupStore;
  readonly #plain = new Map<number, RecordedEvent>();
  #chain: Promise<unknown> = Promise.resolve();

  constructor(
    dataDir: string,
    sealer: EventSealer,
    private readonly raw: SqliteEventStore,
  ) {
    this.#store = new SqliteLookupStore({
      path: join(dataDir, LOOKUPS_FILE),
      open: (e) => {
        const plain = this.#plain.get(e.position);
        return plain === undefined ? sealer.open(e) : { state: 'opened', event: plain };
      },
      seal: new LookupSeal((d, v, n) => sealer.handle(d, v, n)),
    });
  }

  /** Folds what the log holds from the file's checkpoint up to `head` (exclusive), opening it with the hub's keys. */
  async catchUp(head: number): Promise<void> {
    while (this.#store.position + 1 < head) {
      const page = await this.raw.readAll({ fromPosition: this.#store.position + 1, maxCount: Math.min(2000, head - this.#store.position - 1) });
      if (page.length === 0) break;
      await this.#store.apply(page);
    }
  }

  /** Folds a durable group's events (contiguous, in position order), after any event before them it has not seen; one group at a time. */
  fold(events: readonly RecordedEvent[]): Promise<void> {
    const run = this.#chain.then(() => this.#fold(events));
    this.#chain = run.catch(() => undefined);
    return run;
  }

  async #fold(events: readonly RecordedEvent[]): Promise<void> {
    if (events.length === 0) return;
    await this.catchUp(events[0]!.position);
    for (const e of events) this.#plain.set(e.position, e);
    try {
      await this.#store.apply(events);
    } finally {
      this.#plain.clear();
    }
  }

  /** The rows digest of the file (a rebuild from the log gives the same, I8). */
  digest(): Promise<{ readonly rows: number; readonly hex: string }> {
    return this.#store.digest();
  }

  get position(): number {
    return this.#store.position;
  }

  async close(): Promise<void> {
    await this.#chain;
    await this.#store.close();
  }
}
