import { readdirSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { CodeLocator } from '#mapper';
import { ProvisionSigner } from '../src/linkage/hub-secrets.js';
import { KURRENTDB_URL, announceServer, eventually } from './kurrentdb-hub.support.js';
import { expectProblem } from './support/problem-assertions.js';
import { useStandbyPair } from './support/standby-pair.js';

// A leader and a standby on one KurrentDB log (the wire-level stand-in, or the server at KURRENTDB_URL),
// sharing keys/: only the leader rotates the provision signing key and the code key; the standby serves the
// leader's rotations and, once it takes over, signs and mints with the newest keys the log announces.
announceServer();

const ENV = { HUB_AUTHORIZATION_TABLE_FILE: '', HUB_SELF_DISCLOSURE_TABLE_FILE: '' };
const pair = useStandbyPair(ENV);
const { log } = pair;

describe('key rotations on KurrentDB, with a standby', () => {
  it('the standby refuses both rotations (503 NOT_LEADER, nothing recorded, no key made); after the leader rotates, the standby serves the new provision key, and once it takes over it signs and mints with the newest keys', async () => {
    const { a, b } = pair;
    expect((await b.get('/health/ready')).json()).toMatchObject({ role: 'standby' });
    const keysDir = a.config.keysDir;
    const files = readdirSync(keysDir).length;
    const head = (await log.texts()).length;
    expectProblem(await b.post('/v1/key-rotations/provision-signing', {}, b.operator), 503, 'NOT_LEADER');
    expectProblem(await b.post('/v1/key-rotations/code', {}, b.operator), 503, 'NOT_LEADER');
    expect((await log.texts()).length).toBe(head);
    expect(readdirSync(keysDir)).toHaveLength(files);

    const provision = await a.post('/v1/key-rotations/provision-signing', {}, a.operator);
    expect(provision.statusCode, provision.body).toBe(201);
    const code = await a.post('/v1/key-rotations/code', {}, a.operator);
    expect(code.statusCode, code.body).toBe(201);
    const provisionKeyId = provision.json<{ keyId: string }>().keyId;
    const codeKeyId = code.json<{ keyId: string }>().keyId;

    // The standby serves the leader's rotation (read from the log).
    await eventually('the standby serves the new provision key', async () => (await b.get('/v1/hub/keys')).json<{ provisionSigningKeyId: string }>().provisionSigningKeyId === provisionKeyId);
    expect((await b.get('/v1/hub/keys')).json<{ provisionSigningKeys: unknown[] }>().provisionSigningKeys).toHaveLength(2);

    // The standby read its keys at start: it learns the rotations when it takes over.
    expect(b.app.get(ProvisionSigner).keyId).toBe(provision.json<{ previousKeyId: string }>().previousKeyId);
    expect(b.app.get(CodeLocator).generation).toBe(0);

    // The leader stops; the standby takes over and signs and mints with the newest announced keys.
    await a.close();
    await eventually('the standby takes over', async () => b.leadership.acceptsCommands, 20_000);
    expect(b.app.get(ProvisionSigner).keyId).toBe(provisionKeyId);
    const ring = b.app.get(CodeLocator);
    expect([ring.generation, ring.keyId]).toEqual([1, codeKeyId]);
    // And rotates on: generation 2 follows the leader's generation 1.
    const next = await b.post('/v1/key-rotations/code', {}, b.operator);
    expect(next.statusCode, next.body).toBe(201);
    expect(next.json()).toMatchObject({ generation: 2, previousKeyId: codeKeyId });
  }, KURRENTDB_URL ? 60_000 : 40_000);
});
