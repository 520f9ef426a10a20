import { describe, expect, test } from 'vitest';
import { FallbackCodeMapper, InMemoryCodeMapper, MapperError, MapperUnavailableError, type CodeMapper, type MapperHealth } from '#mapper';
import { MURORAN, PENSION, asEvents, population } from './fixtures.js';

/** A primary that can be switched off (MAPPER_UNAVAILABLE) or made to fail otherwise. */
class Switchable implements CodeMapper {
  down = false;
  broken = false;
  calls = 0;
  constructor(readonly inner: CodeMapper) {}
  #gate(): void {
    this.calls++;
    if (this.broken) throw new MapperError('LAYOUT_MISMATCH', 'misconfigured');
    if (this.down) throw new MapperUnavailableError('Redis mapper translate failed: connect ECONNREFUSED 127.0.0.1:6379');
  }
  async resolve(a: string, c: string) { this.#gate(); return this.inner.resolve(a, c); }
  async resolveMany(a: string, c: readonly string[]) { this.#gate(); return this.inner.resolveMany(a, c); }
  async codeFor(s: string, a: string) { this.#gate(); return this.inner.codeFor(s, a); }
  async codeForMany(a: string, s: readonly string[]) { this.#gate(); return this.inner.codeForMany(a, s); }
  async translate(f: string, c: string, t: string) { this.#gate(); return this.inner.translate(f, c, t); }
  async translateMany(f: string, c: readonly string[], t: string) { this.#gate(); return this.inner.translateMany(f, c, t); }
}

async function setup() {
  const people = population(5, [PENSION, MURORAN]);
  const primaryData = new InMemoryCodeMapper();
  const store = new InMemoryCodeMapper();
  await primaryData.apply(asEvents(people));
  await store.apply(asEvents(people));
  const primary = new Switchable(primaryData);
  let now = 1_000_000;
  const changes: MapperHealth[] = [];
  const mapper = new FallbackCodeMapper(primary, store, { retryAfterMs: 500, now: () => now, onChange: (h) => changes.push(h) });
  const advance = (ms: number): void => {
    now += ms;
  };
  return { people, primary, primaryData, store, mapper, changes, advance };
}

describe('FallbackCodeMapper', () => {
  test('answers from the primary while it is up', async () => {
    const { people, primary, mapper } = await setup();
    const p = people[0]!;
    expect(await mapper.translate(PENSION, p.code, MURORAN)).toMatchObject({ status: 'translated', subjectId: p.subjectId });
    expect(primary.calls).toBe(1);
    expect(mapper.health()).toMatchObject({ mode: 'primary', degraded: false });
  });

  test('Redis down: the store answers, health says degraded with the reason, and the primary is retried only after retryAfterMs', async () => {
    const { people, primary, mapper, changes, advance } = await setup();
    primary.down = true;
    const codes = people.filter((p) => p.agencyId === PENSION).map((p) => p.code);
    const answers = await mapper.translateMany(PENSION, codes, MURORAN);
    expect(answers.every((a) => a.status === 'translated')).toBe(true);
    expect(mapper.degraded).toBe(true);
    expect(mapper.health()).toMatchObject({ mode: 'degraded', reason: expect.stringMatching(/ECONNREFUSED/) });
    expect(changes.map((c) => c.mode)).toEqual(['degraded']);
    await mapper.resolve(PENSION, codes[0]!);
    expect(primary.calls).toBe(1);
    advance(501);
    primary.down = false;
    expect(await mapper.codeFor(people[0]!.subjectId, MURORAN)).toBeDefined();
    expect(primary.calls).toBe(2);
    expect(mapper.health().mode).toBe('primary');
    expect(changes.map((c) => c.mode)).toEqual(['degraded', 'primary']);
  });

  test('confirms the primary\'s misses with the store (a projection that lags behind the log)', async () => {
    const { mapper, store } = await setup();
    const late = population(1, [PENSION, MURORAN]);
    await store.apply(asEvents(late, 10));
    expect(await mapper.translate(PENSION, late[0]!.code, MURORAN)).toEqual({ status: 'translated', subjectId: late[0]!.subjectId, code: late[1]!.code });
    expect(await mapper.resolveMany(PENSION, [late[0]!.code, 'unknown'])).toEqual([late[0]!.subjectId, undefined]);
    expect(mapper.degraded).toBe(false);
  });

  test('other errors are not hidden behind the fallback', async () => {
    const { primary, mapper } = await setup();
    primary.broken = true;
    await expect(mapper.resolve(PENSION, 'x')).rejects.toMatchObject({ code: 'LAYOUT_MISMATCH' });
    expect(mapper.degraded).toBe(false);
  });

  test('without confirmMisses the primary\'s answer stands', async () => {
    const { people, primary, store } = await setup();
    const late = population(1, [PENSION]);
    await store.apply(asEvents(late, 10));
    const mapper = new FallbackCodeMapper(primary, store, { confirmMisses: false });
    expect(await mapper.resolve(PENSION, late[0]!.code)).toBeUndefined();
    expect(await mapper.resolve(PENSION, people[0]!.code)).toBe(people[0]!.subjectId);
  });
});
