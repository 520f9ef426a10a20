import { Body, Controller, HttpCode, Inject, Post, Req } from '@nestjs/common';
import type { KeyObject } from 'node:crypto';
import type { FastifyRequest } from 'fastify';
import { CLOCK, HUB_VERIFIER_KEY, type Clock } from '../tokens.js';
import { ProviderService } from './provider.service.js';
import type { ProvisionResponse } from '#linkage';
import { ProvisionSchemas, SIGNATURE_HEADER, checkFreshness, verifyHubSignature } from './provision-protocol.js';

/** Called by the hub only: every call is signed by the hub's provision-signing key (schemas/provision/README.md). */
@Controller('v1/provisions')
export class ProvisionsController {
  constructor(
    private readonly provider: ProviderService,
    private readonly schemas: ProvisionSchemas,
    @Inject(HUB_VERIFIER_KEY) private readonly hubKey: KeyObject,
    @Inject(CLOCK) private readonly clock: Clock,
  ) {}

  @Post()
  @HttpCode(200)
  async provide(@Req() request: FastifyRequest, @Body() body: unknown): Promise<ProvisionResponse> {
    verifyHubSignature(request.headers[SIGNATURE_HEADER], request.rawBody, this.hubKey);
    const provision = this.schemas.request(body);
    checkFreshness([provision], this.clock());
    this.provider.checkAddressee([provision]);
    return this.provider.provide(provision);
  }

  @Post('batch')
  @HttpCode(200)
  async provideBatch(@Req() request: FastifyRequest, @Body() body: unknown): Promise<{ responses: ProvisionResponse[] }> {
    verifyHubSignature(request.headers[SIGNATURE_HEADER], request.rawBody, this.hubKey);
    const batch = this.schemas.batchRequest(body);
    checkFreshness(batch.requests, this.clock());
    this.provider.checkAddressee(batch.requests);
    const responses: ProvisionResponse[] = [];
    // In order, one at a time: a serial repeated inside the batch gets the first answer.
    for (const r of batch.requests) responses.push(await this.provider.provide(r));
    return { responses };
  }
}
