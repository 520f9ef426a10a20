import { Body, Controller, HttpCode, HttpStatus, Post, Res } from '@nestjs/common';
import { CommandBus } from '@nestjs/cqrs';
import { ApiCreatedResponse, ApiOperation, ApiTags } from '@nestjs/swagger';
import type { FastifyReply } from 'fastify';
import { ApiCommandHeaders, markReplayed } from '../http/api-headers.js';
import { ApiProblems, BODY_PROBLEMS, COMMON_PROBLEMS } from '../http/problem.dto.js';
import { Meta, type RequestMeta } from '../http/request-meta.js';
import { ChangeIndividualNumberCommand } from './commands/change-individual-number.command.js';
import { IssueIndividualNumberCommand } from './commands/issue-individual-number.command.js';
import {
  ChangeIndividualNumberRequest,
  ChangedIndividualNumberResponse,
  IssueIndividualNumberRequest,
  IssuedIndividualNumberResponse,
  toChangedIndividualNumberResponse,
  toIssuedIndividualNumberResponse,
} from './dto/individual-number.dto.js';

/** Until agency authentication arrives, the municipality named in the body is the actor. */
function municipalityActor(code: string): string {
  return `municipality:${code}`;
}

@ApiTags('individual numbers')
@Controller('v1/individual-numbers')
export class IndividualNumbersController {
  constructor(private readonly commandBus: CommandBus) {}

  @Post()
  @HttpCode(HttpStatus.CREATED)
  @ApiOperation({ summary: 'Issue an individual number (付番) to a resident.', description: 'The number is drawn at random and is unique forever; the ledger keeps it only as a keyed digest and a sealed (encrypted) value.' })
  @ApiCommandHeaders()
  @ApiCreatedResponse({ type: IssuedIndividualNumberResponse })
  @ApiProblems(...BODY_PROBLEMS, 'UNKNOWN_MUNICIPALITY', 'RESIDENT_ALREADY_NUMBERED', 'IDEMPOTENCY_KEY_REUSED', 'CONCURRENT_MODIFICATION', ...COMMON_PROBLEMS)
  async issue(
    @Body() body: IssueIndividualNumberRequest,
    @Meta() meta: RequestMeta,
    @Res({ passthrough: true }) reply: FastifyReply,
  ): Promise<IssuedIndividualNumberResponse> {
    const caller = { actor: municipalityActor(body.municipalityCode), ...meta };
    const outcome = await this.commandBus.execute(new IssueIndividualNumberCommand(body.residentRecordCode, body.municipalityCode, caller));
    markReplayed(reply, outcome.replayed);
    return toIssuedIndividualNumberResponse(outcome.value);
  }

  @Post('changes')
  @HttpCode(HttpStatus.CREATED)
  @ApiOperation({ summary: 'Change a resident\'s individual number (番号変更).', description: 'The previous number is revoked and never issued again.' })
  @ApiCommandHeaders()
  @ApiCreatedResponse({ type: ChangedIndividualNumberResponse })
  @ApiProblems(...BODY_PROBLEMS, 'UNKNOWN_MUNICIPALITY', 'RESIDENT_NOT_NUMBERED', 'IDEMPOTENCY_KEY_REUSED', 'CONCURRENT_MODIFICATION', ...COMMON_PROBLEMS)
  async change(
    @Body() body: ChangeIndividualNumberRequest,
    @Meta() meta: RequestMeta,
    @Res({ passthrough: true }) reply: FastifyReply,
  ): Promise<ChangedIndividualNumberResponse> {
    const caller = { actor: municipalityActor(body.municipalityCode), ...meta };
    const outcome = await this.commandBus.execute(
      new ChangeIndividualNumberCommand(body.residentRecordCode, body.municipalityCode, body.reason, caller),
    );
    markReplayed(reply, outcome.replayed);
    return toChangedIndividualNumberResponse(outcome.value);
  }
}
