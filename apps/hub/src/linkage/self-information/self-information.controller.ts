import { Body, Controller, Get, HttpCode, HttpStatus, Post, Req } from '@nestjs/common';
import { ApiBearerAuth, ApiHeader, ApiOkResponse, ApiOperation, ApiTags } from '@nestjs/swagger';
import type { FastifyRequest } from 'fastify';
import { ApiProblems, BODY_PROBLEMS, COMMON_PROBLEMS } from '../../http/problem.dto.js';
import { Meta, type RequestMeta } from '../../http/request-meta.js';
import { RecordsRefusals } from '../../refusals/refusal.guard.js';
import { Authenticator } from '../authenticator.js';
import { SelfInformationOptionsResponse, SelfInformationRequestBody, SelfInformationResponse } from './self-information.dto.js';
import { SelfInformationService } from './self-information.service.js';

@ApiTags('citizens')
@Controller('v1/citizens/me')
export class SelfInformationController {
  constructor(
    private readonly auth: Authenticator,
    private readonly service: SelfInformationService,
  ) {}

  @Get('self-information/options')
  @ApiBearerAuth()
  @ApiOperation({
    summary: 'What the calling citizen may ask about themself (自己情報表示): agencies and items.',
    description: 'The active agencies that hold a code for the person and whose kind discloses items to the person themself under the self-disclosure table in force, each with those items.',
  })
  @ApiOkResponse({ type: SelfInformationOptionsResponse })
  @ApiProblems('UNAUTHENTICATED', ...COMMON_PROBLEMS)
  async options(@Req() request: FastifyRequest): Promise<SelfInformationOptionsResponse> {
    return this.service.options(await this.auth.citizen(request));
  }

  @Post('self-information-requests')
  @RecordsRefusals('RequestSelfInformation')
  @HttpCode(HttpStatus.OK)
  @ApiBearerAuth()
  @ApiHeader({ name: 'X-Correlation-Id', required: false, description: '1-200 visible ASCII characters; echoed in the response, never stored.' })
  @ApiOperation({
    summary: 'Ask an agency what it holds about the calling citizen for one item (自己情報表示).',
    description:
      'The request gets its own serial and runs the query lifecycle: judged against the self-disclosure table in force, the person translated to the agency\'s own code inside the hub, the agency\'s intermediate server asked to seal its answer to answerPublicKey (HPKE, the serial as AAD), the sealed bytes relayed: only the browser holding the private key opens them; the hub keeps their digest and size. Refusals and failures end the serial in their event and are answered with the serial: 403 SELF_DISCLOSURE_NOT_ALLOWED (with allowedItems), 404 NO_AGENCY_CODE, 502 PROVISION_REFUSED (with the provider\'s reason), 502/504 as queries.',
  })
  @ApiOkResponse({ type: SelfInformationResponse })
  @ApiProblems(
    ...BODY_PROBLEMS,
    'UNAUTHENTICATED',
    'UNKNOWN_PROVIDER',
    'PROVIDER_REVOKED',
    'SELF_DISCLOSURE_TABLE_NOT_IN_FORCE',
    'SELF_DISCLOSURE_NOT_ALLOWED',
    'NO_AGENCY_CODE',
    'PROVISION_REFUSED',
    'PROVIDER_UNREACHABLE',
    'PROVIDER_TIMEOUT',
    'PROVIDER_PROTOCOL_ERROR',
    'ANSWER_TOO_LARGE',
    ...COMMON_PROBLEMS,
  )
  async request(@Req() request: FastifyRequest, @Body() body: SelfInformationRequestBody, @Meta() meta: RequestMeta): Promise<SelfInformationResponse> {
    return this.service.request(await this.auth.citizen(request), body, meta);
  }
}
