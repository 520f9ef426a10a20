import type { ProvisionResponse } from '#linkage';
import type { HubKeys } from '../hub/hub-keys.js';
import type { Clock } from '../tokens.js';
import { AgencyProblem } from '../http/agency-problem.js';
import type { ProviderService } from './provider.service.js';
import { checkFreshness, verifyHubSignature, type ProvisionSchemas } from './provision-protocol.js';

/**
 * The provision protocol's two calls, whatever carried them (HTTP or gRPC): the hub's signature over the
 * exact body bytes first, then the JSON Schema, freshness and addressee, then the answer. Nothing is
 * read from the body, nor recorded, before the signature verified.
 */
export class ProvisionEndpoint {
  constructor(
    private readonly provider: ProviderService,
    private readonly schemas: ProvisionSchemas,
    private readonly hubKeys: HubKeys,
    private readonly clock: Clock,
  ) {}

  /** One request. `parsed`: the body already parsed from `raw` by the transport, if it did; `keyId`: the hub-signature-key. */
  async provide(raw: Buffer | undefined, signature: string | string[] | undefined, parsed?: unknown, keyId?: string | string[]): Promise<ProvisionResponse> {
    await verifyHubSignature(signature, raw, this.hubKeys, keyId);
    const provision = this.schemas.request(parsed ?? parseJson(raw!));
    checkFreshness([provision], this.clock());
    this.provider.checkAddressee([provision]);
    return this.provider.provide(provision);
  }

  /**
   * Several requests to this provider, answered in order. Requests of distinct serials are answered at once, so
   * that their records share the store's group commits (one at a time, a batch would wait for one durable write
   * per request); a serial repeated inside the batch is answered after its first request, and gets its answer.
   */
  async provideBatch(raw: Buffer | undefined, signature: string | string[] | undefined, parsed?: unknown, keyId?: string | string[]): Promise<{ responses: ProvisionResponse[] }> {
    await verifyHubSignature(signature, raw, this.hubKeys, keyId);
    const batch = this.schemas.batchRequest(parsed ?? parseJson(raw!));
    checkFreshness(batch.requests, this.clock());
    this.provider.checkAddressee(batch.requests);
    const last = new Map<string, Promise<unknown>>();
    const answering = batch.requests.map((r) => {
      const before = last.get(r.serial);
      const answer = before === undefined ? this.provider.provide(r) : before.then(() => this.provider.provide(r), () => this.provider.provide(r));
      last.set(r.serial, answer);
      return answer;
    });
    // Every request is settled before the batch answers or fails: none is still being recorded after the reply.
    const settled = await Promise.allSettled(answering);
    const failure = settled.find((s): s is PromiseRejectedResult => s.status === 'rejected');
    if (failure !== undefined) throw failure.reason;
    return { responses: settled.map((s) => (s as PromiseFulfilledResult<ProvisionResponse>).value) };
  }
}

function parseJson(raw: Buffer): unknown {
  try {
    return JSON.parse(raw.toString('utf8'));
  } catch {
    throw new AgencyProblem('MALFORMED_JSON', 'the body is not well-formed JSON');
  }
}
