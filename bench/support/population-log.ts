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
import { rmSync } from 'node:fs';
import type Database from 'better-sqlite3';
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
import { AGENCY_CODE_ISSUED, type CodeLocator } from '#mapper';
import { decidePersonNumbering, individualNumberFromRandomBase, initialPersonNumberingState, personNumberingStreamId, type MyNumber } from '#numbering';
import { EventSealer, KEYRING_FILE, SealedEventStore, SqliteKeyring } from '#sealing';
import { NUMBERING_OPERATOR } from '../../apps/hub/src/linkage/authenticator.js';
import { agencyCodeDigest } from '../../apps/hub/src/linkage/codes/agency-codes.js';
import { loadOrCreateCodeLocator, newBearerToken, tokenDigest } from '../../apps/hub/src/linkage/hub-secrets.js';
import { loadOrCreateSealingKeys } from '../../apps/hub/src/sealing/sealing-keys.js';
import { LookupSeal } from '../../apps/hub/src/state/lookup-seal.js';
import { LOOKUPS_FILE, SqliteLookupStore, type LookupStoreOptions } from '../../apps/hub/src/state/lookup-store.js';
import { FollowedFolder } from './population-followers.js';
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
   * from the whole log. The hub's followed projections (bench/support/population-followers.ts) are kept
   * at the log's head with it. Default false (the hub builds them all at its first start).
   */
  readonly lookups?: boolean;
  /**
   * How the look-ups are folded (with `lookups`). `staged` (the default): each durable group is folded by the
   * hub's SqliteLookupStore into an in-memory file of its own, whose rows are then appended to a staging file
   * beside the log; once every group is durable, the staged rows go into lookups.db in key order in one bulk
   * build, with its checkpoint at the log's head. lookups.db itself is not written before that build: a write
   * that stops before its end leaves it at its checkpoint before the write, which the hub's first start then
   * folds on from. `direct`: each group is folded into lookups.db itself, one transaction per group, as a
   * live hub keeps it (random inserts into B-trees much bigger than the page cache: its commits slow the
   * writer as the file grows).
   */
  readonly lookupsFold?: 'direct' | 'staged';
  /**
   * Niceness of the write (0–19): this thread's, set before the ledger's writer thread and the seal
   * workers start (they inherit it), and this thread's own restored when the write ends, so that what
   * runs after (the hub, measured) is not niced. Default: left as it is.
   */
  readonly nice?: number;
  /** The ledger writer thread's page cache (KiB); SQLite's default when absent. */
  readonly writerCacheKiB?: number;
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
  readonly phases?: {
    readonly sealSeconds: number;
    readonly foldSeconds: number;
    readonly onGroupSeconds: number;
    /** The staged look-ups' bulk build into lookups.db after the last group (its wall time is in `seconds` too). */
    readonly lookupsBuildSeconds: number;
    /** Keeping the hub's followed projections at the log's head after each group (`lookups`). */
    readonly followersSeconds: number;
    readonly mainBusy: number;
    readonly writerBusy: number;
  };
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
  const raw = new SqliteEventStore({ path: join(dataDir, 'ledger.sqlite'), nodeId: options.nodeId, tree: true, filters: { bytes: writerFilterBytes(people) }, ...(options.writerCacheKiB === undefined ? {} : { writerCacheKiB: options.writerCacheKiB }) });
  const started = process.hrtime.bigint();
  const cpuStarted = process.cpuUsage();
  const mainElu = performance.eventLoopUtilization();
  const writerElu = raw.writerUtilization();
  const clock = { seal: 0, fold: 0, onGroup: 0, build: 0, followers: 0 };
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
  let followed: FollowedFolder | undefined;
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
      if ((options.lookupsFold ?? 'staged') === 'staged') lookups.stage(join(dataDir, LOOKUPS_STAGE_FILE));
      followed = new FollowedFolder(dataDir, hubSealer, raw);
      await followed.catchUp(firstPosition);
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
      if (followed !== undefined) await timed('followers', async () => followed!.catchUp(await raw.head()));
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
    if (lookups !== undefined) await timed('build', () => lookups!.build());
    await lookups?.catchUp(lastPosition + 1);
    await followed?.catchUp(lastPosition + 1);
    phases = {
      sealSeconds: clock.seal,
      foldSeconds: clock.fold,
      onGroupSeconds: clock.onGroup,
      lookupsBuildSeconds: clock.build,
      followersSeconds: clock.followers,
      mainBusy: performance.eventLoopUtilization(mainElu).utilization,
      writerBusy: raw.writerUtilization(writerElu).utilization,
    };
  } finally {
    await Promise.all(workers.map((w) => w.terminate()));
    inline?.close();
    await lookups?.close();
    await followed?.close();
    ring?.close();
    await raw.close();
    if (options.nice !== undefined) setPriority(priorityBefore);
  }
  const cpu = process.cpuUsage(cpuStarted);
  return { events, seconds: Number(process.hrtime.bigint() - started) / 1e9, cpuSeconds: (cpu.user + cpu.system) / 1e6, firstPosition, lastPosition, ...(phases === undefined ? {} : { phases }) };
}

/** The staging file of the look-ups' rows while the writer runs (in the data directory; deleted by the bulk build). */
export const LOOKUPS_STAGE_FILE = 'lookups-stage.db';

/** The event types the writer appends: the only ones a staged fold takes (each of their rows is a new key). */
const STAGED_TYPES: ReadonlySet<string> = new Set(['IndividualNumberIssued', AGENCY_CODE_ISSUED]);

/** The hub's look-ups store, its connection reachable for the writer's staging and bulk build. */
class WriterLookupStore extends SqliteLookupStore {
  get connection(): Database.Database {
    return this.db;
  }
}

/** What a staged fold holds between the groups and the bulk build. */
interface Staging {
  readonly file: string;
  /** The hub's fold into an in-memory file, emptied into the staging file after each group. */
  readonly memory: WriterLookupStore;
  /** The look-ups' tables (all but fold_meta), as staged. */
  readonly tables: readonly string[];
  /** Moves the in-memory file's rows to the staging file, in one transaction. */
  readonly move: () => void;
  /** The first position staged (everything before it folded into lookups.db). */
  readonly from: number;
}

/**
 * The hub's look-ups file folded beside the bulk writer: the events the writer decided are folded from
 * their data before sealing; any other event (the hub's own, written before) is read from the log and
 * opened with the hub's keys, as the hub's catch-up would. The fold refuses a gap (PROJECTION_GAP).
 *
 * Staged (`stage()`, then `build()` once the last group is folded): the writer's groups are folded by the
 * hub's own SqliteLookupStore into an in-memory file (a commit there costs no I/O and its B-trees stay one
 * group small), whose rows are appended to a staging file after each group; `build()` then inserts them
 * into lookups.db sorted by each table's key (B-trees filled left to right, secondary indexes made once
 * by a sort) and moves its checkpoint to the last position staged. The rows are the ones the direct fold
 * writes: the writer's events only ever add new keys (a number, a citizen secret, a code), so upserts and
 * inserts agree, and a key met twice fails the build (a primary key or the code index's unique index)
 * instead of being folded over. Any event of another type handed to a staged fold is refused.
 */
export class LookupFolder {
  #store: WriterLookupStore;
  readonly #path: string;
  readonly #open: LookupStoreOptions['open'];
  readonly #seal: LookupSeal;
  readonly #plain = new Map<number, RecordedEvent>();
  #chain: Promise<unknown> = Promise.resolve();
  #staging: Staging | undefined;

  constructor(
    dataDir: string,
    sealer: EventSealer,
    private readonly raw: SqliteEventStore,
  ) {
    this.#path = join(dataDir, LOOKUPS_FILE);
    this.#open = (e) => {
      const plain = this.#plain.get(e.position);
      return plain === undefined ? sealer.open(e) : { state: 'opened', event: plain };
    };
    this.#seal = new LookupSeal((d, v, n) => sealer.handle(d, v, n));
    this.#store = new WriterLookupStore({ path: this.#path, open: this.#open, seal: this.#seal });
  }

  /** Folds what the log holds from the file's checkpoint up to `head` (exclusive), opening it with the hub's keys. */
  async catchUp(head: number): Promise<void> {
    while (this.#store.position + 1 < head) {
      const page = await this.raw.readAll({ fromPosition: this.#store.position + 1, maxCount: Math.min(2000, head - this.#store.position - 1) });
      if (page.length === 0) break;
      await this.#store.apply(page);
    }
  }

  /**
   * From here on, folds go to a staging file (`file`, made anew) until `build()`; lookups.db stays at its
   * checkpoint, which the next group must follow.
   */
  stage(file: string): void {
    if (this.#staging !== undefined) throw new Error('the look-ups are staged already');
    removeSqliteFile(file);
    const memory = new WriterLookupStore({ path: ':memory:', open: this.#open, seal: this.#seal });
    const from = this.#store.position + 1;
    if (from > 0) memory.stepOver(0, from - 1);
    const db = memory.connection;
    db.prepare('ATTACH DATABASE ? AS stage').run(file);
    // A scratch file, deleted once built (or when the write is done again): its journal in memory.
    db.pragma('stage.journal_mode = MEMORY');
    db.pragma('stage.synchronous = OFF');
    const tables = db.prepare(`SELECT name FROM main.sqlite_master WHERE type = 'table' AND name <> 'fold_meta' ORDER BY name`).pluck().all() as string[];
    for (const t of tables) db.exec(`CREATE TABLE stage.${t} AS SELECT * FROM main.${t} WHERE 0`);
    const statements = tables.map((t) => [db.prepare(`INSERT INTO stage.${t} SELECT * FROM main.${t}`), db.prepare(`DELETE FROM main.${t}`)] as const);
    const move = db.transaction(() => {
      for (const [copy, empty] of statements) if (copy.run().changes > 0) empty.run();
    });
    this.#staging = { file, memory, tables, move, from };
  }

  /** Folds a durable group's events (contiguous, in position order), after any event before them it has not seen; one group at a time. */
  fold(events: readonly RecordedEvent[]): Promise<void> {
    const run = this.#chain.then(() => this.#fold(events));
    this.#chain = run.catch(() => undefined);
    return run;
  }

  async #fold(events: readonly RecordedEvent[]): Promise<void> {
    if (events.length === 0) return;
    const staging = this.#staging;
    if (staging === undefined) await this.catchUp(events[0]!.position);
    for (const e of events) {
      if (staging !== undefined && !STAGED_TYPES.has(e.type)) throw new Error(`a staged look-ups fold takes only the writer's own events, not ${e.type} (position ${e.position})`);
      this.#plain.set(e.position, e);
    }
    try {
      if (staging === undefined) await this.#store.apply(events);
      else {
        await staging.memory.apply(events); // refuses a gap after the last position staged (PROJECTION_GAP)
        staging.move();
      }
    } finally {
      this.#plain.clear();
    }
  }

  /**
   * Ends a staged fold: the staged rows into lookups.db in key order, in one transaction with the checkpoint
   * at the last position staged; the staging file is deleted. lookups.db is in rollback-journal mode
   * meanwhile (the build's new pages go past the old ones, unjournaled and written once) and back in WAL
   * mode after, as the hub keeps it. Nothing to do when not staged.
   */
  async build(): Promise<void> {
    await this.#chain;
    const staging = this.#staging;
    if (staging === undefined) return;
    this.#staging = undefined;
    const last = staging.memory.position;
    await staging.memory.close();
    try {
      if (last >= staging.from) {
        if (this.#store.position !== staging.from - 1) throw new Error(`lookups.db moved to ${this.#store.position} while the look-ups from ${staging.from} were staged`);
        const db = this.#store.connection;
        db.prepare('ATTACH DATABASE ? AS stage').run(staging.file);
        // A rollback journal for the build: it holds only the pages there before (the tables' roots, a few),
        // the new pages going after them, where WAL would have written the whole file twice (into the WAL, then
        // back). The build is one transaction: cut short, lookups.db is as it was before it.
        if (db.pragma('main.journal_mode = DELETE', { simple: true }) !== 'delete') throw new Error('lookups.db could not leave WAL mode for its build');
        db.pragma(`cache_size = -${BUILD_CACHE_KIB}`);
        try {
          db.transaction(() => {
            for (const t of staging.tables) {
              if (db.prepare(`SELECT 1 FROM stage.${t} LIMIT 1`).get() === undefined) continue;
              // The secondary indexes are made again once the table is full (one sort each), as they were written.
              const indexes = db.prepare(`SELECT name, sql FROM main.sqlite_master WHERE type = 'index' AND tbl_name = ? AND sql IS NOT NULL`).all(t) as { name: string; sql: string }[];
              for (const i of indexes) db.exec(`DROP INDEX main.${i.name}`);
              const key = db.prepare('SELECT name FROM pragma_table_info(?) WHERE pk > 0 ORDER BY pk').pluck().all(t) as string[];
              if (key.length === 0) throw new Error(`look-ups table ${t} has no primary key to build it in order`);
              db.exec(`INSERT INTO main.${t} SELECT * FROM stage.${t} ORDER BY ${key.join(', ')}`);
              for (const i of indexes) db.exec(i.sql);
            }
            db.prepare(`INSERT INTO fold_meta (key, value) VALUES ('checkpoint', ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value`).run(String(last));
          })();
        } finally {
          db.exec('DETACH DATABASE stage');
          db.pragma('main.journal_mode = WAL');
        }
        // Opened again: the store reads its checkpoint and sets its service page cache.
        await this.#store.close();
        this.#store = new WriterLookupStore({ path: this.#path, open: this.#open, seal: this.#seal });
      }
    } finally {
      removeSqliteFile(staging.file);
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
    await this.#chain.catch(() => undefined);
    if (this.#staging !== undefined) {
      await this.#staging.memory.close();
      removeSqliteFile(this.#staging.file);
      this.#staging = undefined;
    }
    await this.#store.close();
  }
}

/** The page cache of lookups.db while it is built from the staged rows (the sorts' memory too). */
const BUILD_CACHE_KIB = 256 * 1024;

function removeSqliteFile(file: string): void {
  for (const suffix of ['', '-journal', '-wal', '-shm']) rmSync(`${file}${suffix}`, { force: true });
}
