import fc from 'fast-check';
import { afterEach, beforeEach, describe, expect, test } from 'vitest';
import type { CodeMapper, CodeMapperProjection } from '#mapper';
import type { AgencyCode, SubjectId } from '#linkage';
import { HELLO_WORK, MURORAN, PENSION, SAPPORO, asEvents, freshCode, freshSubject, population as drawPopulation, recorded, recordedIssued, type Issued } from './fixtures.js';

export interface MapperUnderTest {
  readonly mapper: CodeMapper & CodeMapperProjection;
  readonly cleanup: () => Promise<void>;
}

export interface ContractOptions {
  readonly propertyRuns?: number;
  /** How issued codes are drawn (default: at random); the hub mints them with its code locator. */
  readonly mint?: (subjectId: SubjectId) => AgencyCode;
}

/** One contract, every implementation (in-memory, Redis, Redis with forced collisions, minted codes). */
export function codeMapperContract(name: string, make: () => Promise<MapperUnderTest>, options: ContractOptions = {}): void {
  const mint = options.mint ?? (() => freshCode());
  const population = (subjects: number, agencies?: Parameters<typeof drawPopulation>[1]): Issued[] => drawPopulation(subjects, agencies, mint);
  /** Aoyama-san (seeds/001): code A at the pension service, code B at Muroran City. */
  const aoyama = freshSubject();
  const CODE_A = mint(aoyama);
  const CODE_B = mint(aoyama);
  const AOYAMA: readonly Issued[] = [
    { subjectId: aoyama, agencyId: PENSION, code: CODE_A },
    { subjectId: aoyama, agencyId: MURORAN, code: CODE_B },
  ];
  describe(`CodeMapper contract: ${name}`, () => {
    let m: CodeMapper & CodeMapperProjection;
    let cleanup: () => Promise<void>;

    beforeEach(async () => {
      ({ mapper: m, cleanup } = await make());
    });
    afterEach(async () => {
      await cleanup();
    });

    test('translates the pension service\'s code A into Muroran\'s code B, and resolves both to Aoyama-san', async () => {
      await m.apply(asEvents(AOYAMA));
      expect(await m.translate(PENSION, CODE_A, MURORAN)).toEqual({ status: 'translated', subjectId: aoyama, code: CODE_B });
      expect(await m.translate(MURORAN, CODE_B, PENSION)).toEqual({ status: 'translated', subjectId: aoyama, code: CODE_A });
      expect(await m.resolve(PENSION, CODE_A)).toBe(aoyama);
      expect(await m.resolve(MURORAN, CODE_B)).toBe(aoyama);
      expect(await m.codeFor(aoyama, MURORAN)).toBe(CODE_B);
      expect(await m.translate(PENSION, CODE_A, PENSION)).toEqual({ status: 'translated', subjectId: aoyama, code: CODE_A });
    });

    test('I7: a code resolves only for the agency it was issued to', async () => {
      await m.apply(asEvents(AOYAMA));
      expect(await m.resolve(MURORAN, CODE_A)).toBeUndefined();
      expect(await m.translate(MURORAN, CODE_A, PENSION)).toEqual({ status: 'unknown-code' });
      expect(await m.translate(SAPPORO, CODE_A, MURORAN)).toEqual({ status: 'unknown-code' });
    });

    test('unknown, malformed and never-seen input answers "not found", not an error', async () => {
      await m.apply(asEvents(AOYAMA));
      expect(await m.resolve(PENSION, freshCode())).toBeUndefined();
      expect(await m.resolve(PENSION, '123456789018')).toBeUndefined();
      expect(await m.resolve('never-seen-agency', CODE_A)).toBeUndefined();
      expect(await m.codeFor(freshSubject(), MURORAN)).toBeUndefined();
      expect(await m.codeFor('not-a-uuid', MURORAN)).toBeUndefined();
      expect(await m.codeFor(aoyama, 'never-seen-agency')).toBeUndefined();
      expect(await m.translate(PENSION, 'x', MURORAN)).toEqual({ status: 'unknown-code' });
    });

    test('a person without a code at the target is "no-target-code" with the subject', async () => {
      await m.apply(asEvents(AOYAMA));
      expect(await m.translate(PENSION, CODE_A, HELLO_WORK)).toEqual({ status: 'no-target-code', subjectId: aoyama });
      expect(await m.translate(PENSION, CODE_A, 'never-seen-agency')).toEqual({ status: 'no-target-code', subjectId: aoyama });
    });

    test('batch forms answer in input order, one result per input, duplicates and misses included', async () => {
      const people = population(30, [PENSION, MURORAN]);
      await m.apply(asEvents(people));
      const pension = people.filter((p) => p.agencyId === PENSION);
      const muroranOf = new Map(people.filter((p) => p.agencyId === MURORAN).map((p) => [p.subjectId, p.code]));
      const unknown = freshCode();
      const codes = [...pension.map((p) => p.code), unknown, pension[0]!.code, 'bad'];
      const translations = await m.translateMany(PENSION, codes, MURORAN);
      expect(translations).toEqual([
        ...pension.map((p) => ({ status: 'translated', subjectId: p.subjectId, code: muroranOf.get(p.subjectId) })),
        { status: 'unknown-code' },
        { status: 'translated', subjectId: pension[0]!.subjectId, code: muroranOf.get(pension[0]!.subjectId) },
        { status: 'unknown-code' },
      ]);
      expect(await m.resolveMany(PENSION, codes)).toEqual([...pension.map((p) => p.subjectId), undefined, pension[0]!.subjectId, undefined]);
      const subjects = [...pension.map((p) => p.subjectId), freshSubject()];
      expect(await m.codeForMany(MURORAN, subjects)).toEqual([...pension.map((p) => muroranOf.get(p.subjectId)), undefined]);
      expect(await m.translateMany(PENSION, [], MURORAN)).toEqual([]);
    });

    test('the checkpoint starts at -1, follows the last event applied, and skips what it covers (at-least-once delivery)', async () => {
      expect(await m.checkpoint()).toBe(-1);
      const events = asEvents(AOYAMA);
      await m.apply(events);
      expect(await m.checkpoint()).toBe(1);
      await m.apply(events);
      await m.apply([...events, recorded(2, 'QueryAccepted', { queryId: 'q' }), recorded(3, 'AgencyRegistered', {})]);
      expect(await m.checkpoint()).toBe(3);
      expect(await m.entries()).toHaveLength(2);
    });

    test('refuses events out of order, an AgencyCodeIssued it cannot trust, and a second code for one (subject, agency)', async () => {
      await expect(m.apply([recordedIssued(5, AOYAMA[0]!), recordedIssued(4, AOYAMA[1]!)])).rejects.toMatchObject({ code: 'OUT_OF_ORDER' });
      await expect(m.apply([recorded(0, 'AgencyCodeIssued', { subjectId: '123456789018', agencyId: PENSION, code: CODE_A })])).rejects.toMatchObject({ code: 'INVALID_EVENT' });
      await m.apply(asEvents(AOYAMA));
      await expect(m.apply([recordedIssued(2, { subjectId: aoyama, agencyId: PENSION, code: mint(aoyama) })])).rejects.toMatchObject({ code: 'CODE_CONFLICT' });
    });

    test('entries() lists every mapping sorted; reset() drops them and the checkpoint', async () => {
      const people = population(5);
      await m.apply(asEvents(people));
      const entries = await m.entries();
      expect(entries).toHaveLength(people.length);
      expect(entries).toEqual([...people].sort((a, b) => (a.subjectId < b.subjectId ? -1 : a.subjectId > b.subjectId ? 1 : a.agencyId < b.agencyId ? -1 : 1)));
      await m.reset();
      expect(await m.entries()).toEqual([]);
      expect(await m.checkpoint()).toBe(-1);
      expect(await m.resolve(PENSION, people[0]!.code)).toBeUndefined();
    });

    test('I8: applied in small live batches or replayed at once, the result is the same', async () => {
      const events = asEvents(population(40));
      for (let i = 0; i < events.length; i += 7) await m.apply(events.slice(i, i + 7));
      const live = await m.entries();
      await m.reset();
      await m.apply(events);
      expect(await m.entries()).toEqual(live);
      expect(await m.checkpoint()).toBe(events.length - 1);
    });

    test('property: every issued code translates to the person\'s code at every other agency; codes of two agencies for one person differ', async () => {
      await fc.assert(
        fc.asyncProperty(fc.integer({ min: 1, max: 25 }), fc.subarray([PENSION, MURORAN, SAPPORO, HELLO_WORK], { minLength: 2 }), async (n, agencies) => {
          await m.reset();
          const people = population(n, agencies);
          await m.apply(asEvents(people));
          for (const p of people) {
            for (const other of agencies) {
              const expected = people.find((q) => q.subjectId === p.subjectId && q.agencyId === other)!;
              if (other !== p.agencyId) expect(expected.code).not.toBe(p.code);
            }
          }
          const [from, to] = [agencies[0]!, agencies[1]!];
          const sources = people.filter((p) => p.agencyId === from);
          const got = await m.translateMany(from, sources.map((p) => p.code), to);
          got.forEach((t, i) => {
            const target = people.find((q) => q.subjectId === sources[i]!.subjectId && q.agencyId === to)!;
            expect(t).toEqual({ status: 'translated', subjectId: sources[i]!.subjectId, code: target.code });
          });
          expect(await m.resolveMany(to, sources.map((p) => p.code))).toEqual(sources.map(() => undefined));
        }),
        { numRuns: options.propertyRuns ?? 50 },
      );
    });

    test('a batch of 3,000 translations', async () => {
      const people = population(1500, [PENSION, MURORAN]);
      for (let i = 0; i < people.length; i += 1000) await m.apply(asEvents(people.slice(i, i + 1000), i));
      const sources = people.filter((p) => p.agencyId === PENSION);
      const got = await m.translateMany(PENSION, [...sources, ...sources].map((p) => p.code), MURORAN);
      expect(got.filter((t) => t.status === 'translated')).toHaveLength(3000);
      expect(got[1500]).toEqual(got[0]);
    });
  });
}
