import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RecordedEvent } from '#ledger';
import type { Response } from 'light-my-request';
import { tokenDigest } from '../src/linkage/hub-secrets.js';
import { Refusals } from '../src/refusals/refusals.service.js';
import { expectProblem } from './support/problem-assertions.js';
import { generateAnswerKeyPair } from '#sealed-answer';
import { MURORAN_CITY, SAPPORO_CITY, acquire, bearer, issuePerson, startLinkageHub, type Agency } from './support/linkage-fixture.js';
import { SoftAuthenticator } from './support/soft-authenticator.js';
import { MURORAN, SAPPORO, type TestHub } from './support/test-hub.js';

/**
 * Citizens' passkeys (WebAuthn, verified by the hub), driven by a software authenticator: enrolment with
 * the one-time secret (which it retires), sign-in, sessions (idle and absolute expiry on the hub's clock),
 * sign-out, removal, the municipality's new enrolment secret, erasure, and every refusal with exactly the
 * events it leaves (one RequestRefused for an identified caller, nothing at once for an unidentified one).
 */
let now = Date.parse('2026-12-04T09:00:00.000Z');
const IDLE = 900;
const MAX = 3600;
let hub: TestHub;
let muroran: Agency;
let sapporo: Agency;
type Person = { individualNumber: string; citizenSecret: string; code: string };
let aoyama: Person;
let kato: Person;
/** Every token, credential id and public key handed out: none may be in the stored log. */
const secrets = new Set<string>();

const PATH = {
  regOptions: '/v1/citizens/passkeys/registration-options',
  passkeys: '/v1/citizens/passkeys',
  signInOptions: '/v1/citizens/sessions/options',
  sessions: '/v1/citizens/sessions',
  session: '/v1/citizens/me/session',
  myPasskeys: '/v1/citizens/me/passkeys',
  records: '/v1/citizens/me/provision-records',
  notices: '/v1/citizens/me/notices',
  secrets: '/v1/citizens/enrolment-secrets',
};

/** A municipality's agency, registered with its municipality code (it numbers, and re-issues secrets to, its own residents). */
async function registerMunicipality(agencyId: string, municipalityCode: string): Promise<Agency> {
  const keys = await generateAnswerKeyPair();
  const res = await hub.post('/v1/agencies', { agencyId, name: `${agencyId} (test)`, kind: 'municipality', endpoint: 'http://127.0.0.1:9', publicKey: keys.publicKey, municipalityCode }, hub.operator);
  expect(res.statusCode, res.body).toBe(201);
  return { agencyId, token: res.json<{ token: string }>().token, keys };
}

/** What the log gained since `from`, as handlers read it (checkpoints, signed on the hub's clock, left out). */
async function appended(from: number): Promise<RecordedEvent[]> {
  return (await hub.ledger.readAll({ fromPosition: from })).filter((e) => e.type !== 'CheckpointSigned');
}

async function person(): Promise<Person> {
  const p = await issuePerson(hub);
  const code = await acquire(hub, muroran, p.individualNumber);
  secrets.add(p.citizenSecret);
  return { ...p, code };
}

type Options = { challengeId: string; options: { challenge: string; user: { id: string; name: string; displayName: string }; rp: { id: string; name: string }; excludeCredentials?: { id: string }[]; authenticatorSelection?: Record<string, unknown> } };
type Enrolled = { serial: string; passkeyId: string; createdAt: string; session: { token: string; expiresAt: string } };

async function registrationOptions(token: string): Promise<Options> {
  const res = await hub.post(PATH.regOptions, {}, bearer(token));
  expect(res.statusCode, res.body).toBe(200);
  return res.json<Options>();
}

async function enrol(token: string, device: SoftAuthenticator, label?: string): Promise<Enrolled> {
  const { challengeId, options } = await registrationOptions(token);
  const res = await hub.post(PATH.passkeys, { challengeId, response: device.register(options), ...(label === undefined ? {} : { label }) }, bearer(token));
  expect(res.statusCode, res.body).toBe(201);
  const body = res.json<Enrolled>();
  secrets.add(body.session.token).add(device.credentialId);
  return body;
}

async function signInOptions(): Promise<{ challengeId: string; options: { challenge: string; rpId: string; allowCredentials: unknown[]; userVerification: string } }> {
  const res = await hub.post(PATH.signInOptions, {});
  expect(res.statusCode, res.body).toBe(200);
  return res.json();
}

async function signIn(device: SoftAuthenticator, o: Parameters<SoftAuthenticator['assert']>[1] = {}): Promise<Response> {
  const { challengeId, options } = await signInOptions();
  const res = await hub.post(PATH.sessions, { challengeId, response: device.assert(options, o) });
  if (res.statusCode === 201) secrets.add(res.json<{ session: { token: string } }>().session.token);
  return res;
}

async function session(device: SoftAuthenticator): Promise<string> {
  const res = await signIn(device);
  expect(res.statusCode, res.body).toBe(201);
  return res.json<{ session: { token: string } }>().session.token;
}

const records = (token: string) => hub.get(PATH.records, bearer(token));

/** Asserts the log grew by exactly one RequestRefused of a citizen for this command and reason; answers it. */
async function expectOneCitizenRefusal(from: number, command: string, reason: string, res: Response): Promise<RecordedEvent> {
  const events = await appended(from);
  expect(events.map((e) => e.type)).toEqual(['RequestRefused']);
  const [event] = events;
  expect(event!.data).toMatchObject({ command, reason, callerKind: 'citizen' });
  expect((event!.data as { subjectId?: string }).subjectId).toEqual(expect.any(String));
  expect(res.json<{ serial?: string }>().serial).toBe(event!.serial);
  return event!;
}

async function expectNothingAppended(from: number): Promise<void> {
  expect((await appended(from)).map((e) => e.type)).toEqual([]);
}

const ENV = {
  HUB_CITIZEN_SESSION_IDLE_SECONDS: String(IDLE),
  HUB_CITIZEN_SESSION_MAX_SECONDS: String(MAX),
  // Unidentified refusals are counted until the test flushes them.
  HUB_UNIDENTIFIED_REFUSALS_INTERVAL_MS: '86400000',
  HUB_UNIDENTIFIED_REFUSALS_PER_SOURCE: '1000',
};

beforeAll(async () => {
  hub = await startLinkageHub({ clock: () => new Date(now), env: ENV });
  muroran = await registerMunicipality(MURORAN_CITY, MURORAN);
  sapporo = await registerMunicipality(SAPPORO_CITY, SAPPORO);
  aoyama = await person();
  kato = await person();
});
afterAll(async () => {
  await hub?.dispose();
});

describe('enrolment with the one-time secret, and sign-in with the passkey alone', () => {
  const phone = new SoftAuthenticator();
  let enrolled: Enrolled;

  it('gives registration options for a discoverable passkey under a neutral name and a per-person handle', async () => {
    const { challengeId, options } = await registrationOptions(aoyama.citizenSecret);
    expect(challengeId).toMatch(/^[0-9a-f-]{36}$/);
    expect(options).toMatchObject({
      rp: { id: 'localhost', name: expect.any(String) },
      user: { name: 'マイナンバー利用者', displayName: 'マイナンバー利用者', id: expect.stringMatching(/^[A-Za-z0-9_-]{22}$/) },
      authenticatorSelection: { residentKey: 'required', userVerification: 'preferred' },
      excludeCredentials: [],
    });
    const again = await registrationOptions(aoyama.citizenSecret);
    expect(again.options.user.id).toBe(options.user.id);
    expect(again.options.challenge).not.toBe(options.challenge);
    expect((await registrationOptions(kato.citizenSecret)).options.user.id).not.toBe(options.user.id);
  });

  it('enrols: one CitizenPasskeyEnrolled, sealed, that retires the secret; the session reads records and notices', async () => {
    const head = await hub.head();
    enrolled = await enrol(aoyama.citizenSecret, phone, 'iPhone');
    secrets.add(phone.credentialId);
    expect(enrolled).toEqual({
      serial: expect.stringMatching(/^\d{20}$/),
      passkeyId: expect.stringMatching(/^[0-9a-f-]{36}$/),
      createdAt: new Date(now).toISOString(),
      session: { token: expect.stringMatching(/^[A-Za-z0-9_-]{43}$/), expiresAt: new Date(now + MAX * 1000).toISOString() },
    });
    const events = await appended(head);
    expect(events.map((e) => [e.type, e.serial, e.terminal])).toEqual([['CitizenPasskeyEnrolled', enrolled.serial, 'completed']]);
    expect(events[0]!.data).toMatchObject({ passkeyId: enrolled.passkeyId, label: 'iPhone', secretRetired: true, credential: { id: phone.credentialId, counter: 0 } });
    expect(events[0]!.streamId).toMatch(/^citizen-credentials-[0-9a-f]{32}$/);
    const stored = (await hub.store.readAll({ fromPosition: head })).find((e) => e.type === 'CitizenPasskeyEnrolled')!;
    expect(Object.keys(stored.data as object).sort()).toEqual(['enrolledAt', 'sealed', 'secretRetired']);
    expect(Object.keys((stored.data as { sealed: { commitments: object } }).sealed.commitments).sort()).toEqual(['credential', 'label', 'passkeyId', 'subjectId']);

    // A notice to Aoyama-san, read with the session.
    expect((await hub.post('/v1/notices', { code: aoyama.code, title: '住民税のお知らせ', body: '本文' }, bearer(muroran.token))).statusCode).toBe(201);
    const token = enrolled.session.token;
    const recs = await records(token);
    expect(recs.statusCode, recs.body).toBe(200);
    const inbox = await hub.get(PATH.notices, bearer(token));
    expect(inbox.statusCode, inbox.body).toBe(200);
    expect(inbox.json<{ notices: { title: string }[] }>().notices.map((n) => n.title)).toEqual(['住民税のお知らせ']);
    // Nobody else's: Kato-san's secret sees no notice.
    expect((await hub.get(PATH.notices, bearer(kato.citizenSecret))).json<{ notices: unknown[] }>().notices).toEqual([]);

    const mine = await hub.get(PATH.myPasskeys, bearer(token));
    expect(mine.json()).toEqual({ passkeys: [{ passkeyId: enrolled.passkeyId, label: 'iPhone', createdAt: enrolled.createdAt }] });
  });

  it('the secret is retired for good: 401 CREDENTIAL_RETIRED on reads, and on commands one RequestRefused of the citizen', async () => {
    expectProblem(await records(aoyama.citizenSecret), 401, 'CREDENTIAL_RETIRED');
    expectProblem(await hub.get(PATH.notices, bearer(aoyama.citizenSecret)), 401, 'CREDENTIAL_RETIRED');
    const head = await hub.head();
    const res = await hub.post(PATH.regOptions, {}, bearer(aoyama.citizenSecret));
    expectProblem(res, 401, 'CREDENTIAL_RETIRED');
    await expectOneCitizenRefusal(head, 'BeginPasskeyRegistration', 'CREDENTIAL_RETIRED', res);
  });

  it('signs in with the passkey alone (no credential): a new session; the passkey shows when it was used', async () => {
    const options = await signInOptions();
    expect(options.options).toMatchObject({ rpId: 'localhost', allowCredentials: [], userVerification: 'preferred' });
    const head = await hub.head();
    const res = await hub.post(PATH.sessions, { challengeId: options.challengeId, response: phone.assert(options.options) });
    expect(res.statusCode, res.body).toBe(201);
    const body = res.json<{ session: { token: string; expiresAt: string }; passkeyId: string }>();
    secrets.add(body.session.token);
    expect(body).toEqual({ session: { token: expect.stringMatching(/^[A-Za-z0-9_-]{43}$/), expiresAt: new Date(now + MAX * 1000).toISOString() }, passkeyId: enrolled.passkeyId });
    await expectNothingAppended(head);
    expect((await records(body.session.token)).statusCode).toBe(200);
    const mine = (await hub.get(PATH.myPasskeys, bearer(body.session.token))).json<{ passkeys: { lastUsedAt?: string }[] }>();
    expect(mine.passkeys[0]!.lastUsedAt).toBe(new Date(now).toISOString());
  });

  it('the citizen gets the openings of their own fields of the enrolment with the session token', async () => {
    const token = await session(phone);
    const size = await hub.head();
    let proofs: { openings?: { field: string }[] }[] | undefined;
    for (let i = 0; i < 400 && proofs === undefined; i++) {
      const res = await hub.get(`/v1/audit/proofs/inclusion?serial=${enrolled.serial}&size=${size}`, bearer(token));
      if (res.statusCode === 200) proofs = res.json<{ proofs: { openings?: { field: string }[] }[] }>().proofs;
      else await new Promise((r) => setTimeout(r, 25));
    }
    expect(proofs?.[0]?.openings?.map((o) => o.field)).toEqual(['label', 'passkeyId', 'subjectId']);
  });

  it('refuses a sign-in precisely: wrong origin, wrong rpId, replayed or expired challenge, bad signature, unknown passkey (401, nothing appended)', async () => {
    const head = await hub.head();
    const refusals = [
      await signIn(phone, { origin: 'https://evil.example' }),
      await signIn(phone, { rpId: 'evil.example' }),
      await signIn(phone, { wrongKey: true }),
      await signIn(new SoftAuthenticator()),
      await signIn(phone, { userHandle: Buffer.from('someone else').toString('base64url') }),
    ];
    // A challenge answered once is gone; one answered after five minutes too.
    const { challengeId, options } = await signInOptions();
    expect((await hub.post(PATH.sessions, { challengeId, response: phone.assert(options) })).statusCode).toBe(201);
    refusals.push(await hub.post(PATH.sessions, { challengeId, response: phone.assert(options) }));
    const stale = await signInOptions();
    now += 5 * 60 * 1000 + 1;
    refusals.push(await hub.post(PATH.sessions, { challengeId: stale.challengeId, response: phone.assert(stale.options) }));
    // Another challenge than the one given for this id.
    const mismatched = await signInOptions();
    refusals.push(await hub.post(PATH.sessions, { challengeId: mismatched.challengeId, response: phone.assert(mismatched.options, { challenge: Buffer.alloc(32, 7).toString('base64url') }) }));
    const details = refusals.map((res) => String(expectProblem(res, 401, 'PASSKEY_VERIFICATION_FAILED')['detail']));
    expect(details[0]).toMatch(/origin/i);
    expect(details[1]).toMatch(/RP ID/i);
    expect(details[2]).toMatch(/signature/i);
    expect(details[3]).toMatch(/not enrolled/);
    expect(details[4]).toMatch(/another user/);
    expect(details[5]).toMatch(/challenge is unknown, was used already or expired/);
    expect(details[6]).toMatch(/challenge is unknown, was used already or expired/);
    expect(details[7]).toMatch(/challenge/i);
    // Malformed: 400 naming the field, also unidentified.
    expectProblem(await hub.post(PATH.sessions, { challengeId: 'x', response: { id: 'a' } }), 400, 'VALIDATION_FAILED');
    await expectNothingAppended(head);
    // Counted per source, recorded at the interval's end like every request without a valid credential.
    await hub.app.get(Refusals).flush();
    const counted = await appended(head);
    expect(counted.map((e) => e.type)).toEqual(['UnauthenticatedRequestsRecorded']);
    expect(counted[0]!.data).toMatchObject({ count: 9, commands: { SignInCitizen: 9 }, reasons: { PASSKEY_VERIFICATION_FAILED: 8, VALIDATION_FAILED: 1 } });
  });
});

describe('registration refusals (an identified citizen: one RequestRefused each)', () => {
  it('a wrong origin, a wrong rpId, another person\'s or a used challenge, or a bad body', async () => {
    const device = new SoftAuthenticator();
    const cases: [Record<string, unknown>, string, string][] = [];
    const a = await registrationOptions(kato.citizenSecret);
    cases.push([{ challengeId: a.challengeId, response: device.register(a.options, { origin: 'https://evil.example' }) }, 'PASSKEY_REGISTRATION_FAILED', 'origin']);
    const b = await registrationOptions(kato.citizenSecret);
    cases.push([{ challengeId: b.challengeId, response: device.register(b.options, { rpId: 'evil.example' }) }, 'PASSKEY_REGISTRATION_FAILED', 'RP ID']);
    cases.push([{ challengeId: b.challengeId, response: device.register(b.options) }, 'PASSKEY_REGISTRATION_FAILED', 'challenge is unknown']);
    cases.push([{ challengeId: '00000000-0000-4000-8000-000000000000', response: device.register(b.options) }, 'PASSKEY_REGISTRATION_FAILED', 'challenge is unknown']);
    cases.push([{ challengeId: b.challengeId, response: { id: 'x' }, label: 'a\nb' }, 'VALIDATION_FAILED', 'fields']);
    for (const [body, code, detail] of cases) {
      const head = await hub.head();
      const res = await hub.post(PATH.passkeys, body, bearer(kato.citizenSecret));
      const problem = expectProblem(res, code === 'VALIDATION_FAILED' ? 400 : 400, code);
      expect(String(problem['detail'])).toContain(detail);
      const event = await expectOneCitizenRefusal(head, 'EnrolCitizenPasskey', code, res);
      if (code === 'VALIDATION_FAILED') expect((event.data as { fields: string[] }).fields.sort()).toEqual(['label', 'response']);
    }
    // Kato-san's secret still admits him: nothing was enrolled.
    expect((await records(kato.citizenSecret)).statusCode).toBe(200);
  });

  it('without a credential: 401 before the body is read, nothing appended at once', async () => {
    const head = await hub.head();
    expectProblem(await hub.post(PATH.passkeys, { challengeId: 'x' }), 401, 'UNAUTHENTICATED');
    expectProblem(await hub.post(PATH.regOptions, {}, bearer('x'.repeat(43))), 401, 'UNAUTHENTICATED');
    await expectNothingAppended(head);
  });
});

describe('sessions end: sign-out, idle and absolute expiry', () => {
  const phone = new SoftAuthenticator();
  let person: Person;
  beforeAll(async () => {
    person = await (async () => person ?? (person = await (async () => ({ ...(await issuePerson(hub)), code: '' }))()))();
    await enrol(person.citizenSecret, phone);
  });

  it('sign-out: 204, then the token admits nothing (401 SESSION_EXPIRED; a command with it is one RequestRefused)', async () => {
    const token = await session(phone);
    expect((await records(token)).statusCode).toBe(200);
    const out = await hub.inject({ method: 'DELETE', url: PATH.session, headers: bearer(token) });
    expect(out.statusCode, out.body).toBe(204);
    expectProblem(await records(token), 401, 'SESSION_EXPIRED');
    const head = await hub.head();
    const again = await hub.inject({ method: 'DELETE', url: PATH.session, headers: bearer(token) });
    expectProblem(again, 401, 'SESSION_EXPIRED');
    await expectOneCitizenRefusal(head, 'EndCitizenSession', 'SESSION_EXPIRED', again);
    // The enrolment secret is no session: 403, recorded as the citizen's.
    const before = await hub.head();
    const secret = await hub.inject({ method: 'DELETE', url: PATH.session, headers: bearer(kato.citizenSecret) });
    expectProblem(secret, 403, 'FORBIDDEN');
    await expectOneCitizenRefusal(before, 'EndCitizenSession', 'FORBIDDEN', secret);
    expect((await records(kato.citizenSecret)).statusCode).toBe(200);
  });

  it('idle: unused for HUB_CITIZEN_SESSION_IDLE_SECONDS it ends; used, it lives on', async () => {
    const token = await session(phone);
    now += (IDLE - 1) * 1000;
    expect((await records(token)).statusCode).toBe(200);
    now += (IDLE - 1) * 1000;
    expect((await records(token)).statusCode).toBe(200);
    now += IDLE * 1000;
    expectProblem(await records(token), 401, 'SESSION_EXPIRED');
  });

  it('absolute: HUB_CITIZEN_SESSION_MAX_SECONDS after sign-in it ends, however often used', async () => {
    const token = await session(phone);
    const end = now + MAX * 1000;
    while (now + (IDLE - 1) * 1000 < end) {
      now += (IDLE - 1) * 1000;
      expect((await records(token)).statusCode).toBe(200);
    }
    now = end;
    expectProblem(await records(token), 401, 'SESSION_EXPIRED');
  });
});

describe('passkey removal, and the municipality\'s new enrolment secret', () => {
  const phone = new SoftAuthenticator();
  const laptop = new SoftAuthenticator();
  let p: Person;
  let first: Enrolled;

  beforeAll(async () => {
    p = await person();
    first = await enrol(p.citizenSecret, phone, 'phone');
  });

  it('a session enrols a second passkey (the secret was retired already); excludeCredentials lists the first', async () => {
    const token = first.session.token;
    const { options } = await registrationOptions(token);
    expect(options.excludeCredentials?.map((c) => c.id)).toEqual([phone.credentialId]);
    const head = await hub.head();
    const second = await enrol(token, laptop, 'laptop');
    const [event] = await appended(head);
    expect(event!.data).toMatchObject({ secretRetired: false, passkeyId: second.passkeyId });
    const listed = (await hub.get(PATH.myPasskeys, bearer(token))).json<{ passkeys: { label: string }[] }>();
    expect(listed.passkeys.map((k) => k.label)).toEqual(['phone', 'laptop']);
    // Enrolling the same authenticator again is refused.
    const again = await registrationOptions(token);
    const res = await hub.post(PATH.passkeys, { challengeId: again.challengeId, response: laptop.register(again.options) }, bearer(token));
    expectProblem(res, 400, 'PASSKEY_REGISTRATION_FAILED');
  });

  it('removing a passkey: one CitizenPasskeyRemoved; it signs in no more and its sessions end; removing it again is 404', async () => {
    const phoneSession = await session(phone);
    const laptopSession = await session(laptop);
    const head = await hub.head();
    const res = await hub.inject({ method: 'DELETE', url: `${PATH.myPasskeys}/${first.passkeyId}`, headers: bearer(laptopSession) });
    expect(res.statusCode, res.body).toBe(200);
    const removed = res.json<{ serial: string; passkeyId: string; removedAt: string }>();
    expect(removed).toEqual({ serial: expect.stringMatching(/^\d{20}$/), passkeyId: first.passkeyId, removedAt: new Date(now).toISOString() });
    expect((await appended(head)).map((e) => [e.type, e.serial])).toEqual([['CitizenPasskeyRemoved', removed.serial]]);

    expectProblem(await signIn(phone), 401, 'PASSKEY_VERIFICATION_FAILED');
    expectProblem(await records(phoneSession), 401, 'SESSION_EXPIRED');
    expect((await records(laptopSession)).statusCode).toBe(200);

    const before = await hub.head();
    const again = await hub.inject({ method: 'DELETE', url: `${PATH.myPasskeys}/${first.passkeyId}`, headers: bearer(laptopSession) });
    expectProblem(again, 404, 'UNKNOWN_PASSKEY');
    await expectOneCitizenRefusal(before, 'RemoveCitizenPasskey', 'UNKNOWN_PASSKEY', again);
    // Another person's passkey id is as unknown.
    const other = await hub.inject({ method: 'DELETE', url: `${PATH.myPasskeys}/${first.passkeyId.replace(/.$/, '0')}`, headers: bearer(laptopSession) });
    expectProblem(other, 404, 'UNKNOWN_PASSKEY');
    expectProblem(await hub.inject({ method: 'DELETE', url: `${PATH.myPasskeys}/not-a-uuid`, headers: bearer(laptopSession) }), 400, 'VALIDATION_FAILED');
  });

  it('a new enrolment secret from the municipality revokes every passkey and session; the person enrols again with it', async () => {
    const laptopSession = await session(laptop);
    const head = await hub.head();
    const res = await hub.post(PATH.secrets, { individualNumber: p.individualNumber, municipalityCode: MURORAN, reason: '端末紛失のため窓口で本人確認の上再発行' }, bearer(muroran.token));
    expect(res.statusCode, res.body).toBe(201);
    const issued = res.json<{ serial: string; enrolmentSecret: string; issuedAt: string }>();
    secrets.add(issued.enrolmentSecret);
    expect(issued).toEqual({ serial: expect.stringMatching(/^\d{20}$/), enrolmentSecret: expect.stringMatching(/^[A-Za-z0-9_-]{43}$/), issuedAt: new Date(now).toISOString() });
    const events = await appended(head);
    expect(events.map((e) => [e.type, e.serial, e.terminal, e.metadata['actor']])).toEqual([['CitizenEnrolmentSecretIssued', issued.serial, 'completed', `agency:${MURORAN_CITY}`]]);
    expect(events[0]!.data).toMatchObject({ municipalityCode: MURORAN, passkeysRevoked: 1, credentialDigest: tokenDigest(issued.enrolmentSecret) });

    expectProblem(await records(laptopSession), 401, 'SESSION_EXPIRED');
    expectProblem(await signIn(laptop), 401, 'PASSKEY_VERIFICATION_FAILED');
    expectProblem(await records(p.citizenSecret), 401, 'CREDENTIAL_RETIRED');
    expect((await records(issued.enrolmentSecret)).statusCode).toBe(200);

    const tablet = new SoftAuthenticator();
    const again = await enrol(issued.enrolmentSecret, tablet, 'tablet');
    expect((await records(again.session.token)).statusCode).toBe(200);
    expectProblem(await records(issued.enrolmentSecret), 401, 'CREDENTIAL_RETIRED');
    expect((await signIn(tablet)).statusCode).toBe(201);

    // A later secret replaces the earlier one even before it was used.
    const third = (await hub.post(PATH.secrets, { individualNumber: p.individualNumber, municipalityCode: MURORAN, reason: '再々発行' }, hub.operator)).json<{ enrolmentSecret: string }>();
    const fourth = (await hub.post(PATH.secrets, { individualNumber: p.individualNumber, municipalityCode: MURORAN, reason: '再々々発行' }, hub.operator)).json<{ enrolmentSecret: string }>();
    secrets.add(third.enrolmentSecret).add(fourth.enrolmentSecret);
    expectProblem(await records(third.enrolmentSecret), 401, 'CREDENTIAL_RETIRED');
    expect((await records(fourth.enrolmentSecret)).statusCode).toBe(200);
  });

  it('refuses another municipality\'s agency (403), an unknown number or another municipality\'s resident (404), each one RequestRefused', async () => {
    const cases: [Record<string, string>, Record<string, unknown>, number, string][] = [
      [bearer(sapporo.token), { individualNumber: p.individualNumber, municipalityCode: MURORAN, reason: 'x' }, 403, 'FORBIDDEN'],
      [hub.operator, { individualNumber: '123456789018', municipalityCode: MURORAN, reason: 'x' }, 404, 'UNKNOWN_INDIVIDUAL_NUMBER'],
      [hub.operator, { individualNumber: p.individualNumber, municipalityCode: SAPPORO, reason: 'x' }, 404, 'UNKNOWN_INDIVIDUAL_NUMBER'],
      [hub.operator, { individualNumber: '123456789010', municipalityCode: MURORAN, reason: 'x' }, 422, 'CHECK_DIGIT_MISMATCH'],
    ];
    for (const [headers, body, status, code] of cases) {
      const head = await hub.head();
      const res = await hub.post(PATH.secrets, body, headers);
      expectProblem(res, status, code);
      const events = await appended(head);
      expect(events.map((e) => [e.type, (e.data as { command: string }).command, (e.data as { reason: string }).reason])).toEqual([['RequestRefused', 'IssueEnrolmentSecret', code]]);
    }
    // A citizen may not: 403, recorded as theirs.
    const head = await hub.head();
    const res = await hub.post(PATH.secrets, { individualNumber: p.individualNumber, municipalityCode: MURORAN, reason: 'x' }, bearer(kato.citizenSecret));
    expectProblem(res, 403, 'FORBIDDEN');
    await expectOneCitizenRefusal(head, 'IssueEnrolmentSecret', 'FORBIDDEN', res);
  });
});

describe('erasure and the publishable log (I10)', () => {
  it('an erased person\'s passkeys and sessions admit nothing', async () => {
    const device = new SoftAuthenticator();
    const p = await person();
    const { session: s } = await enrol(p.citizenSecret, device);
    const res = await hub.post('/v1/erasures', { individualNumber: p.individualNumber, reason: 'erasure ordered, ref. 2026-0042' }, hub.operator);
    expect(res.statusCode, res.body).toBe(201);
    const head = await hub.head();
    expectProblem(await records(s.token), 401, 'UNAUTHENTICATED');
    expectProblem(await hub.post(PATH.regOptions, {}, bearer(s.token)), 401, 'UNAUTHENTICATED');
    expectProblem(await signIn(device), 401, 'PASSKEY_VERIFICATION_FAILED');
    expectProblem(await records(p.citizenSecret), 401, 'UNAUTHENTICATED');
    await expectNothingAppended(head);
  });

  it('no credential id, public key, label, token or secret is in any stored envelope or hub file', async () => {
    const stored = await hub.store.readAll({ fromPosition: 0 });
    const types = new Set(stored.map((e) => e.type));
    for (const t of ['CitizenPasskeyEnrolled', 'CitizenPasskeyRemoved', 'CitizenEnrolmentSecretIssued']) expect(types).toContain(t);
    const enrolledEvents = await hub.ledger.readAll({ fromPosition: 0 });
    const publicKeys = enrolledEvents.filter((e) => e.type === 'CitizenPasskeyEnrolled').flatMap((e) => (e.data as { credential?: { publicKey: string } }).credential?.publicKey ?? []);
    expect(publicKeys.length).toBeGreaterThanOrEqual(5);
    const digests = [...secrets].map(tokenDigest);
    const needles = [...secrets, ...publicKeys, ...digests, 'iPhone', 'laptop', '端末紛失'];
    const text = stored.map((e) => JSON.stringify(e)).join('\n');
    for (const needle of needles) expect(text.includes(needle), `the log holds ${needle}`).toBe(false);
    for (const file of readdirSync(hub.dataDir, { recursive: true, encoding: 'utf8' })) {
      if (!/\.sqlite(-wal)?$/.test(file)) continue;
      const bytes = readFileSync(join(hub.dataDir, file));
      for (const needle of needles) expect(bytes.includes(Buffer.from(needle, 'utf8')), `${file} holds ${needle}`).toBe(false);
    }
    // Two enrolments of one person share no stored value but the stream id (person-scoped, in a domain of its own).
    const streams = stored.filter((e) => e.type.startsWith('Citizen')).map((e) => e.streamId);
    for (const s of streams) expect(stored.some((e) => !e.type.startsWith('Citizen') && e.streamId === s)).toBe(false);
  });
});

describe('a restart (I8: the views are folds of the log)', () => {
  it('passkeys and retired secrets come back from the log; sessions, held in memory only, do not', async () => {
    const device = new SoftAuthenticator();
    const p = await person();
    const enrolled = await enrol(p.citizenSecret, device, 'before the restart');
    const dataDir = hub.dataDir;
    const prefix = hub.config.linkage.redisPrefix!;
    await hub.close();
    hub = await startLinkageHub({ dataDir, clock: () => new Date(now), env: { ...ENV, HUB_REDIS_PREFIX: prefix } });
    expectProblem(await records(enrolled.session.token), 401, 'UNAUTHENTICATED');
    expectProblem(await records(p.citizenSecret), 401, 'CREDENTIAL_RETIRED');
    const token = await session(device);
    expect((await records(token)).statusCode).toBe(200);
    expect((await hub.get(PATH.myPasskeys, bearer(token))).json<{ passkeys: { label: string }[] }>().passkeys.map((k) => k.label)).toEqual(['before the restart']);
  });
});
