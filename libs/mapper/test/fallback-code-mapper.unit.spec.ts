import { afterEach, describe, expect, test, vi } from 'vitest';
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

/** A primary whose calls can be held (a stalled Redis): each held call waits until the test settles it. */
class Stallable implements CodeMapper {
  stalled = false;
  calls = 0;
  readonly held: { release: () => void; fail: () => void }[] = [];
  constructor(readonly inner: CodeMapper) {}
  async #gate(): Promise<void> {
    this.calls++;
    if (!this.stalled) return;
    await new Promise<void>((resolve, reject) => this.held.push({ release: resolve, fail: () => reject(new MapperUnavailableError('Redis mapper translate did not finish within 2000 ms')) }));
  }
  async resolve(a: string, c: string) { await this.#gate(); return this.inner.resolve(a, c); }
  async resolveMany(a: string, c: readonly string[]) { await this.#gate(); return this.inner.resolveMany(a, c); }
  async codeFor(s: string, a: string) { await this.#gate(); return this.inner.codeFor(s, a); }
  async codeForMany(a: string, s: readonly string[]) { await this.#gate(); return this.inner.codeForMany(a, s); }
  async translate(f: string, c: string, t: string) { await this.#gate(); return this.inner.translate(f, c, t); }
  async translateMany(f: string, c: readonly string[], t: string) { await this.#gate(); return this.inner.translateMany(f, c, t); }
}

describe('FallbackCodeMapper: the circuit breaker (injected clock)', () => {
  async function breaker(options: { startOpen?: string; slowCallMs?: number } = {}) {
    const people = population(3, [PENSION, MURORAN]);
    const primaryData = new InMemoryCodeMapper();
    const store = new InMemoryCodeMapper();
    await primaryData.apply(asEvents(people));
    await store.apply(asEvents(people));
    const primary = new Stallable(primaryData);
    let now = 5_000_000;
    const changes: string[] = [];
    const mapper = new FallbackCodeMapper(primary, store, { retryAfterMs: 1000, now: () => now, onChange: (h) => changes.push(`${h.mode}/${h.breaker}`), ...options });
    const code = people.find((p) => p.agencyId === PENSION)!.code;
    const ask = () => mapper.translate(PENSION, code, MURORAN);
    return { primary, mapper, changes, ask, advance: (ms: number) => void (now += ms) };
  }
  const flush = () => new Promise((r) => setImmediate(r));

  test('closed → open on a timed-out call; open: the store answers without asking the primary', async () => {
    const { primary, mapper, changes, ask, advance } = await breaker();
    expect(mapper.health().breaker).toBe('closed');
    primary.stalled = true;
    const tripping = ask();
    await flush();
    primary.held.shift()!.fail();
    expect(await tripping).toMatchObject({ status: 'translated' });
    expect(mapper.health()).toMatchObject({ mode: 'degraded', breaker: 'open', reason: expect.stringMatching(/did not finish/) });
    for (let i = 0; i < 20; i++) {
      advance(40);
      expect(await ask()).toMatchObject({ status: 'translated' });
    }
    expect(primary.calls).toBe(1);
    expect(primary.held).toHaveLength(0);
    expect(changes).toEqual(['degraded/open']);
  });

  test('half-open: after the cool-down one call probes Redis in the background while the store answers it and the others; a failed probe reopens for another cool-down', async () => {
    const { primary, mapper, changes, ask, advance } = await breaker();
    primary.stalled = true;
    const tripping = ask();
    await flush();
    primary.held.shift()!.fail();
    await tripping;
    advance(999);
    await ask();
    expect(primary.calls).toBe(1);
    advance(1);
    // The probing call does not wait for the (still stalled) primary: the store answers it.
    expect(await ask()).toMatchObject({ status: 'translated' });
    expect(primary.calls).toBe(2);
    expect(mapper.health()).toMatchObject({ mode: 'degraded', breaker: 'half-open' });
    const others = await Promise.all([ask(), ask(), ask()]);
    expect(others.every((t) => t.status === 'translated')).toBe(true);
    expect(primary.calls).toBe(2);
    primary.held.shift()!.fail();
    await flush();
    expect(mapper.health().breaker).toBe('open');
    advance(500);
    await ask();
    expect(primary.calls).toBe(2);

    // Redis answers again: the next probe closes the breaker, and the calls after it go to Redis.
    advance(500);
    primary.stalled = false;
    await ask();
    expect(primary.calls).toBe(3);
    await flush();
    expect(mapper.health()).toMatchObject({ mode: 'primary', degraded: false, breaker: 'closed' });
    await ask();
    expect(primary.calls).toBe(4);
    expect(changes).toEqual(['degraded/open', 'primary/closed']);
  });

  test('startOpen: degraded from the start; the first call probes in the background; primaryAnswered() closes it', async () => {
    const { primary, mapper, changes, ask } = await breaker({ startOpen: 'the Redis mapper is not open yet' });
    expect(mapper.health()).toMatchObject({ mode: 'degraded', degraded: true, breaker: 'open', reason: 'the Redis mapper is not open yet' });
    primary.stalled = true;
    expect(await ask()).toMatchObject({ status: 'translated' });
    expect(await Promise.all([ask(), ask()])).toHaveLength(2);
    expect(primary.calls).toBe(1);
    primary.held.shift()!.fail();
    await flush();
    expect(mapper.health().breaker).toBe('open');
    primary.stalled = false;
    mapper.primaryAnswered();
    expect(mapper.health()).toMatchObject({ mode: 'primary', breaker: 'closed' });
    await ask();
    expect(primary.calls).toBe(2);
    expect(changes).toEqual(['primary/closed']);
  });

  describe('slowCallMs: a stall trips the breaker after a short wait, not after the primary\'s own timeout', () => {
    afterEach(() => {
      vi.useRealTimers();
    });

    test('the calls in flight when Redis stalled wait slowCallMs, then the store answers; the breaker opens; later calls do not touch the primary', async () => {
      vi.useFakeTimers();
      const { primary, mapper, changes, ask } = await breaker({ slowCallMs: 50 });
      primary.stalled = true;
      const inFlight = [ask(), ask(), ask()];
      let settled = 0;
      for (const call of inFlight) void call.then(() => settled++);
      await vi.advanceTimersByTimeAsync(49);
      expect(settled).toBe(0);
      await vi.advanceTimersByTimeAsync(1);
      expect(await Promise.all(inFlight)).toEqual(inFlight.map(() => expect.objectContaining({ status: 'translated' })));
      expect(mapper.health()).toMatchObject({ mode: 'degraded', breaker: 'open', reason: 'no answer within 50 ms (stalled)' });
      expect(changes).toEqual(['degraded/open']);
      // The store answers at once while the breaker is open: no timer, no wait.
      expect(await ask()).toMatchObject({ status: 'translated' });
      expect(primary.calls).toBe(3);
      // The stalled calls' late answers and failures are dropped.
      primary.held.shift()!.release();
      primary.held.shift()!.fail();
      await vi.advanceTimersByTimeAsync(0);
      expect(mapper.health().breaker).toBe('open');
    });

    test('an answer within slowCallMs keeps the breaker closed and leaves no timer behind', async () => {
      vi.useFakeTimers();
      const { primary, mapper, ask } = await breaker({ slowCallMs: 50 });
      for (let i = 0; i < 5; i++) expect(await ask()).toMatchObject({ status: 'translated' });
      expect(primary.calls).toBe(5);
      expect(mapper.health()).toMatchObject({ mode: 'primary', breaker: 'closed' });
      expect(vi.getTimerCount()).toBe(0);
    });

    test('without slowCallMs a stalled call waits for the primary\'s own verdict', async () => {
      vi.useFakeTimers();
      const { primary, mapper, ask } = await breaker();
      primary.stalled = true;
      let settled = false;
      const call = ask().then((r) => {
        settled = true;
        return r;
      });
      await vi.advanceTimersByTimeAsync(10_000);
      expect(settled).toBe(false);
      expect(mapper.health().breaker).toBe('closed');
      primary.held.shift()!.fail();
      expect(await call).toMatchObject({ status: 'translated' });
      expect(mapper.health().breaker).toBe('open');
    });

    test('a probe after the cool-down is bounded by slowCallMs too, and no call waits for it; when Redis answers in time the breaker closes', async () => {
      vi.useFakeTimers();
      const { primary, mapper, changes, ask, advance } = await breaker({ slowCallMs: 50 });
      primary.stalled = true;
      const tripping = ask();
      await vi.advanceTimersByTimeAsync(50);
      await tripping;
      advance(1000);
      expect(await ask()).toMatchObject({ status: 'translated' });
      expect(mapper.health().breaker).toBe('half-open');
      await vi.advanceTimersByTimeAsync(50);
      expect(mapper.health()).toMatchObject({ breaker: 'open', reason: 'no answer within 50 ms (stalled)' });
      primary.stalled = false;
      advance(1000);
      expect(await ask()).toMatchObject({ status: 'translated' });
      await vi.advanceTimersByTimeAsync(0);
      expect(mapper.health()).toMatchObject({ mode: 'primary', breaker: 'closed' });
      expect(changes).toEqual(['degraded/open', 'primary/closed']);
    });
  });
});
