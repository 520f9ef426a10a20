import { describe, expect, test } from 'vitest';
import { InMemoryEventStore } from '#ledger';
import { InMemoryCodeMapper, StoreCodeMapper, asCodeTranslation, catchUp, rebuildFrom } from '#mapper';
import { codeMapperContract } from './code-mapper.contract.js';
import { MURORAN, PENSION, acquireInStore, population } from './fixtures.js';

codeMapperContract('in-memory', async () => ({ mapper: new InMemoryCodeMapper(), cleanup: async () => {} }));

describe('projection runner over the event store (in-memory ledger)', () => {
  test('rebuildFrom replays the log into a fresh mapper that equals one kept current with catchUp (I8)', async () => {
    const store = new InMemoryEventStore();
    const live = new InMemoryCodeMapper();
    const first = population(10);
    await acquireInStore(store, first);
    await catchUp(store, live, { pageSize: 7 });
    const second = population(10);
    await acquireInStore(store, second);
    await catchUp(store, live, { pageSize: 7 });
    const rebuilt = new InMemoryCodeMapper();
    expect(await rebuildFrom(store, rebuilt)).toBe((await store.head()) - 1);
    expect(await rebuilt.entries()).toEqual(await live.entries());
    expect(await rebuilt.entries()).toHaveLength(first.length + second.length);
    await store.close();
  });

  test('the store mapper answers from the log and catches up with every question', async () => {
    const store = new InMemoryEventStore();
    const mapper = new StoreCodeMapper(store, { pageSize: 3 });
    const people = population(3, [PENSION, MURORAN]);
    await acquireInStore(store, people);
    const [a, b] = [people.find((p) => p.agencyId === PENSION)!, people.find((p) => p.agencyId === MURORAN && p.subjectId === people[0]!.subjectId)!];
    expect(await mapper.translate(PENSION, a.code, MURORAN)).toEqual({ status: 'translated', subjectId: a.subjectId, code: b.code });
    const later = population(1, [PENSION]);
    await acquireInStore(store, later);
    expect(await mapper.resolve(PENSION, later[0]!.code)).toBe(later[0]!.subjectId);
    expect(mapper.position).toBe((await store.head()) - 1);
    expect(await mapper.entries()).toHaveLength(people.length + 1);
    await store.close();
  });
});

describe('asCodeTranslation', () => {
  test('turns a mapper translation into the query decider\'s CodeTranslation', () => {
    const subjectId = population(1)[0]!.subjectId;
    const code = population(1)[0]!.code;
    expect(asCodeTranslation({ status: 'translated', subjectId, code })).toEqual({ status: 'translated', subjectId, providerCode: code });
    expect(asCodeTranslation({ status: 'unknown-code' })).toEqual({ status: 'unknown-code' });
    expect(asCodeTranslation({ status: 'no-target-code', subjectId })).toEqual({ status: 'no-code-at-provider', subjectId });
  });
});
