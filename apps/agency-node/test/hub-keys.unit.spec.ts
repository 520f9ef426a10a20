import { generateKeyPairSync } from 'node:crypto';
import { describe, expect, test } from 'vitest';
import { HubKeys, keySetOf, provisionKeyId, singleKeySet, type ServedKeySet } from '../src/hub/hub-keys.js';

function newKey(): { keyId: string; publicKey: string } {
  const publicKey = generateKeyPairSync('ed25519').publicKey.export({ format: 'jwk' }).x!;
  return { keyId: provisionKeyId(publicKey), publicKey };
}

const T0 = Date.parse('2026-12-05T09:00:00.000Z');

describe('the hub keys an intermediate server checks hub-signature with', () => {
  test('an unknown key id fetches the set again once: concurrent calls share the fetch, and another unknown id within a second waits for the next fetch, one a second at most', async () => {
    const first = newKey();
    const second = newKey();
    let now = T0;
    let fetches = 0;
    const fetchedAt: number[] = [];
    const slept: number[] = [];
    let release: () => void = () => {};
    const rotated: ServedKeySet = { currentKeyId: second.keyId, keys: [{ ...first, until: new Date(T0).toISOString(), acceptedUntil: new Date(T0 + 300_000).toISOString() }, second] };
    const keys = new HubKeys(
      singleKeySet(first.publicKey),
      async () => {
        fetches++;
        fetchedAt.push(now);
        if (fetches === 1) await new Promise<void>((r) => (release = r));
        return rotated;
      },
      () => now,
      1_000,
      async (ms) => {
        slept.push(ms);
        now += ms;
      },
    );
    const calls = [keys.keyFor(second.keyId), keys.keyFor(second.keyId), keys.keyFor(second.keyId)];
    await new Promise((r) => setTimeout(r, 10));
    release();
    await Promise.all(calls);
    expect(fetches).toBe(1);
    expect(slept).toEqual([]);
    expect(keys.keyIds).toEqual([first.keyId, second.keyId]);
    // Made-up key ids: each waits for the next fetch, never more than one a second, however many calls.
    now += 200;
    const madeUp = [keys.keyFor('0123456789abcdef'), keys.keyFor('fedcba9876543210'), keys.keyFor('0123456789abcdef')];
    for (const call of madeUp) await expect(call).rejects.toMatchObject({ code: 'HUB_SIGNATURE_KEY_UNKNOWN' });
    expect(fetches).toBe(2);
    expect(slept).toEqual([800]);
    await expect(keys.keyFor('fedcba9876543210')).rejects.toMatchObject({ code: 'HUB_SIGNATURE_KEY_UNKNOWN' });
    expect(fetches).toBe(3);
    expect(fetchedAt[2]! - fetchedAt[1]!).toBeGreaterThanOrEqual(1_000);
  });

  test('a key served by a fetch that comes within a second of the last one is accepted once that fetch is made (no refusal in between)', async () => {
    const [a, b, c] = [newKey(), newKey(), newKey()];
    let now = T0;
    let served: ServedKeySet = { currentKeyId: b.keyId, keys: [{ ...a, until: new Date(T0).toISOString() }, b] };
    const keys = new HubKeys(singleKeySet(a.publicKey), async () => served, () => now, 1_000, async (ms) => {
      now += ms;
    });
    await keys.keyFor(b.keyId);
    served = { currentKeyId: c.keyId, keys: [{ ...a, until: new Date(T0).toISOString() }, { ...b, until: new Date(now).toISOString() }, c] };
    now += 100;
    await expect(keys.keyFor(c.keyId)).resolves.toBeDefined();
    expect(keys.currentKeyId).toBe(c.keyId);
  });

  test('a retired key is accepted until its acceptedUntil (else 300 s after until), then refused; the key that signs now always', async () => {
    const [a, b, c] = [newKey(), newKey(), newKey()];
    let now = T0;
    const keys = new HubKeys({ currentKeyId: c.keyId, keys: [{ ...a, until: new Date(T0).toISOString(), acceptedUntil: new Date(T0 + 60_000).toISOString() }, { ...b, until: new Date(T0).toISOString() }, c] }, undefined, () => now);
    await expect(keys.keyFor(a.keyId)).resolves.toBeDefined();
    now = T0 + 60_001;
    await expect(keys.keyFor(a.keyId)).rejects.toMatchObject({ code: 'HUB_SIGNATURE_KEY_RETIRED' });
    await expect(keys.keyFor(b.keyId)).resolves.toBeDefined();
    now = T0 + 300_001;
    await expect(keys.keyFor(b.keyId)).rejects.toMatchObject({ code: 'HUB_SIGNATURE_KEY_RETIRED' });
    now = T0 + 10 * 365 * 86_400_000;
    await expect(keys.keyFor(c.keyId)).resolves.toBeDefined();
    await expect(keys.keyFor(undefined)).resolves.toBe(await keys.keyFor(c.keyId));
  });

  test('a pinned key is never refreshed; a hub that fails to answer leaves the keys held', async () => {
    const a = newKey();
    const pinned = new HubKeys(singleKeySet(a.publicKey), undefined);
    await expect(pinned.keyFor(newKey().keyId)).rejects.toMatchObject({ code: 'HUB_SIGNATURE_KEY_UNKNOWN', message: expect.stringContaining('AGENCY_HUB_PROVISION_KEY') });
    const failing = new HubKeys(singleKeySet(a.publicKey), () => Promise.reject(new Error('hub down')));
    await expect(failing.keyFor(newKey().keyId)).rejects.toMatchObject({ code: 'HUB_SIGNATURE_KEY_UNKNOWN' });
    expect(failing.keyIds).toEqual([a.keyId]);
  });

  test('reads GET /v1/hub/keys: the set, an older hub\'s single key, and refuses a key id that does not name its key', () => {
    const [a, b] = [newKey(), newKey()];
    expect(keySetOf({ provisionSigningKey: a.publicKey })).toEqual(singleKeySet(a.publicKey));
    expect(keySetOf({ provisionSigningKey: b.publicKey, provisionSigningKeyId: b.keyId, provisionSigningKeys: [{ ...a, until: '2026-12-05T09:00:00.000Z', from: 'not a time' }, b] })).toEqual({
      currentKeyId: b.keyId,
      keys: [{ ...a, until: '2026-12-05T09:00:00.000Z' }, b],
    });
    expect(keySetOf({ provisionSigningKey: b.publicKey, provisionSigningKeyId: b.keyId, provisionSigningKeys: [{ keyId: a.keyId, publicKey: b.publicKey }, b] })).toBeUndefined();
    expect(keySetOf({ provisionSigningKey: b.publicKey, provisionSigningKeyId: a.keyId, provisionSigningKeys: [a, b] })).toBeUndefined();
    expect(keySetOf({})).toBeUndefined();
  });
});
