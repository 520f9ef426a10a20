import { createHash, generateKeyPairSync, randomBytes, sign, type KeyObject } from 'node:crypto';

/** The smallest CBOR encoder a 'none' attestation needs: unsigned/negative integers, byte and text strings, maps. */
type Cbor = number | string | Uint8Array | Map<Cbor, Cbor> | CborRecord;
interface CborRecord {
  readonly [key: string]: Cbor;
}

function head(major: number, n: number): Buffer {
  if (n < 24) return Buffer.from([(major << 5) | n]);
  if (n < 256) return Buffer.from([(major << 5) | 24, n]);
  if (n < 65_536) return Buffer.from([(major << 5) | 25, n >> 8, n & 0xff]);
  const b = Buffer.alloc(5);
  b[0] = (major << 5) | 26;
  b.writeUInt32BE(n, 1);
  return b;
}

export function cbor(value: Cbor): Buffer {
  if (typeof value === 'number') return value >= 0 ? head(0, value) : head(1, -1 - value);
  if (typeof value === 'string') {
    const bytes = Buffer.from(value, 'utf8');
    return Buffer.concat([head(3, bytes.length), bytes]);
  }
  if (value instanceof Uint8Array) return Buffer.concat([head(2, value.length), value]);
  const entries: [Cbor, Cbor][] = value instanceof Map ? [...value.entries()] : Object.entries(value);
  return Buffer.concat([head(5, entries.length), ...entries.flatMap(([k, v]) => [cbor(k), cbor(v)])]);
}

const sha256 = (b: Buffer | string): Buffer => createHash('sha256').update(b).digest();

export interface CeremonyOptions {
  /** The origin the browser would put in clientDataJSON. */
  readonly origin?: string;
  /** The relying party id whose hash goes in authenticatorData. */
  readonly rpId?: string;
  /** Signs with another key than the one registered. */
  readonly wrongKey?: boolean;
  /** Overrides the challenge the authenticator signs. */
  readonly challenge?: string;
  /** Overrides the credential id presented. */
  readonly credentialId?: string;
  readonly userHandle?: string;
}

/**
 * A software passkey (platform authenticator) for tests: an ES256 P-256 key from node:crypto, a random
 * credential id, a signature counter, and the WebAuthn JSON a browser would hand over
 * (@simplewebauthn/browser's RegistrationResponseJSON / AuthenticationResponseJSON).
 */
export class SoftAuthenticator {
  readonly credentialId = randomBytes(16).toString('base64url');
  readonly #privateKey: KeyObject;
  readonly #publicJwk: { x: string; y: string };
  #counter = 0;
  /** The WebAuthn user handle given at registration (a discoverable credential keeps it). */
  userHandle: string | undefined;

  constructor(
    readonly origin = 'http://localhost:3300',
    readonly rpId = 'localhost',
  ) {
    const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    this.#privateKey = privateKey;
    const jwk = publicKey.export({ format: 'jwk' }) as { x: string; y: string };
    this.#publicJwk = { x: jwk.x, y: jwk.y };
  }

  /** navigator.credentials.create() with these options (PublicKeyCredentialCreationOptionsJSON). */
  register(options: { challenge: string; user: { id: string }; rp: { id?: string } }, o: CeremonyOptions = {}): Record<string, unknown> {
    this.userHandle = options.user.id;
    const clientDataJSON = Buffer.from(JSON.stringify({ type: 'webauthn.create', challenge: o.challenge ?? options.challenge, origin: o.origin ?? this.origin, crossOrigin: false }), 'utf8');
    const coseKey = new Map<Cbor, Cbor>([
      [1, 2],
      [3, -7],
      [-1, 1],
      [-2, Buffer.from(this.#publicJwk.x, 'base64url')],
      [-3, Buffer.from(this.#publicJwk.y, 'base64url')],
    ]);
    const credentialId = Buffer.from(this.credentialId, 'base64url');
    const counter = Buffer.alloc(4);
    counter.writeUInt32BE(this.#counter);
    const idLength = Buffer.alloc(2);
    idLength.writeUInt16BE(credentialId.length);
    const authData = Buffer.concat([sha256(o.rpId ?? this.rpId), Buffer.from([0x45]), counter, Buffer.alloc(16), idLength, credentialId, cbor(coseKey)]);
    const attestationObject = cbor({ fmt: 'none', attStmt: {}, authData });
    return {
      id: this.credentialId,
      rawId: this.credentialId,
      type: 'public-key',
      response: { clientDataJSON: clientDataJSON.toString('base64url'), attestationObject: attestationObject.toString('base64url'), transports: ['internal'] },
      clientExtensionResults: {},
      authenticatorAttachment: 'platform',
    };
  }

  /** navigator.credentials.get() with these options (PublicKeyCredentialRequestOptionsJSON): a discoverable-credential assertion. */
  assert(options: { challenge: string }, o: CeremonyOptions = {}): Record<string, unknown> {
    this.#counter += 1;
    const clientDataJSON = Buffer.from(JSON.stringify({ type: 'webauthn.get', challenge: o.challenge ?? options.challenge, origin: o.origin ?? this.origin, crossOrigin: false }), 'utf8');
    const counter = Buffer.alloc(4);
    counter.writeUInt32BE(this.#counter);
    const authenticatorData = Buffer.concat([sha256(o.rpId ?? this.rpId), Buffer.from([0x05]), counter]);
    const key = o.wrongKey ? generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey : this.#privateKey;
    const signature = sign('sha256', Buffer.concat([authenticatorData, sha256(clientDataJSON)]), key);
    const id = o.credentialId ?? this.credentialId;
    const userHandle = o.userHandle ?? this.userHandle;
    return {
      id,
      rawId: id,
      type: 'public-key',
      response: {
        clientDataJSON: clientDataJSON.toString('base64url'),
        authenticatorData: authenticatorData.toString('base64url'),
        signature: signature.toString('base64url'),
        ...(userHandle === undefined ? {} : { userHandle }),
      },
      clientExtensionResults: {},
      authenticatorAttachment: 'platform',
    };
  }
}
