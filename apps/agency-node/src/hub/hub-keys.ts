import { createHash, createPublicKey, type KeyObject } from 'node:crypto';
import { fromBase64url } from '#sealed-answer';
import { AgencyProblem } from '../http/agency-problem.js';

/**
 * How long a key the hub retired stays accepted when the hub does not say (`acceptedUntil`): the
 * freshness window of a provision request, so a request signed just before a rotation is still accepted
 * while it may be fresh.
 */
export const RETIRED_KEY_ACCEPTED_MS = 300_000;
/** At most one fetch of GET /v1/hub/keys for an unknown key per this many milliseconds (and one at a time). */
export const KEY_REFRESH_MIN_MS = 1_000;

/** One provision signing key as GET {hub}/v1/hub/keys serves it. */
export interface ServedKey {
  readonly keyId: string;
  /** The raw 32-byte Ed25519 public key, base64url. */
  readonly publicKey: string;
  readonly from?: string;
  readonly until?: string;
  readonly acceptedUntil?: string;
}

/** The hub's provision signing keys: the one that signs now and every other it serves. */
export interface ServedKeySet {
  readonly currentKeyId: string;
  readonly keys: readonly ServedKey[];
}

/** A provision signing key's id: SHA-256 of its raw 32-byte public key, first 8 bytes, hex (as the hub names it). */
export function provisionKeyId(publicKey: string): string {
  return createHash('sha256').update(Buffer.from(publicKey, 'base64url')).digest('hex').slice(0, 16);
}

/** The hub's provision-signing public key (Ed25519), from base64url raw 32 bytes. */
export function hubVerifierKey(rawBase64url: string): KeyObject {
  const raw = fromBase64url(rawBase64url);
  if (raw?.length !== 32) throw new Error('the hub provision-signing key must be 43 characters of unpadded base64url (raw 32-byte Ed25519 public key)');
  return createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: rawBase64url }, format: 'jwk' });
}

/** One key (AGENCY_HUB_PROVISION_KEY, or an older hub's answer): the key that signs now, never retired. */
export function singleKeySet(publicKey: string): ServedKeySet {
  const keyId = provisionKeyId(publicKey);
  return { currentKeyId: keyId, keys: [{ keyId, publicKey }] };
}

/**
 * Reads the answer of GET {hub}/v1/hub/keys: `provisionSigningKeys` (every key, with from, until and
 * acceptedUntil) and `provisionSigningKeyId`, or only `provisionSigningKey` from a hub that does not
 * rotate. A served key whose id is not its public key's is refused: a key id names one key.
 */
export function keySetOf(body: unknown): ServedKeySet | undefined {
  const b = body as { provisionSigningKey?: unknown; provisionSigningKeyId?: unknown; provisionSigningKeys?: unknown } | undefined;
  if (typeof b?.provisionSigningKey !== 'string') return undefined;
  if (!Array.isArray(b.provisionSigningKeys)) return singleKeySet(b.provisionSigningKey);
  const keys: ServedKey[] = [];
  for (const k of b.provisionSigningKeys as Record<string, unknown>[]) {
    if (typeof k?.['keyId'] !== 'string' || typeof k['publicKey'] !== 'string' || provisionKeyId(k['publicKey']) !== k['keyId']) return undefined;
    const time = (name: string) => (typeof k[name] === 'string' && !Number.isNaN(Date.parse(k[name])) ? { [name]: k[name] } : {});
    keys.push({ keyId: k['keyId'], publicKey: k['publicKey'], ...time('from'), ...time('until'), ...time('acceptedUntil') });
  }
  const currentKeyId = typeof b.provisionSigningKeyId === 'string' ? b.provisionSigningKeyId : provisionKeyId(b.provisionSigningKey);
  if (!keys.some((k) => k.keyId === currentKeyId && k.publicKey === b.provisionSigningKey)) return undefined;
  return { currentKeyId, keys };
}

interface HeldKey {
  readonly key: KeyObject;
  readonly publicKey: string;
  /** Past this (ms), its signatures are refused; absent: the key that signs now. */
  readonly acceptedUntilMs: number | undefined;
}

/**
 * The keys an intermediate server checks `hub-signature` with. A call names its key (`hub-signature-key`);
 * a key the hub serves verifies it until the key's acceptance ends (the hub's `acceptedUntil`, else 300 s
 * after its `until`). A key this server does not know makes it fetch the hub's key set again, at most one
 * fetch at a time and one per KEY_REFRESH_MIN_MS (callers waiting on one fetch share it): so a rotation
 * costs one fetch, and a flood of made-up key ids cannot make it fetch per request. A pinned key
 * (AGENCY_HUB_PROVISION_KEY) is never refreshed.
 */
export class HubKeys {
  #held = new Map<string, HeldKey>();
  #currentKeyId = '';
  #refreshing: Promise<void> | undefined;
  #lastRefreshMs = Number.NEGATIVE_INFINITY;

  constructor(
    served: ServedKeySet,
    private readonly fetchKeys: (() => Promise<ServedKeySet>) | undefined,
    private readonly now: () => number = Date.now,
    private readonly refreshMinMs: number = KEY_REFRESH_MIN_MS,
    private readonly sleep: (ms: number) => Promise<void> = (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
  ) {
    this.#take(served); // throws at start, not on the first provision, if a served key is unusable
  }

  /** The key id that signs now, as last served. */
  get currentKeyId(): string {
    return this.#currentKeyId;
  }

  /** The public key that signs now, as last served. */
  get currentPublicKey(): string {
    return this.#held.get(this.#currentKeyId)!.publicKey;
  }

  /** The ids of the keys held, first to newest. */
  get keyIds(): readonly string[] {
    return [...this.#held.keys()];
  }

  #take(served: ServedKeySet): void {
    const held = new Map<string, HeldKey>();
    for (const k of served.keys) {
      const until = k.acceptedUntil ?? (k.until === undefined ? undefined : new Date(Date.parse(k.until) + RETIRED_KEY_ACCEPTED_MS).toISOString());
      held.set(k.keyId, { key: hubVerifierKey(k.publicKey), publicKey: k.publicKey, acceptedUntilMs: k.keyId === served.currentKeyId || until === undefined ? undefined : Date.parse(until) });
    }
    this.#held = held;
    this.#currentKeyId = served.currentKeyId;
  }

  /**
   * The key that verifies a call naming `keyId` (none named: the key that signs now). Refuses, 401:
   * HUB_SIGNATURE_KEY_UNKNOWN (a key the hub does not serve, even after fetching its keys again),
   * HUB_SIGNATURE_KEY_RETIRED (a key whose acceptance ended).
   */
  async keyFor(keyId: string | undefined): Promise<KeyObject> {
    const id = keyId ?? this.#currentKeyId;
    let held = this.#held.get(id);
    if (held === undefined) {
      await this.#refresh();
      held = this.#held.get(id);
    }
    if (held === undefined) {
      throw new AgencyProblem(
        'HUB_SIGNATURE_KEY_UNKNOWN',
        `the call is signed by provision signing key ${JSON.stringify(id)}, which the hub does not serve (GET /v1/hub/keys: ${this.keyIds.join(', ')})${this.fetchKeys === undefined ? '; this server uses the key pinned in AGENCY_HUB_PROVISION_KEY and does not fetch others' : ''}`,
      );
    }
    if (held.acceptedUntilMs !== undefined && this.now() > held.acceptedUntilMs) {
      throw new AgencyProblem('HUB_SIGNATURE_KEY_RETIRED', `the call is signed by provision signing key ${id}, which the hub retired; its signatures were accepted until ${new Date(held.acceptedUntilMs).toISOString()}`);
    }
    return held.key;
  }

  /**
   * Fetches the key set again. A fetch running: waits for it. One ended less than refreshMinMs ago: waits
   * until refreshMinMs after it, then fetches (callers meanwhile share that fetch), so a second rotation soon
   * after the first delays its first calls by under a second instead of refusing them, and made-up key ids
   * still cause one fetch per refreshMinMs at most.
   */
  async #refresh(): Promise<void> {
    if (this.fetchKeys === undefined) return;
    if (this.#refreshing !== undefined) return this.#refreshing;
    const wait = this.refreshMinMs - (this.now() - this.#lastRefreshMs);
    this.#refreshing = (async () => {
      try {
        if (wait > 0) await this.sleep(wait);
        this.#take(await this.fetchKeys!());
      } catch {
        // The hub unreachable or its answer unusable: the keys held stay; the call is refused as unknown.
      } finally {
        this.#lastRefreshMs = this.now();
        this.#refreshing = undefined;
      }
    })();
    return this.#refreshing;
  }
}
