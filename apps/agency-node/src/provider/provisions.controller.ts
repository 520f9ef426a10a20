import { Body, Controller, HttpCode, Post, Req } from '@nestjs/common';
import type { FastifyRequest } from 'fastify';
import type { ProvisionResponse } from '#linkage';
import { ProvisionEndpoint } from './provision-endpoint.js';
import { SIGNATURE_HEADER, SIGNATURE_KEY_HEADER } from './provision-protocol.js';

/** Called by the hub only: every call is signed by the hub's provision-signing key (schemas/provision/README.md). */
@Controller('v1/provisions')
export class ProvisionsController {
  constructor(private readonly endpoint: ProvisionEndpoint) {}

  @Post()
  @HttpCode(200)
  async provide(@Req() request: FastifyRequest, @Body() body: unknown): Promise<ProvisionResponse> {
    return this.endpoint.provide(request.rawBody, request.headers[SIGNATURE_HEADER], body, request.headers[SIGNATURE_KEY_HEADER]);
  }

  @Post('batch')
  @HttpCode(200)
  async provideBatch(@Req() request: FastifyRequest, @Body() body: unknown): Promise<{ responses: ProvisionResponse[] }> {
    return this.endpoint.provideBatch(request.rawBody, request.headers[SIGNATURE_HEADER], body, request.headers[SIGNATURE_KEY_HEADER]);
  }
}
