import { describe, expect, test } from 'vitest';
import {
  authorizeSelfDisclosure,
  compileSelfDisclosurePolicy,
  parseSelfDisclosureTable,
  selfDisclosureTableInForce,
  selfDisclosureTablesDecider,
  selfInformationDecider,
  type PublishSelfDisclosureTable,
  type QueryStreamEvent,
  type SelfDisclosureTablePublished,
} from '#linkage';
import type { NewEvent } from '#ledger';
import { inMemorySealer } from '#sealing';
import { readJson, schemaValidator } from '../../../test/support/json-schema.js';
import { AOYAMA, CODE_B, MURORAN, T0, facts, sha256, table, x25519Key } from './fixtures.js';
import { deciderSpec } from './given-when-then.js';

const FILE = 'schemas/authorization/self-disclosure-table.v1.json';
const SCHEMA = 'schemas/authorization/self-disclosure-table.schema.json';
const raw = (): Record<string, unknown> => readJson(FILE) as Record<string, unknown>;
const v1 = () => parseSelfDisclosureTable(raw());
const spec = deciderSpec(selfDisclosureTablesDecider);
const D1 = sha256('sd-v1');
const publish = (t: unknown, publishedAt: string, digest: string = D1): PublishSelfDisclosureTable => ({ type: 'PublishSelfDisclosureTable', data: { table: t, digest, publishedAt } });
const published1: SelfDisclosureTablePublished = {
  type: 'SelfDisclosureTablePublished',
  schemaVersion: 1,
  data: { version: 1, effectiveFrom: v1().effectiveFrom, digest: D1, publishedAt: '2026-01-10T00:00:00.000Z', table: v1() },
  terminal: 'completed',
};

describe('the self-disclosure table (schemas/authorization/self-disclosure-table.v1.json)', () => {
  test('conforms to its JSON Schema and parses', () => {
    expect(schemaValidator(SCHEMA)(raw()).errors).toBe('No errors');
    expect(v1().rows.map((r) => r.providerKind)).toEqual(['municipality', 'prefecture', 'pension-service', 'hello-work']);
  });

  test('every item is an item of the authorization table, with the same names, that the same kind provides there', () => {
    const auth = table();
    for (const row of v1().rows) {
      for (const item of row.items) {
        expect(auth.items.find((i) => i.code === item.code), item.code).toMatchObject({ name: item.name, nameEn: item.nameEn });
        expect(auth.rows.some((r) => r.providerKind === row.providerKind && r.items.some((i) => i.code === item.code)), `${row.providerKind} provides ${item.code}`).toBe(true);
      }
    }
  });

  test('refuses a table JSON Schema cannot fault: a kind twice, an item twice, one code named two ways; lists every problem at once', () => {
    const rows = raw()['rows'] as Record<string, unknown>[];
    const twice = { ...raw(), rows: [...rows, rows[0]] };
    expect(() => parseSelfDisclosureTable(twice)).toThrow(/second row for provider kind "municipality"/);
    const item = { code: 'local-tax', name: '地方税関係情報', nameEn: 'Local tax information' };
    expect(() => parseSelfDisclosureTable({ ...raw(), rows: [{ providerKind: 'municipality', items: [item, item] }] })).toThrow(/listed twice/);
    expect(() => parseSelfDisclosureTable({ ...raw(), rows: [{ providerKind: 'municipality', items: [item] }, { providerKind: 'prefecture', items: [{ ...item, name: '住民税' }] }] })).toThrow(/named differently/);
    expect(() => parseSelfDisclosureTable({ ...raw(), version: 0, rows: [{ providerKind: 'ministry', items: [] }] })).toThrow(expect.objectContaining({ code: 'INVALID_SELF_DISCLOSURE_TABLE', details: { problems: expect.arrayContaining([expect.stringMatching(/version/), expect.stringMatching(/providerKind/), expect.stringMatching(/at least one information item/)]) } }));
  });
});

describe('the self-disclosure policy', () => {
  const policy = compileSelfDisclosurePolicy(v1());
  test('allows what the row of the provider\'s kind lists, with the item\'s name', () => {
    expect(authorizeSelfDisclosure(policy, { providerKind: 'municipality', itemCode: 'resident-record', at: T0 })).toEqual({
      allowed: true,
      tableVersion: 1,
      item: { code: 'resident-record', name: '住民票関係情報', nameEn: 'Resident record information' },
    });
  });
  test('refuses precisely: no version in force, not yet effective, an item the kind does not disclose, a kind that discloses nothing', () => {
    expect(authorizeSelfDisclosure(undefined, { providerKind: 'municipality', itemCode: 'local-tax', at: T0 })).toMatchObject({ allowed: false, reason: 'SELF_DISCLOSURE_TABLE_NOT_IN_FORCE' });
    expect(authorizeSelfDisclosure(policy, { providerKind: 'municipality', itemCode: 'local-tax', at: '2019-06-30T14:59:59Z' })).toMatchObject({ allowed: false, reason: 'SELF_DISCLOSURE_TABLE_NOT_IN_FORCE', tableVersion: 1 });
    expect(authorizeSelfDisclosure(policy, { providerKind: 'hello-work', itemCode: 'local-tax', at: T0 })).toMatchObject({ allowed: false, reason: 'SELF_DISCLOSURE_NOT_ALLOWED', allowedItems: ['employment-insurance'] });
    expect(authorizeSelfDisclosure(policy, { providerKind: 'health-insurer', itemCode: 'local-tax', at: T0 })).toMatchObject({ allowed: false, reason: 'SELF_DISCLOSURE_NOT_ALLOWED', allowedItems: [], message: expect.stringMatching(/discloses no information/) });
  });
  test('throws for a request that cannot be judged', () => {
    expect(() => authorizeSelfDisclosure(policy, { providerKind: 'municipality', itemCode: 'Local_Tax', at: T0 })).toThrow(expect.objectContaining({ code: 'MALFORMED' }));
    expect(() => authorizeSelfDisclosure(policy, { providerKind: 'municipality', itemCode: 'local-tax', at: 'now' })).toThrow(expect.objectContaining({ code: 'MALFORMED' }));
  });
});

describe('self-disclosure table publication', () => {
  test('given nothing, when version 1 is published, then SelfDisclosureTablePublished holds the whole table', () => {
    spec.given([]).when(publish(raw(), '2026-01-10T00:00:00.000Z')).then([published1]);
  });
  test('given version 1, when a later version 2 is published, then the version in force follows effectiveFrom', () => {
    const [v2] = spec.given([published1]).when(publish({ ...raw(), version: 2, effectiveFrom: '2027-04-01T00:00:00+09:00' }, '2026-03-01T00:00:00.000Z', sha256('v2'))).thenEvents();
    const state = [published1, v2!].reduce(selfDisclosureTablesDecider.evolve, selfDisclosureTablesDecider.initialState());
    expect(selfDisclosureTableInForce(state, '2027-03-31T14:59:59Z')?.version).toBe(1);
    expect(selfDisclosureTableInForce(state, '2027-03-31T15:00:00Z')?.version).toBe(2);
    expect(selfDisclosureTableInForce(selfDisclosureTablesDecider.initialState(), T0)).toBeUndefined();
  });
  test('refuses a version that is not newer, or that would take effect retroactively, or an invalid table', () => {
    spec.given([published1]).when(publish(raw(), '2026-03-01T00:00:00.000Z')).thenFails('TABLE_VERSION_NOT_NEWER');
    spec.given([published1]).when(publish({ ...raw(), version: 2, effectiveFrom: '2026-02-01T00:00:00Z' }, '2026-03-01T00:00:00.000Z')).thenFails('TABLE_NOT_EFFECTIVE');
    spec.given([]).when(publish({ ...raw(), rows: [] }, '2026-01-10T00:00:00.000Z')).thenFails('INVALID_SELF_DISCLOSURE_TABLE');
    spec.given([]).when(publish(raw(), '2026-01-10T00:00:00.000Z', 'abc')).thenFails('INVALID_DIGEST');
  });
});

describe('self-information events, sealed as stored, conform to schemas/events/*.v3.json', () => {
  const sealer = inMemorySealer();
  const SEALED_SECTION = 'schemas/events/sealed-section.v1.json';
  const stored = (event: NewEvent) => sealer.seal('query-q', event);
  const v3 = (file: string) => schemaValidator(`schemas/events/${file}.v3.json`, [SEALED_SECTION]);
  const submit = (overrides: Record<string, unknown> = {}) =>
    selfInformationDecider.decide(
      {
        type: 'SubmitSelfInformationRequest',
        data: { queryId: 'q', subjectId: AOYAMA, providerAgencyId: MURORAN, provider: facts(MURORAN, 'municipality'), itemCode: 'local-tax', policy: compileSelfDisclosurePolicy(v1()), providerCode: CODE_B, answerPublicKey: x25519Key('k'), submittedAt: T0, ...overrides },
      },
      selfInformationDecider.initialState(),
    );

  test('QueryAccepted v3 and ProvisionRequested v3: stored as version 3, the subject, the code and the key sealed; ProvisionAnswered as any', () => {
    const [accepted, requested] = submit();
    const a = stored(accepted!);
    const r = stored(requested!);
    expect([a.schemaVersion, r.schemaVersion]).toEqual([3, 3]);
    expect(v3('query-accepted')(a.data).errors).toBe('No errors');
    expect(v3('provision-requested')(r.data).errors).toBe('No errors');
    expect(JSON.stringify([a, r])).not.toContain(AOYAMA);
    expect(JSON.stringify(r)).not.toContain(CODE_B);
    expect(JSON.stringify(r)).not.toContain(x25519Key('k'));
    // They open again with the hub's keys, as every sealed event does.
    expect(sealer.open({ ...r, streamId: 'query-q', schemaVersion: 3 } as never).event).toMatchObject({ data: { providerCode: CODE_B, subjectId: AOYAMA, answerPublicKey: x25519Key('k') } });
    const state = [accepted!, requested!].reduce((s, e) => selfInformationDecider.evolve(s, e as QueryStreamEvent), selfInformationDecider.initialState());
    const [answered] = selfInformationDecider.decide({ type: 'RecordProvisionAnswer', data: { queryId: 'q', providerAgencyId: MURORAN, answerDigest: 'b'.repeat(64), answerSize: 99, encrypted: true, answeredAt: T0 } }, state);
    expect(stored(answered!).schemaVersion).toBe(2);
  });

  test('QueryDenied v3, for every reason, and the agency form is not valid v3', () => {
    for (const overrides of [{ itemCode: 'pension-benefit' }, { providerCode: null }, { provider: undefined }, { policy: undefined }, { provider: facts(MURORAN, 'municipality', 'revoked') }]) {
      const [denied] = submit(overrides);
      const d = stored(denied!);
      expect(d.schemaVersion).toBe(3);
      expect(v3('query-denied')(d.data).errors).toBe('No errors');
    }
    const [accepted] = submit();
    expect(v3('query-accepted')({ ...stored(accepted!).data as object, requesterAgencyId: 'jpn-pension-service' }).valid).toBe(false);
    expect(v3('query-accepted')({ ...stored(accepted!).data as object, requesterKind: 'pension-service' }).valid).toBe(false);
  });

  test('SelfDisclosureTablePublished is stored in clear and conforms to its schema', () => {
    const event = stored(published1);
    expect(event).toBe(published1);
    expect(schemaValidator('schemas/events/self-disclosure-table-published.v1.json', [SCHEMA])(event.data).errors).toBe('No errors');
  });
});
