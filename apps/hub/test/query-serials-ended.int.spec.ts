import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import type { AppendRequest, EventStore, RecordedEvent } from '#ledger';
import { FakeProvider, MURORAN_CITY, PENSION, acquire, bearer, issuePerson, queryLocalTax, registerAgency, startLinkageHub, type Agency } from './support/linkage-fixture.js';
import type { TestHub } from './support/test-hub.js';

/**
 * Every serial a query opens is ended by the run that opened it (I2), not only by the next start-up's
 * recovery: when a step after the first append fails (the end of the query refused by the store, one
 * person of a bulk request refused), the hub voids the serials it left open (SerialVoided, actor
 * system:hub) before it answers with the failure, and a retry under the same idempotency key replays the
 * serial as failed INTERRUPTED.
 */

let hub: TestHub;
let provider: FakeProvider;
let pension: Agency;
let codes: string[];

const eventsOf = async (serial: string): Promise<RecordedEvent[]> => (await hub.ledger.readAll({ fromPosition: 0 })).filter((e) => e.serial === serial);
const openSerials = async (): Promise<number> => (await hub.ledger.openSerials()).length;
const serialsSince = async (position: number): Promise<string[]> => [...new Set((await hub.ledger.readAll({ fromPosition: position })).filter((e) => e.type === 'QueryAccepted').map((e) => e.serial!))];

/** Makes the ledger refuse the appends `refuse` picks (the others go through). */
function refuseAppends(refuse: (request: AppendRequest) => boolean): void {
  const store = hub.ledger as EventStore & { append: EventStore['append'] };
  const append = store.append.bind(store);
  vi.spyOn(store, 'append').mockImplementation((request: AppendRequest) => (refuse(request) ? Promise.reject(new Error('disk full (test)')) : append(request)));
}

const isEnd = (r: AppendRequest) => r.serial !== undefined && 'continue' in r.serial && !r.events.some((e) => e.type === 'SerialVoided');

beforeAll(async () => {
  hub = await startLinkageHub();
  provider = new FakeProvider();
  await provider.start(hub);
  const muroran = await registerAgency(hub, MURORAN_CITY, 'municipality', provider.endpoint);
  pension = await registerAgency(hub, PENSION, 'pension-service', provider.endpoint);
  codes = [];
  for (let i = 0; i < 3; i++) {
    const person = await issuePerson(hub);
    codes.push(await acquire(hub, pension, person.individualNumber));
    await acquire(hub, muroran, person.individualNumber);
  }
});
afterEach(() => vi.restoreAllMocks());
afterAll(async () => {
  await provider?.stop();
  await hub?.dispose();
});

describe('a query whose end the ledger refuses', () => {
  it('is answered 500 and its serial is voided at once (none stays open), the provider having been asked', async () => {
    const head = await hub.ledger.head();
    const calls = provider.calls.length;
    refuseAppends(isEnd);
    const res = await queryLocalTax(hub, pension, codes[0]!);
    expect(res.statusCode, res.body).toBe(500);
    expect(provider.calls.length).toBe(calls + 1);
    vi.restoreAllMocks();
    expect(await openSerials()).toBe(0);
    const [serial] = await serialsSince(head);
    const events = await eventsOf(serial!);
    expect(events.map((e) => e.type)).toEqual(['QueryAccepted', 'ProvisionRequested', 'SerialVoided']);
    expect(events[2]).toMatchObject({ metadata: { actor: 'system:hub' }, data: { serial, reason: expect.stringContaining('disk full (test)') as unknown } });
  });

  it('a retry under the same idempotency key replays it as 503 INTERRUPTED under the same serial, and the provider is not asked again', async () => {
    const key = `ended-${Date.now()}`;
    const body = { code: codes[1], providerAgencyId: MURORAN_CITY, procedureCode: 'pension-award-claim', itemCodes: ['local-tax'] };
    const head = await hub.ledger.head();
    refuseAppends(isEnd);
    const first = await hub.post('/v1/queries', body, { ...bearer(pension.token), 'idempotency-key': key });
    expect(first.statusCode, first.body).toBe(500);
    vi.restoreAllMocks();
    const calls = provider.calls.length;
    const again = await hub.post('/v1/queries', body, { ...bearer(pension.token), 'idempotency-key': key });
    expect(again.statusCode, again.body).toBe(503);
    expect(again.json()).toMatchObject({ code: 'INTERRUPTED', serial: (await serialsSince(head))[0] });
    expect(provider.calls.length).toBe(calls);
    expect(await openSerials()).toBe(0);
  });
});

describe('a bulk query one of whose people the ledger refuses', () => {
  it('voids the serials already opened for the others, asks the provider nothing and leaves no serial open', async () => {
    const head = await hub.ledger.head();
    const calls = provider.calls.length;
    let submits = 0;
    // The second person's first append is refused; the first and third open their serials.
    refuseAppends((r) => r.serial !== undefined && 'allocate' in r.serial && ++submits === 2);
    const res = await hub.post('/v1/queries/bulk', { codes, providerAgencyId: MURORAN_CITY, procedureCode: 'pension-award-claim', itemCodes: ['local-tax'] }, bearer(pension.token));
    expect(res.statusCode, res.body).toBe(500);
    vi.restoreAllMocks();
    expect(provider.calls.length).toBe(calls);
    expect(await openSerials()).toBe(0);
    const serials = await serialsSince(head);
    expect(serials).toHaveLength(2);
    for (const serial of serials) expect((await eventsOf(serial)).map((e) => e.type)).toEqual(['QueryAccepted', 'ProvisionRequested', 'SerialVoided']);
  });
});
