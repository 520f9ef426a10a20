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

  /** Several requests to this provider, answered in order. */
  async provideBatch(raw: Buffer | undefined, signature: string | string[] | undefined, parsed?: unknown, keyId?: string | string[]): Promise<{ responses: ProvisionResponse[] }> {
    await verifyHubSignature(signature, raw, this.hubKeys, keyId);
    const batch = this.schemas.batchRequest(parsed ?? parseJson(raw!));
    checkFreshness(batch.requests, this.clock());
    this.provider.checkAddressee(batch.requests);
    const responses: ProvisionResponse[] = [];
    // In order, one at a time: a serial repeated inside the batch gets the first answer.
    for (const r of batch.requests) responses.push(await this.provider.provide(r));
    return { responses };
  }
}

function parseJson(raw: Buffer): unknown {
  try {
    return JSON.parse(raw.toString('utf8'));
  } catch {
    throw new AgencyProblem('MALFORMED_JSON', 'the body is not well-formed JSON');
  }
}
