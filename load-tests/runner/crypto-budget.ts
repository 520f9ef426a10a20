/**
 * The CPU budget of the throughput bar, and how much of it a linkage's cryptography takes before anything else.
 *
 * The bar asks for 0.4 × the relay baseline's maximum. On C cores that rate leaves each linkage at most
 * C × 1000 / (0.4 × baseline) ms of CPU, in every process together (hub, intermediate server, load generator).
 * A linkage does at least what the relay does (two hops, the generator's request) and, on top, the
 * cryptography its guarantees require, which no implementation can skip:
 *   - the hub seals the personal fields of its events (I10: QueryAccepted, ProvisionRequested, ProvisionAnswered),
 *     signs the provision request (Ed25519) and digests the answer it relays (I5);
 *   - the intermediate server checks that signature before it trusts the request and seals the answer to the
 *     requester's key (HPKE: a fresh X25519 key pair and one Diffie-Hellman per answer).
 * `measureLinkageCrypto` times these with the project's own functions, in this process, one after another: the
 * CPU they cost here, not a wall time. The floor (relay + cryptography, with perfect use of every core and no
 * store, event or projection at all) then bounds the ratio any implementation of these guarantees can reach.
 */
import { createHash, createPublicKey, randomBytes, randomUUID, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { compileAuthorizationPolicy, decideQuery, evolveQuery, initialQueryState, parseAuthorizationTable, PROVISION_PROTOCOL, queryStreamId, type AgencyCode, type AgencyId, type QueryEvent, type Sha256Hex, type SubjectId } from '#linkage';
import { generateAnswerKeyPair } from '#sealed-answer';
import { inMemorySealer } from '#sealing';
import { sealProvisionAnswer } from '../../apps/agency-node/src/provider/answer-sealer.js';
import { verifyHubSignature } from '../../apps/agency-node/src/provider/provision-protocol.js';
import type { HubKeys } from '../../apps/agency-node/src/hub/hub-keys.js';
import { ProvisionSigner } from '../../apps/hub/src/linkage/hub-secrets.js';
import { REPO_ROOT } from './processes.js';
import { ITEMS, MURORAN_CITY, PENSION, PROCEDURE } from './setup.js';

/** CPU milliseconds per linkage of each piece of cryptography, and per process. */
export interface LinkageCrypto {
  readonly hub: { readonly seal: number; readonly sign: number; readonly digest: number; readonly total: number };
  readonly node: { readonly verify: number; readonly sealAnswer: number; readonly total: number };
  readonly total: number;
}

/** The bar's budget and the floor of a linkage, in CPU ms per linkage over all processes. */
export interface CryptoBudget {
  readonly cores: number;
  /** CPU a linkage may cost at 0.4 × the baseline's maximum on these cores. */
  readonly budgetMs: number;
  /** The baseline's own CPU per request (relay, provider and generator) in its max phase. */
  readonly relayMs: number;
  readonly crypto: LinkageCrypto;
  /** relayMs + crypto.total: what a linkage costs at least. */
  readonly floorMs: number;
  /** The highest ratio against the baseline that a linkage of floorMs reaches with every core busy. */
  readonly floorRatio: number;
}

const BAR = 0.4;

/** CPU microseconds per call of `work`, over `n` calls after a warm-up of n / 5. */
async function cpuPerCall(n: number, work: (i: number) => unknown): Promise<number> {
  for (let i = 0; i < Math.ceil(n / 5); i++) await work(i);
  const start = process.cpuUsage();
  for (let i = 0; i < n; i++) await work(i);
  const used = process.cpuUsage(start);
  return (used.user + used.system) / n;
}

/** A linkage's events and provision request, decided as the hub decides them. */
interface Linkage {
  readonly streamId: string;
  /** QueryAccepted + ProvisionRequested, then ProvisionAnswered + QueryCompleted. */
  readonly events: readonly QueryEvent[];
  /** The provision request's body as the hub sends it (the bytes it signs). */
  readonly provision: Buffer;
}

/** The answer an intermediate server seals: a local-tax record of the size the load test's answers have. */
const ANSWER = Buffer.from(JSON.stringify({ items: { 'local-tax': { fiscalYear: 2026, taxableIncome: 3_120_000, municipalTax: 187_200, prefecturalTax: 124_800, dependents: 1, notes: 'load test record' } } }));

/**
 * The hub's share of a linkage's cryptography, with the hub's own functions: sealing its events (EventSealer with
 * a key ring in memory, `people` people as the load test asks about), signing the provision request
 * (ProvisionSigner) and digesting the answer it relays. The events come from the query decider; deciding them is
 * not counted.
 */
export class HubCryptoWork {
  readonly signer: ProvisionSigner;
  readonly answerPublicKey: string;
  readonly #linkages: readonly Linkage[];
  readonly #sealer = inMemorySealer();

  private constructor(signer: ProvisionSigner, answerPublicKey: string, linkages: readonly Linkage[]) {
    this.signer = signer;
    this.answerPublicKey = answerPublicKey;
    this.#linkages = linkages;
  }

  /** `linkages` distinct linkages about `people` people, signed with the Ed25519 key of `seed`. */
  static async create(options: { readonly people: number; readonly linkages?: number; readonly seed?: Uint8Array }): Promise<HubCryptoWork> {
    const table = parseAuthorizationTable(JSON.parse(readFileSync(join(REPO_ROOT, 'schemas/authorization/authorization-table.v1.json'), 'utf8')) as unknown);
    const policy = compileAuthorizationPolicy(table);
    const digest = (s: string): Sha256Hex => createHash('sha256').update(s).digest('hex') as Sha256Hex;
    const requester = { agencyId: PENSION as AgencyId, kind: 'pension-service' as const, status: 'active' as const, credentialDigest: digest('requester') };
    const provider = { agencyId: MURORAN_CITY as AgencyId, kind: 'municipality' as const, status: 'active' as const, credentialDigest: digest('provider') };
    const subjects = Array.from({ length: options.people }, () => randomUUID() as SubjectId);
    const answerKey = await generateAnswerKeyPair();
    const code = (): AgencyCode => randomBytes(16).toString('base64url').slice(0, 22) as AgencyCode;
    const linkage = (i: number): Linkage => {
      const queryId = randomUUID();
      const at = new Date().toISOString();
      const submitted = decideQuery(
        {
          type: 'SubmitQuery',
          data: {
            queryId,
            requesterAgencyId: PENSION as AgencyId,
            requester,
            presentedCredentialDigest: requester.credentialDigest,
            providerAgencyId: MURORAN_CITY as AgencyId,
            provider,
            procedureCode: PROCEDURE,
            itemCodes: [...ITEMS],
            requesterCode: code(),
            policy,
            translation: { status: 'translated', subjectId: subjects[i % subjects.length]!, providerCode: code() },
            requesterPublicKey: answerKey.publicKey,
            submittedAt: at,
          },
        },
        initialQueryState(),
      );
      if (submitted[0]?.type !== 'QueryAccepted' || submitted[1]?.type !== 'ProvisionRequested') throw new Error(`the crypto budget's query was not accepted: ${submitted.map((e) => e.type).join(', ')}`);
      const requested = submitted[1].data;
      const provision = Buffer.from(
        JSON.stringify({ protocol: PROVISION_PROTOCOL, serial: String(20261206000000000000n + BigInt(i)), queryId, requesterAgencyId: PENSION, requesterKind: 'pension-service', providerAgencyId: MURORAN_CITY, code: requested.providerCode, procedureCode: PROCEDURE, itemCodes: ITEMS, answerPublicKey: answerKey.publicKey, requestedAt: requested.requestedAt }),
      );
      const state = submitted.reduce((s, e) => evolveQuery(s, e), initialQueryState());
      const answered = decideQuery({ type: 'RecordProvisionAnswer', data: { queryId, providerAgencyId: MURORAN_CITY as AgencyId, answerDigest: digest(queryId), answerSize: 330, encrypted: true, answeredAt: at } }, state);
      return { streamId: queryStreamId(queryId), events: [...submitted, ...answered], provision };
    };
    const linkages = Array.from({ length: options.linkages ?? 4_096 }, (_, i) => linkage(i));
    return new HubCryptoWork(new ProvisionSigner(options.seed ?? randomBytes(32)), answerKey.publicKey, linkages);
  }

  /** Linkage i's provision request body (the pool of linkages is reused round-robin). */
  provision(i: number): Buffer {
    return this.#linkages[i % this.#linkages.length]!.provision;
  }

  /** Seals linkage i's events as the hub stores them (I10). */
  seal(i: number): void {
    const l = this.#linkages[i % this.#linkages.length]!;
    for (const e of l.events) this.#sealer.seal(l.streamId, e);
  }

  /** The `hub-signature` header value over `body` and the id of the key that made it. */
  sign(body: Buffer): { readonly signature: string; readonly keyId: string } {
    return this.signer.sign(body);
  }

  /** The answer's digest the hub records (I5). */
  digest(answer: Uint8Array): string {
    return createHash('sha256').update(answer).digest('hex');
  }
}

/**
 * The intermediate server's share, with its own functions: checking the hub's signature (verifyHubSignature,
 * the public key of `hubPublicKey`) and sealing an answer to the requester's key (sealProvisionAnswer).
 */
export class NodeCryptoWork {
  readonly #keys: HubKeys;

  constructor(hubPublicKey: string) {
    const verifier: KeyObject = createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: hubPublicKey }, format: 'jwk' });
    this.#keys = { keyFor: () => Promise.resolve(verifier) } as unknown as HubKeys;
  }

  /** Throws HUB_SIGNATURE_INVALID unless `signature` is the hub's over `body`. */
  verify(signature: string, body: Buffer, keyId: string): Promise<void> {
    return verifyHubSignature(signature, body, this.#keys, keyId);
  }

  /** A local-tax answer sealed to `answerPublicKey` under `serial` (HPKE: enc ‖ ciphertext). */
  sealAnswer(answerPublicKey: string, serial: string): Promise<Uint8Array> {
    return sealProvisionAnswer(ANSWER, answerPublicKey, serial);
  }
}

/**
 * Times a linkage's cryptography (`n` linkages of `people` people, as the load test asks about them) with the
 * functions the hub and the intermediate server run.
 */
export async function measureLinkageCrypto(n = 2_000, people = 500): Promise<LinkageCrypto> {
  const hubWork = await HubCryptoWork.create({ people, linkages: Math.min(n, 4_096) });
  const nodeWork = new NodeCryptoWork(hubWork.signer.publicKey);
  const signatures = Array.from({ length: Math.min(n, 4_096) }, (_, i) => hubWork.sign(hubWork.provision(i)));
  const signature = (i: number) => signatures[i % signatures.length]!;
  const sealedAnswer = Buffer.alloc(32 + ANSWER.length + 16);

  const seal = await cpuPerCall(n, (i) => hubWork.seal(i));
  const sign = await cpuPerCall(n, (i) => hubWork.sign(hubWork.provision(i)));
  const answerDigest = await cpuPerCall(n, () => hubWork.digest(sealedAnswer));
  const verify = await cpuPerCall(n, (i) => nodeWork.verify(signature(i).signature, hubWork.provision(i), signature(i).keyId));
  const sealAnswer = await cpuPerCall(n, (i) => nodeWork.sealAnswer(hubWork.answerPublicKey, String(20261206000000000000n + BigInt(i))));

  const ms = (us: number): number => Number((us / 1000).toFixed(4));
  const hub = { seal: ms(seal), sign: ms(sign), digest: ms(answerDigest), total: ms(seal + sign + answerDigest) };
  const node = { verify: ms(verify), sealAnswer: ms(sealAnswer), total: ms(verify + sealAnswer) };
  return { hub, node, total: ms(seal + sign + answerDigest + verify + sealAnswer) };
}

/** The bar's budget on `cores` cores against a baseline of `baselineMaxPerSecond` whose requests cost `relayMs` of CPU each. */
export function cryptoBudget(cores: number, baselineMaxPerSecond: number, relayMs: number, crypto: LinkageCrypto): CryptoBudget {
  const budgetMs = (cores * 1000) / (BAR * baselineMaxPerSecond);
  const floorMs = relayMs + crypto.total;
  const floorRatio = (cores * 1000) / floorMs / baselineMaxPerSecond;
  const r = (v: number, d = 3): number => Number(v.toFixed(d));
  return { cores, budgetMs: r(budgetMs), relayMs: r(relayMs), crypto, floorMs: r(floorMs), floorRatio: r(floorRatio) };
}

/** One line for the report. */
export function describeBudget(b: CryptoBudget, baselineMaxPerSecond: number): string {
  const f = (v: number): string => v.toFixed(3);
  const c = b.crypto;
  const verdict =
    b.floorMs > b.budgetMs
      ? `already over the budget before any store, event or projection: on this machine the bar is out of reach of any implementation of these guarantees whose two hops cost what the relay's do (floor ratio ${b.floorRatio})`
      : `${f(b.budgetMs - b.floorMs)} ms left for everything else (floor ratio ${b.floorRatio})`;
  return (
    `CPU budget of the bar: at ${BAR} × ${baselineMaxPerSecond}/s on ${b.cores} cores a linkage may cost ${f(b.budgetMs)} ms of CPU in all processes together; ` +
    `the relay's two hops and the generator cost ${f(b.relayMs)} ms (baseline, max phase), the linkage's cryptography ${f(c.total)} ms ` +
    `(hub: seals ${f(c.hub.seal)}, signature ${f(c.hub.sign)}, answer digest ${f(c.hub.digest)}; intermediate server: signature check ${f(c.node.verify)}, sealed answer ${f(c.node.sealAnswer)}): ` +
    `${f(b.floorMs)} ms, ${verdict}`
  );
}
