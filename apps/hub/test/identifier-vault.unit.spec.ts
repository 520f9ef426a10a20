import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { afterAll, describe, expect, it } from 'vitest';
import { IdentifierVault, type SealedEnvelope } from '../src/vault/identifier-vault.js';
import { loadOrCreateVaultKeys, type VaultKeys } from '../src/vault/vault-keys.js';

function keys(): VaultKeys {
  return {
    blindIndex: { kid: 'bi-test', key: randomBytes(32) },
    keyEncryption: { kid: 'kek-test', key: randomBytes(32) },
  };
}

const identifiers = { individualNumber: '123456789018', residentRecordCode: '12345678901' };
const stream = 'person-numbering-abc';

/** Flips one bit of a base64url field. */
function flip(value: string, at = 0): string {
  const bytes = Buffer.from(value, 'base64url');
  bytes[at] = bytes[at]! ^ 0x01;
  return bytes.toString('base64url');
}

describe('IdentifierVault', () => {
  const vault = new IdentifierVault(keys());

  describe('seal / unseal', () => {
    it('round-trips the identifiers under the same stream id', () => {
      const sealed = vault.seal(identifiers, stream);
      expect(vault.unseal(sealed, stream)).toEqual(identifiers);
    });

    it('keeps no plaintext in the sealed value and uses a fresh data key and iv every time', () => {
      const a = vault.seal(identifiers, stream);
      const b = vault.seal(identifiers, stream);
      const text = JSON.stringify(a);
      expect(text).not.toContain(identifiers.individualNumber);
      expect(text).not.toContain(identifiers.residentRecordCode);
      expect(a.wrappedKey).not.toBe(b.wrappedKey);
      expect(a.iv).not.toBe(b.iv);
      expect(a.ciphertext).not.toBe(b.ciphertext);
      expect(a).toMatchObject({ v: '1', alg: 'A256GCM', wrapAlg: 'A256GCMKW', kid: 'kek-test' });
      expect(Buffer.from(a.wrappedKey, 'base64url')).toHaveLength(32);
      expect(Buffer.from(a.iv, 'base64url')).toHaveLength(12);
      expect(Buffer.from(a.tag, 'base64url')).toHaveLength(16);
    });

    it.each(['ciphertext', 'tag', 'iv', 'wrappedKey', 'wrapTag', 'wrapIv'] as const)('refuses a sealed value whose %s was altered', (field) => {
      const sealed = vault.seal(identifiers, stream);
      const tampered: SealedEnvelope = { ...sealed, [field]: flip(sealed[field]) };
      expect(() => vault.unseal(tampered, stream)).toThrow(expect.objectContaining({ code: 'UNSEAL_FAILED' }));
    });

    it('refuses a sealed value moved to another stream (the stream id is the AAD)', () => {
      const sealed = vault.seal(identifiers, stream);
      expect(() => vault.unseal(sealed, 'person-numbering-other')).toThrow(expect.objectContaining({ code: 'UNSEAL_FAILED' }));
    });

    it('refuses a value sealed under another key-encryption key, naming the key id', () => {
      const other = new IdentifierVault({ ...keys(), keyEncryption: { kid: 'kek-other', key: randomBytes(32) } });
      expect(() => vault.unseal(other.seal(identifiers, stream), stream)).toThrow(expect.objectContaining({ code: 'UNKNOWN_KEY' }));
      const sameKid = new IdentifierVault(keys());
      expect(() => vault.unseal(sameKid.seal(identifiers, stream), stream)).toThrow(expect.objectContaining({ code: 'UNSEAL_FAILED' }));
    });

    it('refuses a value that is not a sealed envelope', () => {
      expect(() => vault.unseal({ ciphertext: 'x' }, stream)).toThrow(expect.objectContaining({ code: 'MALFORMED_ENVELOPE' }));
      const sealed = vault.seal(identifiers, stream);
      expect(() => vault.unseal({ ...sealed, alg: 'none' }, stream)).toThrow(expect.objectContaining({ code: 'MALFORMED_ENVELOPE' }));
    });
  });

  describe('digest', () => {
    it('is HMAC-SHA256 hex, stable for one key', () => {
      const d = vault.digest('individual-number', identifiers.individualNumber);
      expect(d).toMatch(/^[0-9a-f]{64}$/);
      expect(vault.digest('individual-number', identifiers.individualNumber)).toBe(d);
    });

    it('separates domains: the same digits under two kinds give two digests', () => {
      const value = '12345678901';
      expect(vault.digest('individual-number', value)).not.toBe(vault.digest('resident-record-code', value));
      expect(vault.digest('resident-record-code', value)).not.toBe(vault.digest('idempotency-request', value));
    });

    it('depends on the key: another vault cannot match the blind index', () => {
      expect(new IdentifierVault(keys()).digest('individual-number', '123456789018')).not.toBe(vault.digest('individual-number', '123456789018'));
    });
  });
});

describe('loadOrCreateVaultKeys', () => {
  const dir = mkdtempSync(join(tmpdir(), 'hub-keys-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('generates both keys once, with key ids, mode 0600 in a 0700 directory, and loads the same keys again', () => {
    const keysDir = join(dir, 'keys');
    const first = loadOrCreateVaultKeys(keysDir);
    expect(first.blindIndex.kid).toMatch(/^bi-[0-9a-f]{16}$/);
    expect(first.keyEncryption.kid).toMatch(/^kek-[0-9a-f]{16}$/);
    expect(first.blindIndex.key).toHaveLength(32);
    expect(first.blindIndex.key.equals(first.keyEncryption.key)).toBe(false);
    expect(statSync(keysDir).mode & 0o777).toBe(0o700);
    for (const file of ['blind-index.key.json', 'key-encryption.key.json']) {
      expect(statSync(join(keysDir, file)).mode & 0o777).toBe(0o600);
    }
    const again = loadOrCreateVaultKeys(keysDir);
    expect(again.keyEncryption.kid).toBe(first.keyEncryption.kid);
    expect(again.keyEncryption.key.equals(first.keyEncryption.key)).toBe(true);
    const sealed = new IdentifierVault(first).seal(identifiers, stream);
    expect(new IdentifierVault(again).unseal(sealed, stream)).toEqual(identifiers);
    expect(JSON.parse(readFileSync(join(keysDir, 'key-encryption.key.json'), 'utf8'))).toMatchObject({ purpose: 'key-encryption', alg: 'A256GCMKW' });
  });
});
