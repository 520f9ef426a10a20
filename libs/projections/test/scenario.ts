import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { canonicalize, voidOpenSerials, type EventStore, type NewEvent, type SerialNumber } from '#ledger';
import {
  agencyCodeFromRandomBytes,
  agencyFacts,
  agencyStreamId,
  AUTHORIZATION_TABLE_STREAM,
  compileAuthorizationPolicy,
  decideAgencyRegistry,
  decideAuthorizationTables,
  decideQuery,
  evolveAgencyRegistry,
  evolveAuthorizationTables,
  evolveQuery,
  initialAgencyRegistryState,
  initialAuthorizationTablesState,
  initialQueryState,
  queryStreamId,
  tableInForce,
  type AgencyId,
  type AgencyKind,
  type AgencyRegistryState,
  type AuthorizationTablesState,
  type CodeTranslation,
  type ProviderRefusalReason,
  type QueryBatch,
  type QueryFailureReason,
  type QueryState,
  type SubjectId,
} from '#linkage';

/**
 * Drives the real deciders of #linkage against an event store, as the hub's handlers do (load, decide,
 * append), so that the projection is tested on the events' real shapes.
 */

const ROOT = join(import.meta.dirname, '../../..');
export const sha256 = (text: string): string => createHash('sha256').update(text).digest('hex');
const x25519 = (seed: string): string => createHash('sha256').update(seed).digest('base64url');
const tokenOf = (agencyId: string) => `token-of-${agencyId}`;
/** A deterministic agency code for (person, agency): what the mapper would hold. */
/** A keyed-handle stand-in for the projection files' subject reference (the hub's is keyed). */
export const subjectRef = (subjectId: string): string => createHash('sha256').update(`ref:${subjectId}`).digest('hex').slice(0, 32);

export const codeOf = (subjectId: string, agencyId: string) => agencyCodeFromRandomBytes(createHash('sha256').update(`${subjectId}/${agencyId}`).digest().subarray(0, 16));
export const subject = (n: number): SubjectId => `6f1c2a9e-3b7d-4c10-9e2a-${n.toString(16).padStart(12, '0')}` as SubjectId;

export const rawTableV1 = (): Record<string, unknown> => JSON.parse(readFileSync(join(ROOT, 'schemas/authorization/authorization-table.v1.json'), 'utf8')) as Record<string, unknown>;

/** Version 2 of the table: the same rows, with the child allowance procedure and the local tax item renamed. */
export function rawTableV2(effectiveFrom: string): Record<string, unknown> {
  const t = rawTableV1();
  const rename = (x: { code: string; name: string }) => {
    if (x.code === 'child-allowance') x.name = '児童手当の支給（令和改正）';
    if (x.code === 'local-tax') x.name = '地方税関係情報（改正後）';
  };
  for (const item of t['items'] as { code: string; name: string }[]) rename(item);
  for (const row of t['rows'] as { procedure: { code: string; name: string }; items: { code: string; name: string }[] }[]) {
    rename(row.procedure);
    row.items.forEach(rename);
  }
  return { ...t, version: 2, effectiveFrom };
}

export interface QuerySpec {
  readonly queryId: string;
  readonly requester: string;
  readonly provider: string;
  readonly procedure: string;
  readonly items: readonly string[];
  readonly subjectId?: SubjectId;
  readonly at: string;
  readonly batch?: QueryBatch;
  /** Present a wrong token (CREDENTIAL_MISMATCH, no subject named). */
  readonly wrongCredential?: boolean;
  /** The provider holds no code for the person (NO_CODE_AT_PROVIDER, subject named). */
  readonly noCodeAtProvider?: boolean;
}

export class Scenario {
  private readonly agencies = new Map<string, AgencyRegistryState>();
  private tables: AuthorizationTablesState = initialAuthorizationTablesState();
  private readonly queries = new Map<string, { state: QueryState; serial: SerialNumber; revision: number }>();

  constructor(readonly store: EventStore) {}

  async registerAgency(agencyId: string, kind: AgencyKind, name: string, at: string): Promise<void> {
    const state = this.agencies.get(agencyId) ?? initialAgencyRegistryState();
    const events = decideAgencyRegistry(
      { type: 'RegisterAgency', data: { agencyId, kind, name, endpoint: `https://${agencyId}.example`, publicKey: x25519(agencyId), credentialDigest: sha256(tokenOf(agencyId)), registeredAt: at } },
      state,
    );
    await this.appendOwn(agencyStreamId(agencyId as AgencyId), 'no_stream', events, 'operator:registry');
    this.agencies.set(agencyId, events.reduce(evolveAgencyRegistry, state));
  }

  async renameAgency(agencyId: string, name: string, at: string): Promise<void> {
    const state = this.agencies.get(agencyId)!;
    const events = decideAgencyRegistry({ type: 'UpdateAgency', data: { name, updatedAt: at } }, state);
    await this.appendOwn(agencyStreamId(agencyId as AgencyId), 'any', events, 'operator:registry');
    this.agencies.set(agencyId, events.reduce(evolveAgencyRegistry, state));
  }

  async publishTable(table: Record<string, unknown>, publishedAt: string): Promise<void> {
    const events = decideAuthorizationTables({ type: 'PublishAuthorizationTable', data: { table, digest: sha256(canonicalize(table)!), publishedAt } }, this.tables);
    await this.appendOwn(AUTHORIZATION_TABLE_STREAM, 'any', events, 'operator:tables');
    this.tables = events.reduce(evolveAuthorizationTables, this.tables);
  }

  /** Submits a query; answers its serial. */
  async query(q: QuerySpec): Promise<SerialNumber> {
    const requester = this.facts(q.requester);
    const provider = this.facts(q.provider);
    const inForce = tableInForce(this.tables, q.at);
    const policy = inForce === undefined ? undefined : compileAuthorizationPolicy(inForce.table);
    const subjectId = q.subjectId ?? subject(0);
    const translation: CodeTranslation = q.noCodeAtProvider ? { status: 'no-code-at-provider', subjectId } : { status: 'translated', subjectId, providerCode: codeOf(subjectId, q.provider) };
    const events = decideQuery(
      {
        type: 'SubmitQuery',
        data: {
          queryId: q.queryId,
          requesterAgencyId: q.requester,
          requester,
          presentedCredentialDigest: sha256(q.wrongCredential ? 'a stolen guess' : tokenOf(q.requester)),
          providerAgencyId: q.provider,
          provider,
          procedureCode: q.procedure,
          itemCodes: q.items,
          requesterCode: codeOf(subjectId, q.requester),
          policy,
          translation,
          ...(q.batch ? { batch: q.batch } : {}),
          submittedAt: q.at,
        },
      },
      initialQueryState(),
    );
    const result = await this.store.append({
      streamId: queryStreamId(q.queryId),
      expectedRevision: 'no_stream',
      serial: { allocate: true },
      events: events as readonly NewEvent[],
      metadata: { actor: `agency:${q.requester}`, correlationId: q.queryId },
    });
    this.queries.set(q.queryId, { state: events.reduce(evolveQuery, initialQueryState()), serial: result.serial, revision: result.nextExpectedRevision });
    return result.serial;
  }

  async answer(queryId: string, at: string): Promise<void> {
    const s = this.queries.get(queryId)!;
    const provider = (s.state as { providerAgencyId: string }).providerAgencyId;
    await this.continueQuery(queryId, { type: 'RecordProvisionAnswer', data: { queryId, providerAgencyId: provider, answerDigest: sha256(`answer ${queryId}`), answerSize: 321, encrypted: false, answeredAt: at } }, `agency:${provider}`);
  }

  async refuse(queryId: string, reason: ProviderRefusalReason, at: string): Promise<void> {
    const s = this.queries.get(queryId)!;
    const provider = (s.state as { providerAgencyId: string }).providerAgencyId;
    await this.continueQuery(queryId, { type: 'RecordProvisionRefusal', data: { queryId, providerAgencyId: provider, reason, refusedAt: at } }, `agency:${provider}`);
  }

  async fail(queryId: string, reason: QueryFailureReason, at: string): Promise<void> {
    await this.continueQuery(queryId, { type: 'FailQuery', data: { queryId, reason, failedAt: at } }, 'system:hub');
  }

  /** What the hub does at start-up after a crash: void every open serial. */
  async voidOpen(): Promise<void> {
    await voidOpenSerials(this.store, 'hub restarted: the query was in flight', 'recovery');
  }

  private async continueQuery(queryId: string, command: Parameters<typeof decideQuery>[0], actor: string): Promise<void> {
    const s = this.queries.get(queryId)!;
    const events = decideQuery(command, s.state);
    const result = await this.store.append({
      streamId: queryStreamId(queryId),
      expectedRevision: s.revision,
      serial: { continue: s.serial },
      events: events as readonly NewEvent[],
      metadata: { actor, correlationId: queryId },
    });
    this.queries.set(queryId, { state: events.reduce(evolveQuery, s.state), serial: s.serial, revision: result.nextExpectedRevision });
  }

  private facts(agencyId: string) {
    const state = this.agencies.get(agencyId);
    return state === undefined ? undefined : agencyFacts(state);
  }

  private async appendOwn(streamId: string, expected: 'any' | 'no_stream', events: readonly NewEvent[], actor: string): Promise<void> {
    await this.store.append({ streamId, expectedRevision: expected, serial: { allocate: true }, events, metadata: { actor, correlationId: streamId } });
  }
}

export const PENSION = 'jpn-pension-service';
export const MURORAN = 'muroran-city';
export const SAPPORO = 'sapporo-city';
export const HOKKAIDO = 'hokkaido-pref';

/** The agencies of seeds/001 and a few more, registered before the table takes effect. */
export async function standardSetup(s: Scenario, at = '2026-01-05T00:00:00.000Z'): Promise<void> {
  await s.publishTable(rawTableV1(), at);
  await s.registerAgency(PENSION, 'pension-service', '日本年金機構', at);
  await s.registerAgency(MURORAN, 'municipality', '室蘭市', at);
  await s.registerAgency(SAPPORO, 'municipality', '札幌市', at);
  await s.registerAgency(HOKKAIDO, 'prefecture', '北海道', at);
}

export const AOYAMA = subject(1);
export const KATO = subject(2);
export const NOW = '2026-11-22T00:00:00.000Z';

/**
 * A log with every outcome, a renamed agency, a second table version, a bulk query, a voided serial and
 * queries on both sides of the 7-year window and of a Japan-time month boundary.
 */
export async function richLog(store: EventStore): Promise<Scenario> {
  const s = new Scenario(store);
  await standardSetup(s, '2019-07-01T00:00:00.000Z');
  // An event of another stream: the projection skips it, and its checkpoint moves past it.
  await store.append({ streamId: 'person-0001', expectedRevision: 'no_stream', serial: { allocate: true }, events: [{ type: 'PersonNumbered', data: { digest: sha256('x') }, terminal: 'completed' }], metadata: { actor: 'system:test', correlationId: 'p' } });
  const pensionAsksMuroran = (queryId: string, at: string, subjectId: SubjectId = AOYAMA): QuerySpec => ({
    queryId, requester: PENSION, provider: MURORAN, procedure: 'pre-twenty-disability-pension-income-check', items: ['local-tax'], subjectId, at,
  });
  // Outside the window for NOW (7 years and a day before), then just inside it.
  await s.query(pensionAsksMuroran('q-old', '2019-11-21T00:00:00.000Z'));
  await s.answer('q-old', '2019-11-21T00:00:01.000Z');
  await s.query(pensionAsksMuroran('q-edge', '2019-11-23T00:00:00.000Z'));
  await s.answer('q-edge', '2019-11-23T00:00:01.000Z');
  // Either side of midnight between March and April, Japan time (15:00 UTC).
  await s.query(pensionAsksMuroran('q-march', '2026-03-31T14:59:59.000Z'));
  await s.answer('q-march', '2026-03-31T14:59:59.500Z');
  await s.query(pensionAsksMuroran('q-april', '2026-03-31T15:00:00.000Z'));
  await s.refuse('q-april', 'NO_RECORD', '2026-03-31T15:00:01.000Z');
  await s.query({ queryId: 'q-fail', requester: SAPPORO, provider: MURORAN, procedure: 'child-allowance', items: ['local-tax', 'resident-record'], subjectId: AOYAMA, at: '2026-04-02T01:00:00.000Z' });
  await s.fail('q-fail', 'PROVIDER_TIMEOUT', '2026-04-02T01:00:30.000Z');
  // Denials: one that names nobody (wrong credential), one that names the person (no code at the provider).
  await s.query({ ...pensionAsksMuroran('q-stolen', '2026-04-03T00:00:00.000Z'), wrongCredential: true });
  await s.query({ ...pensionAsksMuroran('q-nocode', '2026-04-03T00:01:00.000Z'), noCodeAtProvider: true });
  await s.query({ ...pensionAsksMuroran('q-unknown', '2026-04-03T00:02:00.000Z'), requester: 'ghost-agency' });
  // Muroran renames itself; a table version 2 takes effect on 2026-06-01 with new names.
  await s.renameAgency(MURORAN, '室蘭市役所', '2026-05-01T00:00:00.000Z');
  await s.publishTable(rawTableV2('2026-06-01T00:00:00+09:00'), '2026-05-15T00:00:00.000Z');
  await s.query({ queryId: 'q-v1', requester: SAPPORO, provider: MURORAN, procedure: 'child-allowance', items: ['local-tax'], subjectId: KATO, at: '2026-05-31T14:59:00.000Z' });
  await s.answer('q-v1', '2026-05-31T14:59:01.000Z');
  await s.query({ queryId: 'q-v2', requester: SAPPORO, provider: MURORAN, procedure: 'child-allowance', items: ['local-tax'], subjectId: KATO, at: '2026-05-31T15:00:00.000Z' });
  await s.answer('q-v2', '2026-05-31T15:00:01.000Z');
  // A bulk query of three people.
  for (let i = 0; i < 3; i++) {
    await s.query({ ...pensionAsksMuroran(`q-bulk-${i}`, `2026-07-01T00:00:0${i}.000Z`, subject(10 + i)), batch: { batchId: 'batch-2026-07', index: i, size: 3 } });
  }
  await s.answer('q-bulk-0', '2026-07-01T00:01:00.000Z');
  await s.refuse('q-bulk-1', 'AUTOMATIC_ANSWER_RESTRICTED', '2026-07-01T00:01:00.000Z');
  // Still open when the hub crashes: q-bulk-2 is voided at restart; q-pending stays open after it.
  await s.voidOpen();
  await s.query(pensionAsksMuroran('q-pending', '2026-11-21T23:00:00.000Z'));
  return s;
}
