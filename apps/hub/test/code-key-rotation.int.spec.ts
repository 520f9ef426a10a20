import { randomBytes } from 'node:crypto';
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { createClient } from 'redis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CodeLocator } from '#mapper';
import { CODE_KEY_STREAM } from '../src/keys/code-key-rotation.js';
import { HubCodeMapper } from '../src/linkage/hub-code-mapper.js';
import { schemaValidator } from '../../../test/support/json-schema.js';
import { acquire, dropMapperKeys, issuePerson } from './support/linkage-fixture.js';
import { expectProblem } from './support/problem-assertions.js';
import { startRotationNetwork, underLoad, type RotationNetwork } from './support/rotation-network.js';

const ROTATE = '/v1/key-rotations/code';
const validateEvent = schemaValidator('schemas/events/code-key-rotated.v1.json');
const PREFIX = `ckr-${process.pid}-${randomBytes(4).toString('hex')}`;

interface Rotation {
  keyId: string;
  previousKeyId: string;
  generation: number;
  rotatedAt: string;
  position: number;
  serial: string;
}

let net: RotationNetwork;
let rotation: Rotation;
/** Codes minted before the rotation, and after. */
const codes: { beforeP2?: string; afterP3?: string } = {};

beforeAll(async () => {
  net = await startRotationNetwork({ env: { HUB_REDIS_URL: 'redis://127.0.0.1:6379', HUB_REDIS_PREFIX: PREFIX } });
}, 60_000);
afterAll(async () => {
  await net?.dispose();
  await dropMapperKeys(PREFIX);
});

/** The mark a code carries inside its sealed block: [0, 0] … for the first key's codes it is random. */
function markOf(locator: CodeLocator, code: string): number[] {
  return [...locator.open(Buffer.from(code, 'base64url')).subarray(7, 9)];
}

/** Redis keys of code buckets (`c`) or subject buckets (`s`) under the hub's prefix. */
async function bucketKeys(kind: 'c' | 's'): Promise<string[]> {
  const client = createClient({ url: 'redis://127.0.0.1:6379' });
  await client.connect();
  try {
    const keys: string[] = [];
    for await (const batch of client.scanIterator({ MATCH: `${PREFIX}:${kind}{*`, COUNT: 1000 })) keys.push(...(Array.isArray(batch) ? batch : [batch]));
    return keys;
  } finally {
    await client.close();
  }
}

describe('rotation of the code key', () => {
  it('rotates under load with no failed query; codes minted before and after translate both ways, and minted codes keep no code bucket in Redis', async () => {
    const locator = net.hub.app.get(CodeLocator);
    const firstKeyId = locator.fingerprint;
    expect(net.hub.app.get(HubCodeMapper).health().mode).toBe('redis');
    // Before: P2's pension code and P3's Muroran code, under the first key.
    const p2 = await issuePerson(net.hub);
    const p3 = await issuePerson(net.hub);
    codes.beforeP2 = await acquire(net.hub, net.pension, p2.individualNumber, 'ROT-P-2');
    const muroranP3 = await net.node.runtime.requester.acquire({ localId: 'M-000125', individualNumber: p3.individualNumber, acquisitionNumber: 'ROT-M-3' });

    const { result, outcomes, duringFrom, duringTo } = await underLoad(net, () => net.hub.post(ROTATE, {}, net.hub.operator));
    expect(result.statusCode, result.body).toBe(201);
    rotation = result.json<Rotation>();
    expect(outcomes.filter((o) => o !== 'answered')).toEqual([]);
    expect(outcomes.length).toBeGreaterThanOrEqual(16);
    console.warn(`code key rotation under load: ${outcomes.length} queries answered (${duringTo - duringFrom} while the command ran)`);
    expect(rotation).toMatchObject({ previousKeyId: firstKeyId, generation: 1 });
    expect(rotation.keyId).toMatch(/^[0-9a-f]{16}$/);
    expect(rotation.keyId).not.toBe(firstKeyId);
    expect([locator.generation, locator.keyId]).toEqual([1, rotation.keyId]);

    // The announcement: public, its own serial, the schema's shape; the key itself nowhere in the log.
    const events = await net.hub.store.readStream(CODE_KEY_STREAM);
    expect(events.map((e) => [e.type, e.position, e.serial, e.terminal])).toEqual([['CodeKeyRotated', rotation.position, rotation.serial, 'completed']]);
    expect(events[0]!.data).toEqual({ keyId: rotation.keyId, previousKeyId: firstKeyId, generation: 1, rotatedAt: rotation.rotatedAt });
    expect(validateEvent(events[0]!.data).errors).toBe('No errors');

    // After: P2's Muroran code and P3's pension code, under the new key (its mark inside the block).
    const muroranP2 = await net.node.runtime.requester.acquire({ localId: 'M-000124', individualNumber: p2.individualNumber, acquisitionNumber: 'ROT-M-2' });
    codes.afterP3 = await acquire(net.hub, net.pension, p3.individualNumber, 'ROT-P-3');
    expect(markOf(locator, muroranP2.code)).toEqual([0, 1]);
    expect(markOf(locator, codes.afterP3)).toEqual([0, 1]);
    // Old to old, old to new, new to old: each answered by Muroran City from its own code.
    expect(await net.query(net.codeA)).toBe('answered');
    expect(await net.query(codes.beforeP2)).toBe('answered');
    expect(await net.query(codes.afterP3)).toBe('answered');
    expect(muroranP3.code).not.toBe(codes.afterP3);

    // The Redis projection (followed from the log) holds every code in subject buckets only: each, old or new, is found by the key it names, in one read.
    const mapper = net.hub.app.get(HubCodeMapper).mapper;
    const deadline = Date.now() + 10_000;
    while ((await mapper.translate('jpn-pension-service', codes.afterP3, 'muroran-city')).status !== 'translated' && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    expect(await mapper.translate('jpn-pension-service', codes.beforeP2, 'muroran-city')).toMatchObject({ status: 'translated', code: muroranP2.code });
    expect(await mapper.translate('jpn-pension-service', codes.afterP3, 'muroran-city')).toMatchObject({ status: 'translated', code: muroranP3.code });
    expect(await bucketKeys('c')).toEqual([]);
    expect((await bucketKeys('s')).length).toBeGreaterThan(0);

    // Stored before it was announced, 0600, beside the first key.
    const files = readdirSync(net.hub.config.keysDir).filter((f) => f.startsWith('agency-code.'));
    expect(files.sort()).toEqual([`agency-code.${rotation.keyId}.key.json`, 'agency-code.key.json']);
    for (const f of files) expect(statSync(join(net.hub.config.keysDir, f)).mode & 0o777).toBe(0o600);
  });

  it('refuses a caller without the operator credential and records the refusal (I6); nothing rotates', async () => {
    const head = await net.hub.head();
    const keyFiles = readdirSync(net.hub.config.keysDir).length;
    expectProblem(await net.hub.post(ROTATE, {}, net.hub.auditor), 403, 'FORBIDDEN');
    expectProblem(await net.hub.post(ROTATE, {}, { authorization: 'Bearer nobody-holds-this-token-0123456789' }), 401, 'UNAUTHENTICATED');
    const events = await net.hub.store.readAll({ fromPosition: head });
    expect(events.filter((e) => e.type === 'RequestRefused').map((e) => (e.data as { command?: string }).command)).toEqual(expect.arrayContaining(['RotateCodeKey']));
    expect(events.filter((e) => e.type === 'CodeKeyRotated')).toEqual([]);
    expect(readdirSync(net.hub.config.keysDir)).toHaveLength(keyFiles);
    expect(net.hub.app.get(CodeLocator).generation).toBe(1);
  });

  it('a restart mints with the newest announced key; codes of both keys still translate', async () => {
    await net.restartHub({ HUB_REDIS_URL: 'redis://127.0.0.1:6379', HUB_REDIS_PREFIX: PREFIX });
    const locator = net.hub.app.get(CodeLocator);
    expect(locator.keys.map((k) => [k.generation, k.keyId])).toEqual([
      [0, rotation.previousKeyId],
      [1, rotation.keyId],
    ]);
    const p4 = await issuePerson(net.hub);
    expect(markOf(locator, await acquire(net.hub, net.pension, p4.individualNumber, 'ROT-P-4'))).toEqual([0, 1]);
    expect(await net.query(net.codeA)).toBe('answered');
    expect(await net.query(codes.beforeP2)).toBe('answered');
    expect(await net.query(codes.afterP3)).toBe('answered');
    // A second rotation: generation 2, after the first rotated key; generation-1 codes still answer.
    const second = (await net.hub.post(ROTATE, {}, net.hub.operator)).json<Rotation>();
    expect(second).toMatchObject({ generation: 2, previousKeyId: rotation.keyId });
    expect(await net.query(codes.afterP3)).toBe('answered');
    expect(await bucketKeys('c')).toEqual([]);
  });
});
