import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import type { NewEvent, RecordedEvent } from '#ledger';
import { canonicalize } from '#ledger';
import { EventSealer, InMemoryKeyring, SEALER_CACHE_ENTRIES, SealingError, inMemorySealer, commitmentsOf, generateSealingKeysFile, parseSealingKeys, prf, verifyOpening, type Opening } from '#sealing';

const keys = () => parseSealingKeys(generateSealingKeysFile(new Date('2026-12-01T00:00:00Z')));

function recorded(streamId: string, e: NewEvent, position = 0): RecordedEvent {
  return {
    eventId: randomUUID() as RecordedEvent['eventId'],
    type: e.type,
    schemaVersion: e.schemaVersion ?? 1,
    streamId,
    streamRevision: 0,
    position,
    serial: '20261201010000000001' as RecordedEvent['serial'],
    recordedAt: '2026-12-01T00:00:00.000Z',
    data: e.data,
    metadata: { actor: 'agency:jpn-pension-service', correlationId: 'c' },
  };
}

const subject = '5b0c1c8e-9a43-4d0e-8f65-0c3f2a1b9d77';
const other = '0f6a2d55-1c2b-4e7a-9b1d-3a4c5e6f7a8b';
const requesterCode = 'AbCdEfGhIjKlMnOpQrStUw';

function accepted(subjectId = subject, at = '2026-12-01T09:00:00.000Z'): NewEvent {
  return {
    type: 'QueryAccepted',
    schemaVersion: 1,
    data: {
      queryId: randomUUID(),
      requesterAgencyId: 'jpn-pension-service',
      requesterKind: 'pension-service',
      providerAgencyId: 'muroran-city',
      providerKind: 'municipality',
      procedureCode: 'pension-award-claim',
      itemCodes: ['local-tax'],
      tableVersion: 1,
      subjectId,
      requesterCode,
      acceptedAt: at,
    },
  };
}

describe('EventSealer', () => {
  it('takes every personal field out of the stored data and commits to each', () => {
    const sealer = inMemorySealer();
    const stored = sealer.seal('query-1', accepted());
    const text = JSON.stringify(stored);
    expect(text).not.toContain(subject);
    expect(text).not.toContain(requesterCode);
    expect(stored.schemaVersion).toBe(2);
    const data = stored.data as Record<string, unknown>;
    expect(data['subjectId']).toBeUndefined();
    expect(data['requesterCode']).toBeUndefined();
    expect(data['procedureCode']).toBe('pension-award-claim');
    expect(Object.keys(commitmentsOf(data)!)).toEqual(['requesterCode', 'subjectId']);
  });

  it('leaves nothing equal between two events about one person', () => {
    const sealer = inMemorySealer();
    const a = (sealer.seal('query-1', accepted()).data as { sealed: Record<string, unknown> }).sealed;
    const b = (sealer.seal('query-2', accepted()).data as { sealed: Record<string, unknown> }).sealed;
    const values = (s: Record<string, unknown>) => [s['keyRef'], s['nonce'], s['box'], ...Object.values(s['commitments'] as object)] as string[];
    for (const x of values(a)) for (const y of values(b)) expect(x).not.toBe(y);
  });

  it('opens what it sealed', () => {
    const sealer = inMemorySealer();
    const plain = accepted();
    const opened = sealer.open(recorded('query-1', sealer.seal('query-1', plain)));
    expect(opened.state).toBe('opened');
    expect(opened.event.data).toEqual(plain.data);
  });

  it('refuses to open a box moved to another stream', () => {
    const sealer = inMemorySealer();
    const stored = sealer.seal('query-1', accepted());
    expect(() => sealer.open(recorded('query-2', stored))).toThrow(SealingError);
  });

  it('gives each party the openings of its own fields only, and each verifies against the event', () => {
    const sealer = inMemorySealer();
    const event = recorded('query-1', sealer.seal('query-1', accepted()));
    const forRequester = sealer.openings(event, new Set(['requester']));
    expect(forRequester.map((o) => o.field)).toEqual(['requesterCode']);
    expect(forRequester[0]!.value).toBe(requesterCode);
    const forCitizen = sealer.openings(event, new Set(['citizen']));
    expect(forCitizen.map((o) => o.field)).toEqual(['subjectId']);
    expect(sealer.openings(event, new Set(['provider']))).toEqual([]);
    for (const o of [...forRequester, ...forCitizen]) verifyOpening(event, o);
  });

  it('commits to each value as the verifier recomputes it, for text that needs escaping, is not ASCII, or is longer than the sealer\'s scratch buffers', () => {
    const sealer = inMemorySealer();
    const notice = (title: string, body: string): NewEvent => ({
      type: 'NoticeSent',
      schemaVersion: 2,
      data: { noticeId: randomUUID(), subjectId: subject, agencyId: 'muroran-city', title, body, sentAt: '2026-12-05T00:00:00.000Z' },
    });
    const cases: [string, string][] = [
      ['"引用" \\ と\t制御', '改行\nあり 🎌 \u2028 \u0000'],
      ['定額減税', 'あ'.repeat(3000)],
      ['x', 'y'.repeat(9000)],
    ];
    for (const [title, body] of cases) {
      const event = recorded('notice-1', sealer.seal('notice-1', notice(title, body)));
      const openings = sealer.openings(event, new Set(['citizen']));
      expect(openings.map((o) => o.field)).toEqual(['body', 'subjectId', 'title']);
      for (const o of openings) verifyOpening(event, o);
      expect(sealer.open(event).event.data).toMatchObject({ subjectId: subject, title, body });
      // A value altered by one character no longer matches (the commitment covers the exact text).
      expect(() => verifyOpening(event, { ...openings[0]!, value: `${body} ` })).toThrow(SealingError);
    }
    expect(canonicalize({ b: 1, a: 'é' })).toBe('{"a":"é","b":1}');
  });

  it('a handle is the keyed hash truncated to its length, in hex', () => {
    const k = keys();
    const sealer = new EventSealer(k, new InMemoryKeyring(k));
    for (const bytes of [4, 16, 32]) {
      const expected = prf(k.handle, 'linkage-ledger/handle/v1\0', 'notice-batch-recipient', '\0', 'batch|7').subarray(0, bytes).toString('hex');
      expect(sealer.handle('notice-batch-recipient', 'batch|7', bytes)).toBe(expected);
    }
    expect(sealer.handle('d', 'v')).toHaveLength(32);
    expect(sealer.handle('d', 'v')).not.toBe(sealer.handle('d', 'w'));
  });

  it('a forged opening fails: another value, another salt, another field, another event', () => {
    const sealer = inMemorySealer();
    const event = recorded('query-1', sealer.seal('query-1', accepted()));
    const [good] = sealer.openings(event, new Set(['requester'])) as [Opening];
    expect(() => verifyOpening(event, { ...good, value: 'XbCdEfGhIjKlMnOpQrStUw' })).toThrow(/does not match/);
    expect(() => verifyOpening(event, { ...good, salt: Buffer.alloc(16, 7).toString('base64url') })).toThrow(/does not match/);
    expect(() => verifyOpening(event, { ...good, field: 'subjectId' })).toThrow(/does not match/);
    const another = recorded('query-2', sealer.seal('query-2', accepted()));
    expect(() => verifyOpening(another, good)).toThrow(/does not match/);
    const error = (() => {
      try {
        verifyOpening(event, { ...good, value: 'x' });
      } catch (e) {
        return e as SealingError;
      }
      return undefined;
    })();
    expect(error?.code).toBe('OPENING_MISMATCH');
    expect(error?.details['expected']).toBe(commitmentsOf(event.data)!['requesterCode']);
  });

  it('an erased person\'s fields no longer open; everybody else\'s do', () => {
    const k = keys();
    const ring = new InMemoryKeyring(k);
    const sealer = new EventSealer(k, ring);
    const mine = recorded('query-1', sealer.seal('query-1', accepted(subject)));
    const theirs = recorded('query-2', sealer.seal('query-2', accepted(other)));
    const openingBefore = sealer.openings(mine, new Set(['requester']))[0]!;
    expect(ring.shredSubject(subject)).toBe(true);
    sealer.forgetDerived();
    expect(sealer.open(mine).state).toBe('shredded');
    expect((sealer.open(mine).event.data as Record<string, unknown>)['subjectId']).toBeUndefined();
    expect((sealer.open(mine).event.data as Record<string, unknown>)['procedureCode']).toBe('pension-award-claim');
    expect(sealer.openings(mine, new Set(['requester']))).toEqual([]);
    expect(sealer.open(theirs).state).toBe('opened');
    // An opening given before the erasure still verifies: the stored text did not change.
    verifyOpening(mine, openingBefore);
    expect(() => sealer.seal('query-3', accepted(subject))).toThrow(/shredded/);
  });

  it('a retention sweep of a year shreds that year\'s records and leaves identities and later years', () => {
    const k = keys();
    const ring = new InMemoryKeyring(k);
    const sealer = new EventSealer(k, ring);
    const old = recorded('query-1', sealer.seal('query-1', accepted(subject, '2018-06-01T00:00:00.000Z')));
    const recent = recorded('query-2', sealer.seal('query-2', accepted(subject, '2026-06-01T00:00:00.000Z')));
    const identity = recorded('agency-code-x', sealer.seal('agency-code-x', {
      type: 'AgencyCodeIssued',
      data: { subjectId: subject, agencyId: 'muroran-city', agencyKind: 'municipality', code: requesterCode, acquisitionNumber: 'M-1', issuedAt: '2018-01-01T00:00:00.000Z' },
    }));
    expect(ring.shredEpochsThrough(2018)).toEqual([2018]);
    sealer.forgetDerived();
    expect(sealer.open(old).state).toBe('shredded');
    expect(sealer.open(recent).state).toBe('opened');
    expect(sealer.open(identity).state).toBe('opened');
  });

  it('a key shredded in the ring behind the sealer\'s back (another hub sharing it) neither seals nor opens from what the sealer cached', () => {
    const k = keys();
    const ring = new InMemoryKeyring(k);
    const sealer = new EventSealer(k, ring);
    const old = recorded('query-1', sealer.seal('query-1', accepted(subject, '2018-06-01T00:00:00.000Z')));
    const theirs = recorded('query-2', sealer.seal('query-2', accepted(other, '2026-06-01T00:00:00.000Z')));
    expect(sealer.open(old).state).toBe('opened');
    // No forgetDerived: the sealer learns it from the ring alone.
    ring.shredEpochsThrough(2018);
    expect(sealer.open(old).state).toBe('shredded');
    expect(() => sealer.seal('query-3', accepted(other, '2018-07-01T00:00:00.000Z'))).toThrow(/2018 was shredded/);
    ring.shredSubject(other);
    expect(sealer.open(theirs).state).toBe('shredded');
    expect(() => sealer.seal('query-4', accepted(other, '2026-07-01T00:00:00.000Z'))).toThrow(/shredded/);
  });

  it('the year is the one of Japan time', () => {
    const k = keys();
    const ring = new InMemoryKeyring(k);
    const sealer = new EventSealer(k, ring);
    // 2018-12-31T15:00Z is 2019-01-01 00:00 in Japan.
    const e = recorded('query-1', sealer.seal('query-1', accepted(subject, '2018-12-31T15:00:00.000Z')));
    ring.shredEpochsThrough(2018);
    sealer.forgetDerived();
    expect(sealer.open(e).state).toBe('opened');
  });

  it('refuses an event type it has no catalog entry for; clear types pass as decided', () => {
    const sealer = inMemorySealer();
    expect(() => sealer.seal('x', { type: 'SomethingNew', data: { subjectId: subject } })).toThrow(/catalog/);
    const clear = { type: 'QueryCompleted', schemaVersion: 1, data: { queryId: 'q', outcome: 'answered', completedAt: '2026-12-01T00:00:00.000Z' } };
    expect(sealer.seal('query-1', clear)).toBe(clear);
  });

  it('events about no person are sealed under the hub\'s own key', () => {
    const sealer = inMemorySealer();
    const denied = sealer.seal('query-1', { type: 'QueryDenied', data: { queryId: 'q', requesterAgencyId: 'a', providerAgencyId: 'b', procedureCode: 'p', itemCodes: ['i'], reason: 'CODE_NOT_ISSUED_TO_REQUESTER', requesterCode, deniedAt: '2026-12-01T00:00:00.000Z' } });
    expect(JSON.stringify(denied)).not.toContain(requesterCode);
    const opened = sealer.open(recorded('query-1', denied));
    expect((opened.event.data as Record<string, unknown>)['requesterCode']).toBe(requesterCode);
  });

  it('another hub\'s keys do not open the box', () => {
    const k = keys();
    const ring = new InMemoryKeyring(k);
    const stored = new EventSealer(k, ring).seal('query-1', accepted());
    expect(() => new EventSealer(keys(), ring).open(recorded('query-1', stored))).toThrow(/locator key/);
  });

  it('leaves events of before sealing (another schema version) as they are', () => {
    const sealer = inMemorySealer();
    const legacy = recorded('person-numbering-x', { type: 'IndividualNumberIssued', schemaVersion: 1, data: { subjectId: subject, sealed: { v: '1', alg: 'A256GCM' } } });
    expect(sealer.open(legacy)).toEqual({ state: 'clear', event: legacy });
  });
  it('keeps the people worked on now, not the population: a person sealed again after SEALER_CACHE_ENTRIES others is read from the key ring again', () => {
    const k = keys();
    const ring = new InMemoryKeyring(k);
    const reads: string[] = [];
    const subjectKey = ring.subjectKey.bind(ring);
    ring.subjectKey = (subjectId: string, create: boolean) => {
      reads.push(subjectId);
      return subjectKey(subjectId, create);
    };
    const sealer = new EventSealer(k, ring);
    sealer.seal('query-a', accepted(subject));
    sealer.seal('query-b', accepted(subject));
    // A query's second append meets its person again: served from the cache.
    expect(reads.filter((s) => s === subject)).toHaveLength(1);
    for (let i = 0; i < SEALER_CACHE_ENTRIES + 1; i++) sealer.seal(`query-${i}`, accepted(`00000000-0000-4000-8000-${String(i).padStart(12, '0')}`));
    sealer.seal('query-c', accepted(subject));
    expect(reads.filter((s) => s === subject)).toHaveLength(2);
    expect(SEALER_CACHE_ENTRIES).toBeLessThanOrEqual(8_192);
  });
});
