import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import type { SubjectId } from '#linkage';
import { inMemorySealer } from '#sealing';
import { schemaValidator } from '../../../test/support/json-schema.js';
import {
  CitizenCredentialError,
  decideCitizenCredentials,
  evolveCitizenCredentials,
  initialCitizenCredentials,
  type CitizenCredentialCommand,
  type CitizenCredentialEvent,
  type CitizenCredentialsState,
} from '../src/citizens/citizen-credentials.decider.js';
import { CHALLENGE_TTL_MS, MAX_CHALLENGES, WebAuthnChallenges } from '../src/citizens/webauthn-challenges.js';

const subjectId = randomUUID() as SubjectId;
const at = '2026-12-04T09:00:00.000Z';
const credential = (id: string) => ({ id, publicKey: 'pQECAyYgASFYIA', counter: 0, transports: ['internal'] });

function run(commands: CitizenCredentialCommand[]): { state: CitizenCredentialsState; events: CitizenCredentialEvent[] } {
  let state = initialCitizenCredentials();
  const events: CitizenCredentialEvent[] = [];
  for (const c of commands) {
    for (const e of decideCitizenCredentials(c, state)) {
      const event = { type: e.type, data: e.data } as CitizenCredentialEvent;
      state = evolveCitizenCredentials(state, event);
      events.push(event);
    }
  }
  return { state, events };
}

describe('citizen credentials: the decider', () => {
  it('enrols, removes, and a new enrolment secret revokes every passkey', () => {
    const p1 = randomUUID();
    const p2 = randomUUID();
    const { state, events } = run([
      { type: 'EnrolPasskey', data: { subjectId, passkeyId: p1, credential: credential('AAAA'), label: 'phone', secretRetired: true, enrolledAt: at } },
      { type: 'EnrolPasskey', data: { subjectId, passkeyId: p2, credential: credential('BBBB'), secretRetired: false, enrolledAt: at } },
      { type: 'RemovePasskey', data: { subjectId, passkeyId: p1, removedAt: at } },
    ]);
    expect(events.map((e) => e.type)).toEqual(['CitizenPasskeyEnrolled', 'CitizenPasskeyEnrolled', 'CitizenPasskeyRemoved']);
    expect([...state.passkeys]).toEqual([[p2, 'BBBB']]);
    const [issued] = decideCitizenCredentials({ type: 'IssueEnrolmentSecret', data: { subjectId, credentialDigest: 'a'.repeat(64), municipalityCode: '012050', reason: 'lost', issuedAt: at } }, state);
    expect(issued).toMatchObject({ type: 'CitizenEnrolmentSecretIssued', terminal: 'completed', data: { passkeysRevoked: 1 } });
    expect(evolveCitizenCredentials(state, issued as CitizenCredentialEvent).passkeys.size).toBe(0);
  });

  it('refuses a passkey enrolled twice, and removing one not held', () => {
    const { state } = run([{ type: 'EnrolPasskey', data: { subjectId, passkeyId: randomUUID(), credential: credential('AAAA'), secretRetired: true, enrolledAt: at } }]);
    expect(() => decideCitizenCredentials({ type: 'EnrolPasskey', data: { subjectId, passkeyId: randomUUID(), credential: credential('AAAA'), secretRetired: false, enrolledAt: at } }, state)).toThrow(CitizenCredentialError);
    expect(() => decideCitizenCredentials({ type: 'RemovePasskey', data: { subjectId, passkeyId: randomUUID(), removedAt: at } }, state)).toThrow(/no passkey/);
  });
});

describe('citizen credential events, sealed as stored, conform to schemas/events/*', () => {
  const sealer = inMemorySealer();
  const sealed = ['schemas/events/sealed-section.v1.json'];
  const schemas = {
    CitizenPasskeyEnrolled: schemaValidator('schemas/events/citizen-passkey-enrolled.v1.json', sealed),
    CitizenPasskeyRemoved: schemaValidator('schemas/events/citizen-passkey-removed.v1.json', sealed),
    CitizenEnrolmentSecretIssued: schemaValidator('schemas/events/citizen-enrolment-secret-issued.v1.json', sealed),
  };
  it('each type, with and without its optional fields', () => {
    const passkeyId = randomUUID();
    const events = [
      ...decideCitizenCredentials({ type: 'EnrolPasskey', data: { subjectId, passkeyId, credential: credential('AAAA'), label: 'phone', secretRetired: true, enrolledAt: at } }, initialCitizenCredentials()),
      ...decideCitizenCredentials({ type: 'EnrolPasskey', data: { subjectId, passkeyId, credential: { id: 'BBBB', publicKey: 'x', counter: 3 }, secretRetired: false, enrolledAt: at } }, initialCitizenCredentials()),
      ...decideCitizenCredentials({ type: 'RemovePasskey', data: { subjectId, passkeyId, removedAt: at } }, { passkeys: new Map([[passkeyId, 'AAAA']]) }),
      ...decideCitizenCredentials({ type: 'IssueEnrolmentSecret', data: { subjectId, credentialDigest: 'a'.repeat(64), municipalityCode: '012050', reason: 'lost', issuedAt: at } }, initialCitizenCredentials()),
    ];
    for (const event of events) {
      const stored = sealer.seal('citizen-credentials-x', event);
      expect(schemas[event.type](stored.data).errors, event.type).toBe('No errors');
      const text = JSON.stringify(stored);
      for (const secret of [subjectId, passkeyId, 'AAAA', 'phone', 'a'.repeat(64), 'lost']) expect(text.includes(secret), `${event.type} holds ${secret}`).toBe(false);
    }
  });
});

describe('WebAuthn challenges: five minutes, once, bounded', () => {
  it('a challenge is taken once, and not after five minutes', () => {
    let now = 0;
    const challenges = new WebAuthnChallenges(() => new Date(now));
    const a = challenges.issue({ kind: 'authentication' });
    expect(challenges.take(a.challengeId)).toMatchObject({ kind: 'authentication', challenge: a.challenge });
    expect(challenges.take(a.challengeId)).toBeUndefined();
    const b = challenges.issue({ kind: 'registration', subjectId });
    now += CHALLENGE_TTL_MS;
    expect(challenges.take(b.challengeId)).toBeUndefined();
  });

  it('holds at most MAX_CHALLENGES, dropping the oldest, and sweeps expired ones as it issues', () => {
    let now = 0;
    const challenges = new WebAuthnChallenges(() => new Date(now));
    const first = challenges.issue({ kind: 'authentication' });
    for (let i = 0; i < MAX_CHALLENGES + 50; i++) challenges.issue({ kind: 'authentication' });
    expect(challenges.size).toBe(MAX_CHALLENGES);
    expect(challenges.take(first.challengeId)).toBeUndefined();
    now += CHALLENGE_TTL_MS;
    challenges.issue({ kind: 'authentication' });
    expect(challenges.size).toBe(1);
  });
});

describe('configuration of citizen sign-in', () => {
  it('defaults, given values, and refusals', async () => {
    const { loadHubConfig, HubConfigError } = await import('../src/config/hub-config.js');
    expect(loadHubConfig({}).citizenSignIn).toEqual({ portalOrigins: ['http://localhost:3300'], rpId: 'localhost', rpName: 'マイナンバー情報連携 開示ポータル', sessionIdleSeconds: 900, sessionMaxSeconds: 28_800 });
    const given = loadHubConfig({
      HUB_PORTAL_ORIGINS: 'https://portal.example.jp, http://localhost:3300',
      HUB_WEBAUTHN_RP_ID: 'portal.example.jp',
      HUB_WEBAUTHN_RP_NAME: 'ポータル',
      HUB_CITIZEN_SESSION_IDLE_SECONDS: '600',
      HUB_CITIZEN_SESSION_MAX_SECONDS: '3600',
    }).citizenSignIn;
    expect(given).toEqual({ portalOrigins: ['https://portal.example.jp', 'http://localhost:3300'], rpId: 'portal.example.jp', rpName: 'ポータル', sessionIdleSeconds: 600, sessionMaxSeconds: 3600 });
    let error: unknown;
    try {
      loadHubConfig({ HUB_PORTAL_ORIGINS: 'https://portal.example.jp/path', HUB_WEBAUTHN_RP_ID: 'Portal Example', HUB_CITIZEN_SESSION_IDLE_SECONDS: '10', HUB_CITIZEN_SESSION_MAX_SECONDS: 'x' });
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(HubConfigError);
    expect((error as InstanceType<typeof HubConfigError>).problems.map((p) => p.variable).sort()).toEqual(['HUB_CITIZEN_SESSION_IDLE_SECONDS', 'HUB_CITIZEN_SESSION_MAX_SECONDS', 'HUB_PORTAL_ORIGINS', 'HUB_WEBAUTHN_RP_ID']);
  });

  it('trusts the forwarded address of the listed proxies only (none by default)', async () => {
    const { loadHubConfig } = await import('../src/config/hub-config.js');
    expect(loadHubConfig({}).trustedProxies).toEqual([]);
    expect(loadHubConfig({ HUB_TRUSTED_PROXIES: '127.0.0.1, 10.0.0.0/8,2001:db8::/32' }).trustedProxies).toEqual(['127.0.0.1', '10.0.0.0/8', '2001:db8::/32']);
    for (const bad of ['10.0.0.0/33', 'portal.example', '127.0.0.1/8/1', '::1/129']) expect(() => loadHubConfig({ HUB_TRUSTED_PROXIES: bad }), bad).toThrow(/HUB_TRUSTED_PROXIES/);
  });
});

describe('citizen sessions: idle, absolute, ended, their passkey gone, bounded', async () => {
  const { CitizenSessions } = await import('../src/citizens/citizen-sessions.js');
  const { tokenDigest } = await import('../src/linkage/hub-secrets.js');
  const { DEFAULT_CITIZEN_SIGN_IN } = await import('../src/config/hub-config.js');
  let now = 0;
  let held = true;
  let erased = false;
  const make = () =>
    new CitizenSessions(
      () => new Date(now),
      { citizenSignIn: { ...DEFAULT_CITIZEN_SIGN_IN, sessionIdleSeconds: 60, sessionMaxSeconds: 600 } } as never,
      { citizenCredentials: { holds: () => held } } as never,
      { isErased: () => erased } as never,
    );

  it('lives while used, ends when idle, at its absolute expiry, at sign-out, and with its passkey', () => {
    const sessions = make();
    const a = sessions.begin(subjectId, 'cred');
    expect(a.expiresAt).toBe(new Date(600_000).toISOString());
    const d = tokenDigest(a.token);
    now = 59_000;
    expect(sessions.check(d).kind).toBe('live');
    now = 118_000;
    expect(sessions.check(d).kind).toBe('live');
    now = 178_000;
    expect(sessions.check(d)).toEqual({ kind: 'expired', subjectId });
    now = 0;
    const b = tokenDigest(sessions.begin(subjectId, 'cred').token);
    for (now = 50_000; now < 600_000; now += 50_000) expect(sessions.check(b).kind).toBe('live');
    now = 600_000;
    expect(sessions.check(b).kind).toBe('expired');
    now = 0;
    const c = tokenDigest(sessions.begin(subjectId, 'cred').token);
    expect(sessions.end(c)).toBe(true);
    expect(sessions.end(c)).toBe(false);
    expect(sessions.check(c).kind).toBe('expired');
    const e = tokenDigest(sessions.begin(subjectId, 'cred').token);
    held = false;
    expect(sessions.check(e).kind).toBe('expired');
    erased = true;
    expect(sessions.check(e).kind).toBe('unknown');
    expect(sessions.check(tokenDigest('nobody')).kind).toBe('unknown');
    held = true;
    erased = false;
  });

  it('holds at most maxSessions (the oldest ends) and forgets those past their absolute expiry', () => {
    now = 0;
    const sessions = make();
    sessions.maxSessions = 100;
    const first = tokenDigest(sessions.begin(subjectId, 'cred').token);
    for (let i = 0; i < 150; i++) sessions.begin(subjectId, 'cred');
    expect(sessions.size).toBe(100);
    expect(sessions.check(first).kind).toBe('unknown');
    now = 600_000;
    sessions.begin(subjectId, 'cred');
    expect(sessions.size).toBe(1);
  });
});
