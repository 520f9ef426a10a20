import { execFile } from 'node:child_process';
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import type { EventStore, RecordedEvent } from '#ledger';
import { EventSealer, KEYRING_FILE, SqliteKeyring, readSealingKeys, type Keyring } from '#sealing';
import { KEK_ROTATION_STREAM, KekRotations, type KekRotation, type KekStatus } from '../src/keys/kek-rotation.js';
import { KEYRING } from '../src/sealing/sealing.providers.js';
import { IdentifierVault } from '../src/vault/identifier-vault.js';
import { FakeProvider, MURORAN_CITY, PENSION, acquire, bearer, issuePerson, registerAgency, startLinkageHub, type Agency } from './support/linkage-fixture.js';
import { schemaValidator } from '../../../test/support/json-schema.js';
import { expectProblem } from './support/problem-assertions.js';
import type { TestHub } from './support/test-hub.js';

const ROTATE = '/v1/key-rotations/key-encryption';
const validate = schemaValidator('schemas/events/key-encryption-key-rotated.v1.json');
type Person = { individualNumber: string; citizenSecret: string; pension: string; muroran: string };

let hub: TestHub | undefined;
let provider: FakeProvider | undefined;
afterEach(async () => {
  await provider?.stop();
  provider = undefined;
  await hub?.dispose();
  hub = undefined;
});

interface Network {
  readonly pension: Agency;
  readonly muroran: Agency;
  readonly people: Person[];
}

async function network(h: TestHub, n: number): Promise<Network> {
  provider = new FakeProvider();
  await provider.start(h);
  const net: Network = {
    pension: await registerAgency(h, PENSION, 'pension-service', 'http://127.0.0.1:9'),
    muroran: await registerAgency(h, MURORAN_CITY, 'municipality', provider.endpoint),
    people: [],
  };
  for (let i = 0; i < n; i++) await person(h, net);
  return net;
}

async function person(h: TestHub, net: Network): Promise<Person> {
  const p = await issuePerson(h);
  const made: Person = { ...p, pension: await acquire(h, net.pension, p.individualNumber), muroran: await acquire(h, net.muroran, p.individualNumber) };
  provider!.behaviours.set(made.muroran, { answer: { 'local-tax': { fiscalYear: 2026 } } });
  net.people.push(made);
  return made;
}

/** One round of appends: a query (provision records), a notice (the inbox), a designation; every third round a new person. */
async function round(h: TestHub, net: Network, i: number): Promise<void> {
  const p = net.people[i % net.people.length]!;
  const q = await h.post('/v1/queries', { code: p.pension, providerAgencyId: MURORAN_CITY, procedureCode: 'pension-award-claim', itemCodes: ['local-tax'] }, bearer(net.pension.token));
  expect(q.statusCode, q.body).toBe(200);
  expect((await h.post('/v1/notices', { code: p.muroran, title: '住民税のお知らせ', body: `第${i}回` }, bearer(net.muroran.token))).statusCode).toBe(201);
  expect((await h.post('/v1/corporate-numbers', { name: `株式会社鍵包${i}`, location: '北海道室蘭市幸町1番2号', kind: 'stock-company' }, h.operator)).statusCode).toBe(201);
  if (i % 3 === 0) await person(h, net);
}

/** Appends in a loop until stopped. */
function load(h: TestHub, net: Network): { stop: () => Promise<number>; rounds: () => number } {
  let stopped = false;
  let rounds = 0;
  const running = (async () => {
    while (!stopped) await round(h, net, rounds++);
  })();
  return {
    rounds: () => rounds,
    stop: async () => {
      stopped = true;
      await running;
      return rounds;
    },
  };
}

/** What each person reads: their provision records' serials and their notices' titles and bodies. */
async function views(h: TestHub, net: Network): Promise<Record<string, { records: string[]; notices: string[] }>> {
  const out: Record<string, { records: string[]; notices: string[] }> = {};
  for (const p of net.people) {
    const records = await h.get('/v1/citizens/me/provision-records', bearer(p.citizenSecret));
    expect(records.statusCode, records.body).toBe(200);
    const notices = await h.get('/v1/citizens/me/notices', bearer(p.citizenSecret));
    expect(notices.statusCode, notices.body).toBe(200);
    out[p.individualNumber] = {
      records: records.json<{ records: { serial: string }[] }>().records.map((r) => r.serial),
      notices: notices.json<{ notices: { title: string; body: string }[] }>().notices.map((n) => `${n.title}/${n.body}`),
    };
  }
  return out;
}

/** The ring file's live wraps: kek column → count (NULL: the key set's first KEK). */
function ringKeks(dataDir: string): Record<string, number> {
  const db = new Database(join(dataDir, KEYRING_FILE), { readonly: true });
  try {
    const out: Record<string, number> = {};
    for (const table of ['subject_keys', 'epoch_keys']) {
      for (const [kek, n] of db.prepare(`SELECT kek, count(*) FROM ${table} WHERE wrapped IS NOT NULL GROUP BY kek`).raw().all() as [string | null, number][]) {
        out[`${table}:${kek ?? 'first'}`] = n;
      }
    }
    return out;
  } finally {
    db.close();
  }
}

/** Opens every event of the log as a supervisory auditor would: the key file (and the KEK files beside it) and the ring, read-only. */
async function openEverything(h: TestHub): Promise<{ opened: number; clear: number }> {
  const keys = readSealingKeys(join(h.config.keysDir, 'sealing.key.json'));
  const ring = new SqliteKeyring({ path: join(h.dataDir, KEYRING_FILE), keys, readonly: true });
  try {
    const sealer = new EventSealer(keys, ring);
    let opened = 0;
    let clear = 0;
    for (const e of await h.store.readAll({ fromPosition: 0 })) {
      const o = sealer.open(e);
      expect(o.state, `${e.type} at ${e.position}`).not.toBe('shredded');
      if (o.state === 'opened') opened++;
      else clear++;
    }
    return { opened, clear };
  } finally {
    ring.close();
  }
}

const run = promisify(execFile);
const replay = (h: TestHub) =>
  run(process.execPath, ['--conditions=source', '--import', 'tsx', join(import.meta.dirname, '../../auditor/src/main.ts'), 'replay', '--db', h.config.ledgerPath, '--key-file', join(h.config.keysDir, 'sealing.key.json'), '--json']).then(
    ({ stdout }) => ({ code: 0, stdout }),
    (e: { code: number; stdout: string; stderr: string }) => ({ code: e.code, stdout: e.stdout || e.stderr }),
  );

async function expectReplayOpens(h: TestHub): Promise<void> {
  const result = await replay(h);
  expect(result.code, result.stdout).toBe(0);
  const report = JSON.parse(result.stdout) as { projections: { projection: string; ok: boolean; skipped?: string }[] };
  expect(report.projections.map((p) => [p.projection, p.ok, p.skipped ?? null])).toEqual([
    ['merkle-tree', true, null],
    ['provision-records', true, null],
    ['corporate-registry', true, null],
    ['notice-inbox', true, null],
  ]);
}

async function rotationEvents(store: EventStore): Promise<readonly RecordedEvent[]> {
  return store.readStream(KEK_ROTATION_STREAM).catch((error: unknown) => {
    if ((error as { code?: string }).code === 'STREAM_NOT_FOUND') return [];
    throw error;
  });
}

describe('rotation of the sealing key-encryption key (the key ring\'s)', () => {
  it('rotates under load: every ring key re-wrapped under the new KEK, the old one retired, the event public; every event before and after opens (views, records, the auditor\'s replay), and again after a restart', async () => {
    hub = await startLinkageHub({ env: { HUB_CHECKPOINT_EVERY_EVENTS: '16' } });
    const h = hub;
    const net = await network(h, 4);
    for (let i = 0; i < 4; i++) await round(h, net, i);
    const firstKid = (JSON.parse(readFileSync(join(h.config.keysDir, 'sealing.key.json'), 'utf8')) as { kid: string }).kid;
    expect(ringKeks(h.dataDir)).toEqual({ 'subject_keys:first': expect.any(Number), 'epoch_keys:first': expect.any(Number) });
    // Re-wrap one key per page with a pause between pages, so that appends run between them.
    const rotations = h.app.get(KekRotations);
    rotations.pageSize = 1;
    rotations.pagePauseMs = 60;
    const before = await views(h, net);

    const writer = load(h, net);
    let rotation: KekRotation;
    let during: number;
    try {
      await new Promise((r) => setTimeout(r, 50));
      const from = await h.head();
      const res = await h.post(ROTATE, { kek: 'sealing' }, h.operator);
      during = res.json<KekRotation>().position - from;
      expect(res.statusCode, res.body).toBe(201);
      rotation = res.json<KekRotation>();
    } finally {
      await writer.stop();
    }
    // Appends went on while it re-wrapped (each round: a query, a notice, a designation, now and then a new person).
    expect(during).toBeGreaterThanOrEqual(6);
    expect(rotation.kek).toBe('sealing');
    expect(rotation.kekId).toMatch(/^kek-[0-9a-f]{16}$/);
    expect(rotation.previousKekIds).toEqual([firstKid]);
    expect(rotation.rewrappedPersonKeys).toBeGreaterThanOrEqual(4);
    expect(rotation.rewrappedPeriodKeys).toBeGreaterThanOrEqual(1);
    expect(rotation.retiredKekIds).toEqual([firstKid]);
    expect(rotation.keptKekIds).toEqual([]);

    // The event: public, its own serial, ids and counts only.
    const events = await rotationEvents(h.store);
    expect(events).toHaveLength(1);
    expect(events[0]!.type).toBe('KeyEncryptionKeyRotated');
    expect(events[0]!.serial).toBe(rotation.serial);
    expect(Object.keys(events[0]!.data as object).sort()).toEqual(['kek', 'kekId', 'keptKekIds', 'previousKekIds', 'retiredKekIds', 'rewrappedPeriodKeys', 'rewrappedPersonKeys', 'rotatedAt']);
    expect(events[0]!.data).toMatchObject({ kek: 'sealing', kekId: rotation.kekId, previousKekIds: [firstKid], rewrappedPersonKeys: rotation.rewrappedPersonKeys });
    expect(validate(events[0]!.data).errors).toBe('No errors');

    // The ring holds no wrap under the old KEK; the keys dir no longer holds it.
    expect(Object.keys(ringKeks(h.dataDir)).sort()).toEqual([`epoch_keys:${rotation.kekId}`, `subject_keys:${rotation.kekId}`]);
    const file = JSON.parse(readFileSync(join(h.config.keysDir, 'sealing.key.json'), 'utf8')) as Record<string, unknown>;
    expect(file['keyEncryptionKey']).toBeUndefined();
    expect(file['retiredKeks']).toEqual([firstKid]);
    expect(file['kid']).toBe(firstKid);
    const kekFile = join(h.config.keysDir, `sealing-kek.${rotation.kekId}.key.json`);
    expect(statSync(kekFile).mode & 0o777).toBe(0o600);
    expect(statSync(join(h.config.keysDir, 'sealing.key.json')).mode & 0o777).toBe(0o600);
    expect(readdirSync(h.config.keysDir).filter((f) => f.startsWith('sealing'))).toEqual(expect.arrayContaining(['sealing.key.json', `sealing-kek.${rotation.kekId}.key.json`]));

    // The status says the same: one KEK held, every wrap under it.
    const status = await h.get(`${ROTATE}?kek=sealing`, h.operator);
    expect(status.statusCode, status.body).toBe(200);
    const s = status.json<KekStatus>();
    expect(s).toMatchObject({ kek: 'sealing', kekId: rotation.kekId, heldKekIds: [rotation.kekId] });
    expect(Object.keys(s.wraps!.personKeys)).toEqual([rotation.kekId]);
    expect(s.pending).toBeUndefined();

    // Every event of the log opens, before the rotation and after; the views answer the same as before, and more.
    for (let i = 0; i < 3; i++) await round(h, net, 100 + i);
    const opened = await openEverything(h);
    expect(opened.opened).toBeGreaterThan(20);
    const after = await views(h, net);
    for (const [number, v] of Object.entries(before)) {
      expect(after[number]!.records).toEqual(expect.arrayContaining(v.records));
      expect(after[number]!.notices).toEqual(expect.arrayContaining(v.notices));
    }
    await expectReplayOpens(h);

    // A restart reads the rotated KEK and keeps going: the old views, new people, all under the new KEK.
    const dataDir = h.dataDir;
    await provider!.stop();
    await h.close();
    hub = await startLinkageHub({ dataDir, env: { HUB_CHECKPOINT_EVERY_EVENTS: '16' } });
    const h2 = hub;
    provider = new FakeProvider();
    await provider.start(h2);
    expect((await h2.inject({ method: 'PATCH', url: `/v1/agencies/${MURORAN_CITY}`, headers: { ...h2.operator, 'content-type': 'application/json' }, payload: JSON.stringify({ endpoint: provider.endpoint }) })).statusCode).toBe(200);
    for (const p of net.people) provider.behaviours.set(p.muroran, { answer: { 'local-tax': { fiscalYear: 2026 } } });
    for (let i = 0; i < 4; i++) await round(h2, net, 200 + i);
    const again = await views(h2, net);
    for (const [number, v] of Object.entries(after)) {
      expect(again[number]!.records).toEqual(expect.arrayContaining(v.records));
      expect(again[number]!.notices).toEqual(expect.arrayContaining(v.notices));
    }
    expect(Object.keys(ringKeks(dataDir)).sort()).toEqual([`epoch_keys:${rotation.kekId}`, `subject_keys:${rotation.kekId}`]);
    await openEverything(h2);
    await expectReplayOpens(h2);

    // A second rotation follows the first: the first rotated KEK is retired as its file.
    const second = (await h2.post(ROTATE, { kek: 'sealing' }, h2.operator)).json<KekRotation>();
    expect(second.previousKekIds).toEqual([rotation.kekId]);
    expect(second.retiredKekIds).toEqual([rotation.kekId]);
    expect(existsSync(kekFile)).toBe(false);
    expect(Object.keys(ringKeks(dataDir)).sort()).toEqual([`epoch_keys:${second.kekId}`, `subject_keys:${second.kekId}`]);
    await openEverything(h2);
    await expectReplayOpens(h2);
  });

  it('recovers from a crash mid re-wrap: the ring opens under both KEKs meanwhile, and the next start completes the re-wrap, retires the old KEK and records the rotation', async () => {
    hub = await startLinkageHub();
    const h = hub;
    const net = await network(h, 6);
    for (let i = 0; i < 3; i++) await round(h, net, i);
    const firstKid = (JSON.parse(readFileSync(join(h.config.keysDir, 'sealing.key.json'), 'utf8')) as { kid: string }).kid;
    const rotations = h.app.get(KekRotations);
    rotations.pageSize = 2;
    // The process "dies" after two pages: the third page is never written.
    const ring = h.app.get<Keyring>(KEYRING) as SqliteKeyring;
    const real = ring.rewrapPage.bind(ring);
    let pages = 0;
    ring.rewrapPage = (...args: Parameters<SqliteKeyring['rewrapPage']>) => {
      if (++pages > 2) throw new Error('simulated crash');
      return real(...args);
    };
    expectProblem(await h.post(ROTATE, { kek: 'sealing' }, h.operator), 500, 'INTERNAL');
    ring.rewrapPage = real;
    const status = (await h.get(`${ROTATE}?kek=sealing`, h.operator)).json<KekStatus>();
    expect(status.pending).toMatchObject({ previousKekIds: [firstKid] });
    const newKid = status.pending!.kekId;
    expect(status.heldKekIds).toEqual([newKid, firstKid]);
    // Half re-wrapped: both KEKs named by the ring, and everything still opens (both are in the keys dir).
    const mixed = ringKeks(h.dataDir);
    expect(mixed[`subject_keys:${newKid}`]).toBeGreaterThan(0);
    expect(mixed['subject_keys:first']).toBeGreaterThan(0);
    expect(await rotationEvents(h.store)).toEqual([]);
    await openEverything(h);
    await expectReplayOpens(h);
    // Appends go on meanwhile: new keys under the new KEK.
    await round(h, net, 3);

    const dataDir = h.dataDir;
    await provider!.stop();
    await h.close();
    hub = await startLinkageHub({ dataDir });
    const h2 = hub;
    // The start completes it in the background: the event, then the pending record cleared.
    for (let i = 0; i < 200 && (h2.app.get(KekRotations).status('sealing').pending !== undefined); i++) await new Promise((r) => setTimeout(r, 50));
    const events = await rotationEvents(h2.store);
    expect(events).toHaveLength(1);
    expect(events[0]!.data).toMatchObject({ kek: 'sealing', kekId: newKid, previousKekIds: [firstKid], retiredKekIds: [firstKid], keptKekIds: [] });
    expect(validate(events[0]!.data).errors).toBe('No errors');
    // Every person key under the first KEK when the rotation began: those of the two pages before the crash, and the rest.
    expect((events[0]!.data as { rewrappedPersonKeys: number }).rewrappedPersonKeys).toBe(status.pending!.rewrappedPersonKeys + mixed['subject_keys:first']!);
    expect(Object.keys(ringKeks(dataDir)).sort()).toEqual([`epoch_keys:${newKid}`, `subject_keys:${newKid}`]);
    const after = (await h2.get(`${ROTATE}?kek=sealing`, h2.operator)).json<KekStatus>();
    expect(after).toMatchObject({ kekId: newKid, heldKekIds: [newKid] });
    expect(after.pending).toBeUndefined();
    await openEverything(h2);
    await expectReplayOpens(h2);
    expect((await views(h2, net))[net.people[0]!.individualNumber]!.records.length).toBeGreaterThan(0);
  });

  it('refuses a caller without the operator credential and records the refusal (I6); a bad body is refused too; nothing is rotated', async () => {
    hub = await startLinkageHub();
    const h = hub;
    await network(h, 1);
    const head = await h.head();
    const files = readdirSync(h.config.keysDir).sort();
    expectProblem(await h.post(ROTATE, { kek: 'sealing' }, h.auditor), 403, 'FORBIDDEN');
    expectProblem(await h.post(ROTATE, { kek: 'sealing' }, { authorization: 'Bearer nobody-holds-this-token-0123456789' }), 401, 'UNAUTHENTICATED');
    expectProblem(await h.post(ROTATE, { kek: 'everything' }, h.operator), 400, 'VALIDATION_FAILED');
    expectProblem(await h.get(`${ROTATE}?kek=sealing`, h.auditor), 403, 'FORBIDDEN');
    const events = await h.store.readAll({ fromPosition: head });
    // The auditor's (403) and the operator's bad body (400) are refusals of the command, attributed to them; an
    // unknown token (401) proves no one: it is counted per source and interval, not recorded per request (I6).
    const refused = events.filter((e) => e.type === 'RequestRefused' && (e.data as { command?: string }).command === 'RotateKeyEncryptionKey');
    expect(refused).toHaveLength(2);
    expect(events.filter((e) => e.type === 'KeyEncryptionKeyRotated')).toEqual([]);
    expect(readdirSync(h.config.keysDir).sort()).toEqual(files);
  });
});

describe('rotation of the vault key-encryption key', () => {
  it('new values are wrapped under the new KEK; values wrapped before (inside log events) still open under the old one, which stays', async () => {
    hub = await startLinkageHub();
    const h = hub;
    const vault = h.app.get(IdentifierVault);
    const firstKid = vault.keyEncryptionIds().current;
    const identifiers = { individualNumber: '123456789018', residentRecordCode: '12345678901' };
    const before = vault.seal(identifiers, 'numbering-x');
    const res = await h.post(ROTATE, { kek: 'vault' }, h.operator);
    expect(res.statusCode, res.body).toBe(201);
    const rotation = res.json<KekRotation>();
    expect(rotation).toMatchObject({ kek: 'vault', previousKekIds: [firstKid], keptKekIds: [firstKid], retiredKekIds: [], rewrappedPersonKeys: 0, rewrappedPeriodKeys: 0 });
    expect(statSync(join(h.config.keysDir, `key-encryption.${rotation.kekId}.key.json`)).mode & 0o777).toBe(0o600);
    const after = vault.seal(identifiers, 'numbering-x');
    expect(before.kid).toBe(firstKid);
    expect(after.kid).toBe(rotation.kekId);
    expect(vault.unseal(before, 'numbering-x')).toEqual(identifiers);
    expect(vault.unseal(after, 'numbering-x')).toEqual(identifiers);
    const status = (await h.get(`${ROTATE}?kek=vault`, h.operator)).json<KekStatus>();
    expect(status).toMatchObject({ kek: 'vault', kekId: rotation.kekId, heldKekIds: [rotation.kekId, firstKid] });
    const vaultEvents = await rotationEvents(h.store);
    expect(vaultEvents.map((e) => (e.data as { kek: string }).kek)).toEqual(['vault']);
    expect(validate(vaultEvents[0]!.data).errors).toBe('No errors');

    // A restart holds both: the newest wraps, the first still opens.
    const dataDir = h.dataDir;
    await provider?.stop();
    await h.close();
    hub = await startLinkageHub({ dataDir });
    const v2 = hub.app.get(IdentifierVault);
    expect(v2.keyEncryptionIds()).toEqual({ current: rotation.kekId, previous: [firstKid] });
    expect(v2.unseal(before, 'numbering-x')).toEqual(identifiers);
    expect(v2.unseal(after, 'numbering-x')).toEqual(identifiers);
  });
});
