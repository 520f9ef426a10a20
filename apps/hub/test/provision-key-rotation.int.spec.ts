import { generateKeyPairSync, sign, type KeyObject } from 'node:crypto';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ProvisionSigner, provisionKeyId, provisionKeyOf } from '../src/linkage/hub-secrets.js';
import { PROVISION_KEY_STREAM } from '../src/keys/provision-key-rotation.js';
import { schemaValidator } from '../../../test/support/json-schema.js';
import { expectProblem } from './support/problem-assertions.js';
import { startRotationNetwork, underLoad, type RotationNetwork } from './support/rotation-network.js';

const ROTATE = '/v1/key-rotations/provision-signing';
const validateEvent = schemaValidator('schemas/events/provision-signing-key-rotated.v1.json');

interface Served {
  provisionSigningKey: string;
  provisionSigningKeyId: string;
  provisionSigningKeys: { keyId: string; publicKey: string; from?: string; until?: string; acceptedUntil?: string; announcedAt?: number }[];
}
interface Rotation {
  keyId: string;
  publicKey: string;
  previousKeyId: string;
  position: number;
  serial: string;
  rotatedAt: string;
  previousAcceptedUntil: string;
}

let net: RotationNetwork;
let rotation: Rotation;
let firstKeyId: string;

beforeAll(async () => {
  net = await startRotationNetwork();
}, 60_000);
afterAll(async () => {
  await net?.dispose();
});

const served = async (): Promise<Served> => {
  const res = await net.hub.get('/v1/hub/keys');
  expect(res.statusCode).toBe(200);
  return res.json<Served>();
};

/** Posts a provision body to the intermediate server with these signature headers. */
async function provisionCall(body: string, headers: Record<string, string>) {
  const res = await net.node.app.inject({ method: 'POST', url: '/v1/provisions', headers: { 'content-type': 'application/json', ...headers }, payload: body });
  return { status: res.statusCode, body: res.json<{ code?: string; detail?: string }>() };
}

const signWith = (key: KeyObject, body: string) => `ed25519=${sign(null, Buffer.from(body), key).toString('base64url')}`;

describe('rotation of the provision signing key', () => {
  it('rotates under load with no failed query: announced by a public event, served with the previous key, used at once, and the intermediate server follows it by one fetch', async () => {
    const before = await served();
    firstKeyId = before.provisionSigningKeyId;
    expect(before.provisionSigningKeys).toEqual([{ keyId: firstKeyId, publicKey: before.provisionSigningKey, from: expect.any(String) }]);
    expect(provisionKeyId(before.provisionSigningKey)).toBe(firstKeyId);
    expect(net.node.runtime.hubKeys.keyIds).toEqual([firstKeyId]);

    const { result, outcomes, duringFrom, duringTo } = await underLoad(net, () => net.hub.post(ROTATE, {}, net.hub.operator));
    expect(result.statusCode, result.body).toBe(201);
    rotation = result.json<Rotation>();
    // Zero failed queries, before, during and after the rotation.
    expect(outcomes.filter((o) => o !== 'answered')).toEqual([]);
    expect(outcomes.length).toBeGreaterThanOrEqual(16);
    console.warn(`provision key rotation under load: ${outcomes.length} queries answered (${duringTo - duringFrom} while the command ran)`);

    expect(rotation).toMatchObject({ previousKeyId: firstKeyId, keyId: provisionKeyId(rotation.publicKey) });
    expect(rotation.keyId).not.toBe(firstKeyId);
    expect(Date.parse(rotation.previousAcceptedUntil) - Date.parse(rotation.rotatedAt)).toBe(300_000);

    // The announcement: a public event of its own serial, on its own stream, of the schema's shape.
    const events = await net.hub.store.readStream(PROVISION_KEY_STREAM);
    expect(events.map((e) => [e.type, e.position, e.serial, e.terminal])).toEqual([['ProvisionSigningKeyRotated', rotation.position, rotation.serial, 'completed']]);
    expect(events[0]!.data).toEqual({ keyId: rotation.keyId, publicKey: rotation.publicKey, previousKeyId: firstKeyId, rotatedAt: rotation.rotatedAt });
    expect(validateEvent(events[0]!.data).errors).toBe('No errors');

    // The served set: the first key with its retirement, the new key signing now.
    const after = await served();
    expect(after).toEqual({
      provisionSigningKey: rotation.publicKey,
      provisionSigningKeyId: rotation.keyId,
      provisionSigningKeys: [
        { keyId: firstKeyId, publicKey: before.provisionSigningKey, from: before.provisionSigningKeys[0]!.from, until: rotation.rotatedAt, acceptedUntil: rotation.previousAcceptedUntil },
        { keyId: rotation.keyId, publicKey: rotation.publicKey, from: rotation.rotatedAt, announcedAt: rotation.position },
      ],
    });
    expect(net.hub.app.get(ProvisionSigner).keyId).toBe(rotation.keyId);
    // The intermediate server fetched the set again on the first call the new key signed.
    expect(net.node.runtime.hubKeys.keyIds).toEqual([firstKeyId, rotation.keyId]);
    expect(net.node.runtime.hubKeys.currentKeyId).toBe(rotation.keyId);

    // Queries after the rotation: signed by the new key, answered.
    expect(await net.query()).toBe('answered');

    // The new key was stored before it was announced, 0600, beside the first.
    const files = readdirSync(net.hub.config.keysDir).filter((f) => f.startsWith('provision-signing.'));
    expect(files.sort()).toEqual([`provision-signing.${rotation.keyId}.key.json`, 'provision-signing.key.json']);
    for (const f of files) expect(statSync(join(net.hub.config.keysDir, f)).mode & 0o777).toBe(0o600);
  });

  it('the intermediate server refuses a signature by a key the hub does not serve (after one fetch), accepts the retired key for 300 s after its retirement, and refuses it after', async () => {
    const body = '{}';
    // A key nobody served: refused with its own code, nothing recorded.
    const { privateKey: stranger, publicKey } = generateKeyPairSync('ed25519');
    const strangerId = provisionKeyId(publicKey.export({ format: 'jwk' }).x!);
    const unknown = await provisionCall(body, { 'hub-signature': signWith(stranger, body), 'hub-signature-key': strangerId });
    expect(unknown.status).toBe(401);
    expect(unknown.body).toMatchObject({ code: 'HUB_SIGNATURE_KEY_UNKNOWN', detail: expect.stringContaining(strangerId) });
    // The stranger's signature named as the hub's key: the signature does not verify.
    expect((await provisionCall(body, { 'hub-signature': signWith(stranger, body), 'hub-signature-key': rotation.keyId })).body.code).toBe('HUB_SIGNATURE_INVALID');
    expect((await provisionCall(body, { 'hub-signature': signWith(stranger, body), 'hub-signature-key': 'not-a-key-id' })).body.code).toBe('HUB_SIGNATURE_INVALID');

    // The retired (first) key: its signature still passes (the body is then judged: 400), until 300 s after the rotation.
    const seed = Buffer.from((JSON.parse(readFileSync(join(net.hub.config.keysDir, 'provision-signing.key.json'), 'utf8')) as { key: string }).key, 'base64url');
    const old = provisionKeyOf(seed);
    expect(old.keyId).toBe(firstKeyId);
    const oldSigned = { 'hub-signature': signWith(old.key, body), 'hub-signature-key': firstKeyId };
    expect(await provisionCall(body, oldSigned)).toMatchObject({ status: 400, body: { code: 'VALIDATION_FAILED' } });
    net.node.setNow(new Date(Date.parse(rotation.previousAcceptedUntil) - 1000));
    expect((await provisionCall(body, oldSigned)).status).toBe(400);
    net.node.setNow(new Date(Date.parse(rotation.previousAcceptedUntil) + 1000));
    const retired = await provisionCall(body, oldSigned);
    expect(retired.status).toBe(401);
    expect(retired.body).toMatchObject({ code: 'HUB_SIGNATURE_KEY_RETIRED', detail: expect.stringContaining(rotation.previousAcceptedUntil) });
    // A call naming no key is checked with the key that signs now.
    const newest = provisionKeyOf(Buffer.from((JSON.parse(readFileSync(join(net.hub.config.keysDir, `provision-signing.${rotation.keyId}.key.json`), 'utf8')) as { key: string }).key, 'base64url'));
    expect((await provisionCall(body, { 'hub-signature': signWith(newest.key, body) })).status).toBe(400);
    expect((await provisionCall(body, { 'hub-signature': signWith(old.key, body) })).body.code).toBe('HUB_SIGNATURE_INVALID');
    net.node.setNow(new Date());
  });

  it('refuses a caller without the operator credential and records the refusal (I6); nothing rotates', async () => {
    const head = await net.hub.head();
    const keyFiles = readdirSync(net.hub.config.keysDir).length;
    expectProblem(await net.hub.post(ROTATE, {}, net.hub.auditor), 403, 'FORBIDDEN');
    expectProblem(await net.hub.post(ROTATE, {}, { authorization: 'Bearer nobody-holds-this-token-0123456789' }), 401, 'UNAUTHENTICATED');
    expectProblem(await net.hub.post(ROTATE, {}), 401, 'UNAUTHENTICATED');
    const events = await net.hub.store.readAll({ fromPosition: head });
    expect(events.filter((e) => e.type === 'RequestRefused').map((e) => (e.data as { command?: string }).command)).toEqual(expect.arrayContaining(['RotateProvisionSigningKey']));
    expect(events.filter((e) => e.type === 'ProvisionSigningKeyRotated')).toEqual([]);
    expect(readdirSync(net.hub.config.keysDir)).toHaveLength(keyFiles);
    expect((await served()).provisionSigningKeyId).toBe(rotation.keyId);
  });

  it('a restart signs with the newest announced key, and queries are answered', async () => {
    await net.restartHub();
    expect(net.hub.app.get(ProvisionSigner).keyId).toBe(rotation.keyId);
    expect((await served()).provisionSigningKeys.map((k) => k.keyId)).toEqual([firstKeyId, rotation.keyId]);
    expect(await net.query()).toBe('answered');
    // A second rotation names the first rotated key as its previous one; the set grows to three.
    const second = (await net.hub.post(ROTATE, {}, net.hub.operator)).json<Rotation>();
    expect(second.previousKeyId).toBe(rotation.keyId);
    expect(await net.query()).toBe('answered');
    const keys = (await served()).provisionSigningKeys;
    expect(keys.map((k) => [k.keyId, k.until ?? null])).toEqual([
      [firstKeyId, rotation.rotatedAt],
      [rotation.keyId, second.rotatedAt],
      [second.keyId, null],
    ]);
  });
});
