import { createHash } from 'node:crypto';
import { existsSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { LinkageViews } from '../src/linkage/linkage-views.js';
import { LookupSeal } from '../src/state/lookup-seal.js';
import { LOOKUPS_FILE, SqliteLookupStore } from '../src/state/lookup-store.js';
import { expectProblem } from './support/problem-assertions.js';
import { readKey } from './support/read-key.js';
import { FakeProvider, MURORAN_CITY, PENSION, acquire, bearer, issuePerson, operatorToken, registerAgency, startLinkageHub, type Agency } from './support/linkage-fixture.js';
import type { TestHub } from './support/test-hub.js';

/**
 * The hub's look-ups live in <dataDir>/lookups.db with their own checkpoint (I8, I11): deleted, the file is
 * rebuilt from the log to the same rows; kept, a start reads only the log after its checkpoint and still
 * answers for everyone numbered before.
 */
type Person = { individualNumber: string; citizenSecret: string; residentRecordCode: string; code: string };
const PEOPLE = 30;
let hub: TestHub;
let dataDir: string;
let pension: Agency;
const muroranNode = new FakeProvider();
const people: Person[] = [];
/** Every subject id and agency code of the log (opened), and the agency tokens. */
const subjects = new Set<string>();
const codes = new Set<string>();
const env = { HUB_REDIS_URL: 'off' };

/** The lookup file's rows digest, read from the closed file (nothing is folded). */
async function digestOf(dir: string): Promise<{ rows: number; hex: string }> {
  const { sealer, close } = readKey(dir);
  const store = new SqliteLookupStore({
    path: join(dir, LOOKUPS_FILE),
    seal: new LookupSeal((d, v, n) => sealer.handle(d, v, n)),
    open: () => {
      throw new Error('nothing to fold');
    },
  });
  try {
    return await store.digest();
  } finally {
    await store.close();
    close();
  }
}

const query = (p: Person) => hub.post('/v1/queries', { code: p.code, providerAgencyId: MURORAN_CITY, procedureCode: 'pension-award-claim', itemCodes: ['local-tax'] }, bearer(pension.token));

beforeAll(async () => {
  hub = await startLinkageHub({ env });
  dataDir = hub.dataDir;
  await muroranNode.start(hub);
  pension = await registerAgency(hub, PENSION, 'pension-service', 'http://127.0.0.1:9');
  const muroran = await registerAgency(hub, MURORAN_CITY, 'municipality', muroranNode.endpoint);
  for (let i = 0; i < PEOPLE; i++) {
    const p = await issuePerson(hub);
    const code = await acquire(hub, pension, p.individualNumber);
    await acquire(hub, muroran, p.individualNumber);
    people.push({ ...p, code });
  }
  // The last person is erased: her rows go from the live file, and a rebuild (which cannot open her events) never has them.
  const erased = await hub.post('/v1/erasures', { individualNumber: people[PEOPLE - 1]!.individualNumber, reason: 'erasure ordered, ref. L-1' }, bearer(operatorToken(hub)));
  expect(erased.statusCode, erased.body).toBe(201);
  expect((await query(people[0]!)).json()).toMatchObject({ outcome: expect.any(String) });
  await hub.app.get(LinkageViews).catchUp();
  for (const e of await hub.ledger.readAll({ fromPosition: 0, maxCount: 100_000 })) {
    const d = e.data as { subjectId?: unknown; code?: unknown };
    if (typeof d.subjectId === 'string') subjects.add(d.subjectId);
    if (typeof d.code === 'string') codes.add(d.code);
  }
  tokens.push(pension.token, muroran.token);
  await hub.close();
});
const tokens: string[] = [];

afterAll(async () => {
  await hub?.dispose();
  await muroranNode.stop();
});

describe('the lookup file', () => {
  it('holds no number, resident record code, secret, credential digest, subject id or code, as text or as bytes', () => {
    const files = readdirSync(dataDir).filter((f) => f.startsWith(LOOKUPS_FILE)).map((f) => readFileSync(join(dataDir, f)));
    expect(files.length).toBeGreaterThan(0);
    // The erased person's events no longer open: everyone else's ids and codes are searched for.
    expect(subjects.size).toBeGreaterThanOrEqual(PEOPLE - 1);
    expect(codes.size).toBeGreaterThanOrEqual((PEOPLE - 1) * 2);
    const sha256 = (v: string) => createHash('sha256').update(v).digest();
    const needles: Buffer[] = [];
    for (const p of people) needles.push(Buffer.from(p.individualNumber), Buffer.from(p.residentRecordCode), Buffer.from(p.citizenSecret), Buffer.from(sha256(p.citizenSecret).toString('hex')), sha256(p.citizenSecret));
    for (const t of tokens) needles.push(Buffer.from(t), Buffer.from(sha256(t).toString('hex')), sha256(t));
    for (const s of subjects) needles.push(Buffer.from(s), Buffer.from(s.replaceAll('-', ''), 'hex'));
    for (const c of codes) needles.push(Buffer.from(c), Buffer.from(c, 'base64url'));
    for (const bytes of files) for (const n of needles) expect(bytes.includes(n)).toBe(false);
  });

  it('deleted, is rebuilt from the log at start to the same rows (I8)', async () => {
    const live = await digestOf(dataDir);
    // Numbers, secrets, agencies, credentials, codes: the erased person's rows are gone, everyone else's are there.
    expect(live.rows).toBeGreaterThan(PEOPLE * 4);
    for (const suffix of ['', '-wal', '-shm']) rmSync(join(dataDir, `${LOOKUPS_FILE}${suffix}`), { force: true });
    expect(existsSync(join(dataDir, LOOKUPS_FILE))).toBe(false);
    hub = await startLinkageHub({ dataDir, env });
    await hub.app.get(LinkageViews).catchUp();
    await hub.close();
    expect(await digestOf(dataDir)).toEqual(live);
  });

  it('kept, a start reads only the log after its checkpoint, and the hub answers for everyone numbered before', async () => {
    let read = 0;
    const original = LinkageViews.prototype.readPage;
    const counting = vi.spyOn(LinkageViews.prototype, 'readPage').mockImplementation(async function (this: LinkageViews, from: number) {
      const page = await original.call(this, from);
      read += page.length;
      return page;
    });
    try {
      hub = await startLinkageHub({ dataDir, env });
      const before = await hub.head();
      expect(before).toBeGreaterThan(PEOPLE * 3);
      // Everyone numbered before the restart is known: their secrets sign in, their codes translate.
      for (const p of people.slice(0, PEOPLE - 1)) {
        const records = await hub.get('/v1/citizens/me/provision-records', bearer(p.citizenSecret));
        expect(records.statusCode, records.body).toBe(200);
      }
      expect((await query(people[1]!)).json()).toMatchObject({ outcome: expect.any(String) });
      const again = await acquire(hub, pension, people[2]!.individualNumber);
      expect(again).toBe(people[2]!.code);
      // The erased person stays unknown.
      const erased = people[PEOPLE - 1]!;
      expectProblem(await hub.get('/v1/citizens/me/provision-records', bearer(erased.citizenSecret)), 401, 'UNAUTHENTICATED');
      expectProblem(await query(erased), 403, 'CODE_NOT_ISSUED_TO_REQUESTER');
      // A person numbered after the restart is folded from the tail.
      const late = await issuePerson(hub);
      expect((await hub.get('/v1/citizens/me/provision-records', bearer(late.citizenSecret))).statusCode).toBe(200);
      await hub.app.get(LinkageViews).catchUp();
      const after = await hub.head();
      // What the views read is at most what was appended since the restart (and the start's own events), never the log before it.
      expect(read).toBeGreaterThan(0);
      expect(read).toBeLessThanOrEqual(after - before + 2);
      expect(read).toBeLessThan(before / 4);
      // The start says where the file stood and when it reached the log's head (what an operator or a bench waits for).
      const said = hub.logger.lines.map((l) => l.message);
      expect(said.some((m) => /lookups \(lookups\.db\) resume at position \d+/.test(m))).toBe(true);
      expect(said.some((m) => m.startsWith('lookups caught up with the log at start'))).toBe(true);
    } finally {
      counting.mockRestore();
    }
  });

  it('written under other keys (keys restored from elsewhere), is emptied and refilled from the log rather than misread', async () => {
    const foreign = new SqliteLookupStore({
      path: join(dataDir, LOOKUPS_FILE),
      seal: new LookupSeal((_d, _v, bytes) => 'ab'.repeat(bytes)),
      open: () => {
        throw new Error('nothing to fold');
      },
    });
    try {
      expect(await foreign.checkpoint()).toBe(-1);
      expect((await foreign.digest()).rows).toBe(0);
    } finally {
      await foreign.close();
    }
    // The hub's own keys again: the file is refilled at start.
    hub = await startLinkageHub({ dataDir, env });
    await hub.app.get(LinkageViews).catchUp();
    expect((await hub.get('/v1/citizens/me/provision-records', bearer(people[0]!.citizenSecret))).statusCode).toBe(200);
    expect((await query(people[3]!)).json()).toMatchObject({ outcome: expect.any(String) });
    await hub.close();
  });
});
