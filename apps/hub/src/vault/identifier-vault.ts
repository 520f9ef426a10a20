import { createCipheriv, createDecipheriv, createHmac, randomBytes } from 'node:crypto';
import type { SealedIdentifiers } from '#numbering';
import type { VaultKeys } from './vault-keys.js';

/** What a blind index is of: the prefix separates the domains, so equal inputs of two kinds never share a digest. */
export type DigestKind = 'individual-number' | 'resident-record-code' | 'idempotency-request' | 'idempotency-key';

/** The personal identifiers a numbering event keeps, sealed. */
export interface NumberingIdentifiers {
  readonly individualNumber: string;
  readonly residentRecordCode: string;
  /** The citizen's secret issued with the number (sealed so that an idempotent retry can answer it again). */
  readonly citizenSecret?: string;
}

/** A notice's text (お知らせ), sealed in its event. */
export interface NoticeText {
  readonly title: string;
  readonly body: string;
}

/** Envelope-encrypted identifiers as stored in an event (all fields base64url except v/alg/kid). */
export interface SealedEnvelope extends SealedIdentifiers {
  readonly v: '1';
  /** Content encryption. */
  readonly alg: 'A256GCM';
  /** How the data key is wrapped. */
  readonly wrapAlg: 'A256GCMKW';
  /** Id of the key-encryption key that wrapped the data key. */
  readonly kid: string;
  readonly wrappedKey: string;
  readonly wrapIv: string;
  readonly wrapTag: string;
  readonly iv: string;
  readonly ciphertext: string;
  readonly tag: string;
}

export class VaultError extends Error {
  constructor(
    readonly code: 'UNSEAL_FAILED' | 'UNKNOWN_KEY' | 'MALFORMED_ENVELOPE',
    message: string,
  ) {
    super(message);
    this.name = 'VaultError';
  }
}

const SEALED_FIELDS = ['v', 'alg', 'wrapAlg', 'kid', 'wrappedKey', 'wrapIv', 'wrapTag', 'iv', 'ciphertext', 'tag'] as const;

/**
 * Keeps personal identifiers out of the ledger in the clear (I4): keyed digests (blind indexes) for
 * lookups and uniqueness, envelope encryption for the identifiers themselves. The Merkle leaf covers the
 * ciphertext, so an auditor verifies the log without reading a number.
 */
export class IdentifierVault {
  #keys: VaultKeys;
  constructor(keys: VaultKeys) {
    this.#keys = keys;
  }

  private get keys(): VaultKeys {
    return this.#keys;
  }

  /** The id of the key-encryption key new values are wrapped under, and every earlier one still held for opening. */
  keyEncryptionIds(): { readonly current: string; readonly previous: readonly string[] } {
    return { current: this.#keys.keyEncryption.kid, previous: [...(this.#keys.previousKeyEncryption?.keys() ?? [])] };
  }

  /**
   * Goes on with the same blind-index key and another key-encryption key set (a rotation): new values
   * are wrapped under its newest KEK; values wrapped before open under the KEK their `kid` names.
   */
  useKeys(next: VaultKeys): void {
    if (next.blindIndex.kid !== this.#keys.blindIndex.kid || !next.blindIndex.key.equals(this.#keys.blindIndex.key)) throw new Error('the vault goes on only with the same blind-index key');
    this.#keys = next;
  }

  /** HMAC-SHA256(blind-index key, `<kind>:<value>`), hex. */
  digest(kind: DigestKind, value: string): string {
    return createHmac('sha256', this.keys.blindIndex.key).update(`${kind}:`, 'utf8').update(value, 'utf8').digest('hex');
  }

  /**
   * Encrypts the identifiers under a fresh 256-bit data key (AES-256-GCM), and wraps that key with the
   * key-encryption key (AES-256-GCM). `aad` (the stream id) is bound to both, so a sealed value moved to
   * another stream does not open.
   */
  seal(identifiers: NumberingIdentifiers, aad: string): SealedEnvelope {
    const plaintext = Buffer.from(
      JSON.stringify({
        individualNumber: identifiers.individualNumber,
        residentRecordCode: identifiers.residentRecordCode,
        ...(identifiers.citizenSecret === undefined ? {} : { citizenSecret: identifiers.citizenSecret }),
      }),
      'utf8',
    );
    return this.#seal(plaintext, aad, IDENTIFIERS);
  }

  /** Opens a sealed value (for the hub's own replies, tests and operators). Throws VaultError when it does not open. */
  unseal(sealed: SealedIdentifiers, aad: string): NumberingIdentifiers {
    const parsed = this.#open(sealed, aad, IDENTIFIERS) as Partial<NumberingIdentifiers>;
    if (typeof parsed.individualNumber !== 'string' || typeof parsed.residentRecordCode !== 'string') {
      throw new VaultError('MALFORMED_ENVELOPE', 'the sealed value opened but holds no identifiers');
    }
    return {
      individualNumber: parsed.individualNumber,
      residentRecordCode: parsed.residentRecordCode,
      ...(typeof parsed.citizenSecret === 'string' ? { citizenSecret: parsed.citizenSecret } : {}),
    };
  }

  /**
   * Seals a notice's text for its citizen the same way (I5: the hub keeps no personal data in the
   * clear). A domain of its own: a sealed notice never opens as identifiers, nor the reverse.
   */
  sealNotice(notice: NoticeText, aad: string): SealedEnvelope {
    return this.#seal(Buffer.from(JSON.stringify({ title: notice.title, body: notice.body }), 'utf8'), aad, NOTICE);
  }

  unsealNotice(sealed: SealedIdentifiers, aad: string): NoticeText {
    const parsed = this.#open(sealed, aad, NOTICE) as Partial<NoticeText>;
    if (typeof parsed.title !== 'string' || typeof parsed.body !== 'string') throw new VaultError('MALFORMED_ENVELOPE', 'the sealed value opened but holds no notice');
    return { title: parsed.title, body: parsed.body };
  }

  /**
   * Encrypts under a fresh 256-bit data key (AES-256-GCM), and wraps that key with the key-encryption
   * key (AES-256-GCM). `aad` (the stream id) and the domain are bound to both, so a sealed value moved to
   * another stream, or read as another kind of value, does not open.
   */
  #seal(plaintext: Buffer, aad: string, domain: string): SealedEnvelope {
    const kek = this.keys.keyEncryption;
    const dataKey = randomBytes(32);
    const iv = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', dataKey, iv);
    cipher.setAAD(contentAad(domain, aad));
    const ciphertext = Buffer.concat([cipher.update(plaintext), cipher.final()]);
    const tag = cipher.getAuthTag();
    plaintext.fill(0);

    const wrapIv = randomBytes(12);
    const wrapper = createCipheriv('aes-256-gcm', kek.key, wrapIv);
    wrapper.setAAD(wrapAad(domain, kek.kid, aad));
    const wrappedKey = Buffer.concat([wrapper.update(dataKey), wrapper.final()]);
    const wrapTag = wrapper.getAuthTag();
    dataKey.fill(0);

    return {
      v: '1',
      alg: 'A256GCM',
      wrapAlg: 'A256GCMKW',
      kid: kek.kid,
      wrappedKey: wrappedKey.toString('base64url'),
      wrapIv: wrapIv.toString('base64url'),
      wrapTag: wrapTag.toString('base64url'),
      iv: iv.toString('base64url'),
      ciphertext: ciphertext.toString('base64url'),
      tag: tag.toString('base64url'),
    };
  }

  /** The parsed JSON a sealed value holds. Throws VaultError when it does not open. */
  #open(sealed: SealedIdentifiers, aad: string, domain: string): unknown {
    const envelope = asEnvelope(sealed);
    const current = this.keys.keyEncryption;
    const key = envelope.kid === current.kid ? current.key : this.keys.previousKeyEncryption?.get(envelope.kid);
    if (key === undefined) throw new VaultError('UNKNOWN_KEY', `sealed with key ${envelope.kid}, which this vault does not hold`);
    const kek = { kid: envelope.kid, key };
    let dataKey: Buffer | undefined;
    try {
      const unwrapper = createDecipheriv('aes-256-gcm', kek.key, b64(envelope.wrapIv));
      unwrapper.setAAD(wrapAad(domain, envelope.kid, aad));
      unwrapper.setAuthTag(b64(envelope.wrapTag));
      dataKey = Buffer.concat([unwrapper.update(b64(envelope.wrappedKey)), unwrapper.final()]);
      const decipher = createDecipheriv('aes-256-gcm', dataKey, b64(envelope.iv));
      decipher.setAAD(contentAad(domain, aad));
      decipher.setAuthTag(b64(envelope.tag));
      const plaintext = Buffer.concat([decipher.update(b64(envelope.ciphertext)), decipher.final()]);
      const parsed: unknown = JSON.parse(plaintext.toString('utf8'));
      plaintext.fill(0);
      return parsed;
    } catch {
      // Never say which part failed: a padding-oracle style hint helps nobody but an attacker.
      throw new VaultError('UNSEAL_FAILED', 'the sealed value does not open: it was altered, or belongs to another stream or key');
    } finally {
      dataKey?.fill(0);
    }
  }
}

/** The domains of sealed values: the numbering identifiers' is the original one (files written before stay readable). */
const IDENTIFIERS = 'linkage-ledger/sealed-identifiers/v1';
const NOTICE = 'linkage-ledger/sealed-notice/v1';

function contentAad(domain: string, aad: string): Buffer {
  return Buffer.from(`${domain}|data|${aad}`, 'utf8');
}

function wrapAad(domain: string, kid: string, aad: string): Buffer {
  return Buffer.from(`${domain}|wrap|${kid}|${aad}`, 'utf8');
}

function b64(s: string): Buffer {
  return Buffer.from(s, 'base64url');
}

function asEnvelope(sealed: SealedIdentifiers): SealedEnvelope {
  for (const field of SEALED_FIELDS) {
    if (typeof sealed[field] !== 'string') throw new VaultError('MALFORMED_ENVELOPE', `sealed value has no ${field}`);
  }
  if (sealed['v'] !== '1' || sealed['alg'] !== 'A256GCM' || sealed['wrapAlg'] !== 'A256GCMKW') {
    throw new VaultError('MALFORMED_ENVELOPE', 'sealed value has an unknown version or algorithm');
  }
  return sealed as SealedEnvelope;
}
