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
import { join } from 'node:path';
import { SqliteEventStore, type RecordedEvent, type EventId, type SerialNumber } from '#ledger';
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
  /** Called after each group is durable, with the opened AgencyCodeIssued events of the group in position order. */
  readonly onGroup?: (done: { people: number; events: number; codes: readonly RecordedEvent[] }) => Promise<void> | void;
}

export interface WrittenPeople {
  readonly events: number;
  readonly seconds: number;
  readonly firstPosition: number;
  readonly lastPosition: number;
}

/** The registry's facts about an agency, folded from its stream as the hub's views fold it. */
async function factsOf(store: SealedEventStore, agencyId: AgencyId): Promise<AgencyFacts> {
  const events = await store.readStream(agencyStreamId(agencyId));
  const state = events.reduce((s, e) => evolveAgencyRegistry(s, e as unknown as Evolvable<AgencyRegistryEvent>), initialAgencyRegistryState());
  const facts = agencyFacts(state);
  if (facts === undefined) throw new Error(`agency ${agencyId} is not registered in the hub's log: register it at the hub first`);
  return facts;
}

/**
 * Appends the people to the hub's ledger in its data directory (the hub must not be running on it).
 * Every append is the one the hub would make: same stream, expected revision, serial, actor and sealing.
 */
export async function writePeople(options: WritePeopleOptions): Promise<WrittenPeople> {
  const { dataDir, people } = options;
  const GROUP = options.group ?? 2000;
  const IN_FLIGHT = options.groupsInFlight ?? 3;
  const keysDir = join(dataDir, 'keys');
  const keys = loadOrCreateSealingKeys(keysDir);
  const ring = new SqliteKeyring({ path: join(dataDir, KEYRING_FILE), keys });
  const sealer = new EventSealer(keys, ring);
  const raw = new SqliteEventStore({ path: join(dataDir, 'ledger.sqlite'), nodeId: options.nodeId, tree: true });
  const store = new SealedEventStore(raw, sealer);
  const vault = new IdentifierVault(loadOrCreateVaultKeys(keysDir));
  const population = new Population(options.seedHex, loadOrCreateCodeLocator(keysDir));
  const started = process.hrtime.bigint();
  let firstPosition = -1;
  let lastPosition = -1;
  let events = 0;
  try {
    firstPosition = await raw.head();
    const pension = await factsOf(store, PENSION);
    const muroran = await factsOf(store, MURORAN_CITY);
    const agencies = [
      { facts: pension, acquisition: (i: number) => `JPS-${i}` },
      { facts: muroran, acquisition: (i: number) => `MRN-${i}` },
    ];
    const baseMs = Date.now();
    let correlation = 0;
    const correlationId = () => `population-${baseMs.toString(36)}-${(correlation++).toString(36)}`;

    /** One group: its appends in flight; resolves with the group's opened code events once all are durable. */
    const writeGroup = (from: number, to: number): Promise<RecordedEvent[]> => {
      const persons = Array.from({ length: to - from }, (_, k) => population.person(from + k));
      // The key ring's per-person keys in one transaction (the sealer would otherwise make them one by one).
      ring.ensureSubjectKeys(persons.map((p) => p.subjectId));
      const appends: Promise<RecordedEvent | undefined>[] = [];
      persons.forEach((p, k) => {
        const i = from + k;
        const at = new Date(baseMs + i).toISOString();
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
        appends.push(
          store
            .append({ streamId: personNumberingStreamId(residentDigest), expectedRevision: 'no_stream', events: issued, serial: { allocate: true }, metadata: { actor: NUMBERING_OPERATOR, correlationId: correlationId() } })
            .then(() => undefined),
        );
        for (const agency of agencies) {
          const code = population.code(i, agency.facts.agencyId, p.subjectId);
          const decided = decideAgencyCode(
            {
              type: 'AcquireAgencyCode',
              data: { subjectId: p.subjectId, agencyId: agency.facts.agencyId, agency: agency.facts, acquisitionNumber: agency.acquisition(i), candidateCode: code, candidateCodeDigest: agencyCodeDigest(sealer, code), acquiredAt: at },
            },
            initialAgencyCodeState(),
          );
          const streamId = agencyCodeStreamId(sealer.handle('agency-code-stream', `${p.subjectId}|${agency.facts.agencyId}`));
          const metadata = { actor: `agency:${agency.facts.agencyId}`, correlationId: correlationId() };
          appends.push(
            store.append({ streamId, expectedRevision: 'no_stream', events: decided, serial: { allocate: true }, metadata }).then((r): RecordedEvent => {
              const e = decided[0]!;
              // The opened form, as the hub's mapper reads it from the log.
              return { eventId: r.eventIds[0]! as EventId, type: e.type, schemaVersion: e.schemaVersion ?? 1, streamId, streamRevision: 0, position: r.firstPosition, serial: r.serial as SerialNumber, terminal: 'completed', recordedAt: at, data: e.data, metadata };
            }),
          );
        }
      });
      return Promise.all(appends).then((all) => {
        const codes = all.filter((e): e is RecordedEvent => e !== undefined).sort((a, b) => a.position - b.position);
        return codes;
      });
    };

    const inFlight: { to: number; done: Promise<RecordedEvent[]> }[] = [];
    let written = 0;
    const settleOldest = async () => {
      const { to, done } = inFlight.shift()!;
      const codes = await done;
      events += (to - written) * 3;
      written = to;
      await options.onGroup?.({ people: written, events, codes });
    };
    for (let from = 0; from < people; from += GROUP) {
      const to = Math.min(people, from + GROUP);
      inFlight.push({ to, done: writeGroup(from, to) });
      if (inFlight.length >= IN_FLIGHT) await settleOldest();
      // Let the writer thread's replies in between groups.
      await new Promise((r) => setImmediate(r));
    }
    while (inFlight.length > 0) await settleOldest();
    lastPosition = (await raw.head()) - 1;
  } finally {
    await raw.close();
    ring.close();
  }
  return { events, seconds: Number(process.hrtime.bigint() - started) / 1e9, firstPosition, lastPosition };
}
