/**
 * Rebuild of the provision records (libs/projections) from a log of query events: the log is written
 * with a bare better-sqlite3 transaction (canonical envelopes exactly as the ledger stores them, events
 * decided by the real #linkage deciders and sealed as the hub seals them, I10), then `rebuild` reads it
 * through SqliteEventStore and folds it into a fresh SQLite projection as the hub does: each query's
 * person is read from its event's key reference (one keyed hash, no box opened), with a cold key ring
 * (a SQLite file, as the hub's) answering which keys were shredded. Bar (the bars in README, Benchmarks): ≥ 100,000 events/s. Beside it, in the same run, a
 * baseline: the least any rebuild does (read every envelope with better-sqlite3 and JSON.parse it), so
 * that a loaded machine shows in the ratio. A short rebuild of the first 20,000 events warms the JIT
 * first, as the first seconds of a real multi-million-event rebuild would. Last line: one JSON object.
 *   npm run bench:projections [-- --events 250000 --page 10000]
 */
import Database from 'better-sqlite3';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import {
  LEDGER_DDL,
  SqliteEventStore,
  canonicalEnvelope,
  canonicalize,
  formatSerialNumber,
  type EventId,
  type NewEvent,
  type RecordedEvent,
  type SerialNumber,
} from '#ledger';
import {
  AUTHORIZATION_TABLE_STREAM,
  agencyCodeFromRandomBytes,
  agencyFacts,
  agencyStreamId,
  compileAuthorizationPolicy,
  decideAgencyRegistry,
  decideAuthorizationTables,
  decideQuery,
  evolveAgencyRegistry,
  evolveQuery,
  initialAgencyRegistryState,
  initialAuthorizationTablesState,
  initialQueryState,
  parseAuthorizationTable,
  queryStreamId,
  type AgencyFacts,
  type AgencyId,
  type AgencyKind,
  type QueryCommand,
  type SubjectId,
} from '#linkage';
import { SqliteProvisionStore, catchUp, rebuild } from '#projections';
import { EventSealer, OpeningEventStore, SqliteKeyring, generateSealingKeysFile, parseSealingKeys } from '#sealing';

const { values } = parseArgs({ options: { events: { type: 'string', default: '250000' }, page: { type: 'string', default: '10000' }, keep: { type: 'boolean', default: false } } });
const EVENTS = Number(values.events);
const PAGE = Number(values.page);
const dir = mkdtempSync(join(tmpdir(), 'bench-projections-'));
const ledgerPath = join(dir, 'ledger.sqlite');
const projectionsPath = join(dir, 'projections.sqlite');
const sha256 = (text: string) => createHash('sha256').update(text).digest('hex');
const keys = parseSealingKeys(generateSealingKeysFile(new Date()));
const keyringPath = join(dir, 'keyring.sqlite');
/** The types the hub's provision records fold reads opened (the person of a query is read from its key reference). */
const OPENED = new Set(['KeysShredded']);
const SUBJECTS = 100_000;
const subjectOf = (q: number) => `6f1c2a9e-3b7d-4c10-9e2a-${String(q % SUBJECTS).padStart(12, '0')}` as SubjectId;

function buildLog(): { events: number; queries: number; seconds: number } {
  const started = process.hrtime.bigint();
  const ring = new SqliteKeyring({ path: keyringPath, keys });
  ring.ensureSubjectKeys(Array.from({ length: SUBJECTS }, (_, q) => subjectOf(q)));
  const sealer = new EventSealer(keys, ring);
  const db = new Database(ledgerPath);
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = OFF');
  db.exec(LEDGER_DDL);
  const insert = db.prepare('INSERT INTO events (position, stream_id, stream_revision, serial, envelope) VALUES (?, ?, ?, ?, ?)');
  let rows: [number, string, number, string, string][] = [];
  const flush = db.transaction((batch: typeof rows) => {
    for (const r of batch) insert.run(r);
  });
  const baseMs = Date.parse('2026-11-22T00:00:00.000Z');
  let position = 0;
  let sequence = 0;
  const nextSerial = () => formatSerialNumber({ day: '20261122', nodeId: 1, sequence: ++sequence }) as SerialNumber;
  const write = (streamId: string, revision: number, serial: SerialNumber, decided: readonly NewEvent[], actor: string) => {
    decided.map((e) => sealer.seal(streamId, e)).forEach((e, i) => {
      const full: RecordedEvent = {
        eventId: `0194f7a2-0000-7000-8000-${String(position).padStart(12, '0')}` as EventId,
        type: e.type,
        schemaVersion: e.schemaVersion ?? 1,
        streamId,
        streamRevision: revision + i,
        position,
        serial,
        ...(e.terminal ? { terminal: e.terminal } : {}),
        ...(e.claims ? { claims: e.claims } : {}),
        recordedAt: new Date(baseMs + position).toISOString(),
        data: e.data,
        metadata: { actor, correlationId: `${streamId}-${revision + i}` },
      };
      rows.push([position, streamId, full.streamRevision, serial, canonicalEnvelope(full)]);
      position += 1;
    });
    if (rows.length >= 20_000) {
      flush(rows);
      rows = [];
    }
  };

  const rawTable = JSON.parse(readFileSync(join(import.meta.dirname, '../schemas/authorization/authorization-table.v1.json'), 'utf8')) as unknown;
  write(AUTHORIZATION_TABLE_STREAM, 0, nextSerial(), decideAuthorizationTables({ type: 'PublishAuthorizationTable', data: { table: rawTable, digest: sha256(canonicalize(rawTable)!), publishedAt: '2019-07-01T00:00:00.000Z' } }, initialAuthorizationTablesState()), 'operator:tables');
  const policy = compileAuthorizationPolicy(parseAuthorizationTable(rawTable));
  const facts = new Map<string, AgencyFacts>();
  const register = (agencyId: string, kind: AgencyKind, name: string) => {
    const events = decideAgencyRegistry({ type: 'RegisterAgency', data: { agencyId, kind, name, endpoint: `https://${agencyId}.example`, publicKey: createHash('sha256').update(agencyId).digest('base64url'), credentialDigest: sha256(`token-${agencyId}`), credentialClaimDigest: sha256(`claim-${agencyId}`), registeredAt: '2019-07-01T00:00:00.000Z' } }, initialAgencyRegistryState());
    write(agencyStreamId(agencyId as AgencyId), 0, nextSerial(), events, 'operator:registry');
    facts.set(agencyId, agencyFacts(events.reduce(evolveAgencyRegistry, initialAgencyRegistryState()))!);
  };
  register('jpn-pension-service', 'pension-service', '日本年金機構');
  const cities = Array.from({ length: 20 }, (_, i) => `city-${String(i).padStart(2, '0')}`);
  cities.forEach((c, i) => register(c, 'municipality', `市${i}`));

  // A realistic mix: most answered, some refused by the provider, a few failed, a few denied.
  let queries = 0;
  while (position < EVENTS) {
    const q = queries++;
    const queryId = `q-${String(q).padStart(10, '0')}`;
    const subjectId = subjectOf(q);
    const provider = cities[q % cities.length]!;
    const at = new Date(Date.parse('2026-01-01T00:00:00.000Z') + q * 60_000).toISOString();
    const denied = q % 20 === 19;
    const submit: QueryCommand = {
      type: 'SubmitQuery',
      data: {
        queryId,
        requesterAgencyId: 'jpn-pension-service',
        requester: facts.get('jpn-pension-service'),
        presentedCredentialDigest: sha256(denied ? 'wrong token' : 'token-jpn-pension-service'),
        providerAgencyId: provider,
        provider: facts.get(provider),
        procedureCode: 'pre-twenty-disability-pension-income-check',
        itemCodes: ['local-tax'],
        requesterCode: agencyCodeFromRandomBytes(createHash('sha256').update(`code-a-${q}`).digest().subarray(0, 16)),
        policy,
        translation: { status: 'translated', subjectId, providerCode: agencyCodeFromRandomBytes(createHash('sha256').update(queryId).digest().subarray(0, 16)) },
        ...(q % 50 < 5 ? { batch: { batchId: `batch-${Math.floor(q / 50)}`, index: q % 50, size: 5 } } : {}),
        submittedAt: at,
      },
    };
    const serial = nextSerial();
    const streamId = queryStreamId(queryId);
    let state = initialQueryState();
    let revision = 0;
    const step = (command: QueryCommand, actor: string) => {
      const events = decideQuery(command, state);
      write(streamId, revision, serial, events, actor);
      state = events.reduce(evolveQuery, state);
      revision += events.length;
    };
    step(submit, 'agency:jpn-pension-service');
    if (denied) continue;
    const later = new Date(Date.parse(at) + 1500).toISOString();
    if (q % 20 === 18) step({ type: 'FailQuery', data: { queryId, reason: 'PROVIDER_TIMEOUT', failedAt: later } }, 'system:hub');
    else if (q % 10 === 7) step({ type: 'RecordProvisionRefusal', data: { queryId, providerAgencyId: provider, reason: 'NO_RECORD', refusedAt: later } }, `agency:${provider}`);
    else step({ type: 'RecordProvisionAnswer', data: { queryId, providerAgencyId: provider, answerDigest: sha256(`answer-${q}`), answerSize: 1834, encrypted: false, answeredAt: later } }, `agency:${provider}`);
  }
  if (rows.length > 0) flush(rows);
  db.pragma('wal_checkpoint(TRUNCATE)');
  db.close();
  ring.close();
  return { events: position, queries, seconds: Number(process.hrtime.bigint() - started) / 1e9 };
}

/** The floor under any rebuild: every envelope read in pages and parsed, nothing else. */
function readAndParse(): { events: number; seconds: number; perSecond: number } {
  const db = new Database(ledgerPath, { readonly: true });
  const page = db.prepare('SELECT envelope FROM events WHERE position >= ? ORDER BY position LIMIT ?').pluck();
  const started = process.hrtime.bigint();
  let events = 0;
  let sink = 0;
  for (;;) {
    const texts = page.all(events, PAGE) as string[];
    if (texts.length === 0) break;
    for (const t of texts) sink += (JSON.parse(t) as RecordedEvent).position;
    events += texts.length;
  }
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  db.close();
  if (sink < 0) console.log(sink);
  return { events, seconds, perSecond: Math.round(events / seconds) };
}

try {
  const built = buildLog();
  console.log(`built a ${built.events.toLocaleString('en')}-event log (${built.queries.toLocaleString('en')} queries) in ${built.seconds.toFixed(1)} s`);
  const raw = new SqliteEventStore({ path: ledgerPath, nodeId: 1 });
  // A cold key ring, as a hub (or an auditor with the read key) opens it to rebuild.
  const ring = new SqliteKeyring({ path: keyringPath, keys, readonly: true });
  const sealer = new EventSealer(keys, ring);
  const store = new OpeningEventStore(raw, sealer, OPENED);
  const people = { subjectRef: (s: string) => sealer.personRef(s), personOf: (e: RecordedEvent) => sealer.referenceOf(e) };
  const warm = new SqliteProvisionStore({ path: join(dir, 'warm-up.sqlite'), ...people });
  await catchUp(store, warm, { pageSize: PAGE, toPosition: 20_000 });
  await warm.close();

  const baseline = readAndParse();
  const coldRing = new SqliteKeyring({ path: keyringPath, keys, readonly: true });
  const coldSealer = new EventSealer(keys, coldRing);
  const coldStore = new OpeningEventStore(raw, coldSealer, OPENED);
  const projection = new SqliteProvisionStore({ path: projectionsPath, subjectRef: (s) => coldSealer.personRef(s), personOf: (e) => coldSealer.referenceOf(e) });
  const started = process.hrtime.bigint();
  const checkpoint = await rebuild(coldStore, projection, { pageSize: PAGE });
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  const events = checkpoint + 1;
  const records = (await projection.records()).length;
  if (events !== built.events || records !== built.queries) {
    console.error(`rebuild FAILED: ${events} events applied, ${records} records; expected ${built.events} and ${built.queries}`);
    process.exitCode = 1;
  }
  await Promise.all([projection.close(), raw.close()]);
  ring.close();
  coldRing.close();
  const perSecond = Math.round(events / seconds);
  const ratio = Number((perSecond / baseline.perSecond).toFixed(2));
  console.log(`baseline: read and JSON.parse ${baseline.events.toLocaleString('en')} envelopes in ${baseline.seconds.toFixed(2)} s, ${baseline.perSecond.toLocaleString('en')} events/s`);
  console.log(`rebuild: ${events.toLocaleString('en')} events into ${records.toLocaleString('en')} provision records in ${seconds.toFixed(2)} s, ${perSecond.toLocaleString('en')} events/s, ratio ${ratio} (bar: ≥ 100,000 events/s)`);
  console.log(JSON.stringify({ bench: 'projections-rebuild', events, seconds: Number(seconds.toFixed(3)), events_per_s: perSecond, baseline_per_s: baseline.perSecond, ratio }));
} finally {
  if (!values.keep) rmSync(dir, { recursive: true, force: true });
  else console.error(`kept ${dir}`);
}
