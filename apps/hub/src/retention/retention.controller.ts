import { Body, Controller, HttpCode, HttpStatus, Post, Req } from '@nestjs/common';
import { ApiBearerAuth, ApiCreatedResponse, ApiOperation, ApiProperty, ApiPropertyOptional, ApiTags } from '@nestjs/swagger';
import type { FastifyRequest } from 'fastify';
import { DISPLAY_TEXT } from '#linkage';
import { IsMyNumber } from '../http/identifier.validators.js';
import { ApiProblems, BODY_PROBLEMS, COMMON_PROBLEMS } from '../http/problem.dto.js';
import { Meta, type RequestMeta } from '../http/request-meta.js';
import { IsDisplayText } from '../http/text.validators.js';
import { Authenticator } from '../linkage/authenticator.js';
import { RecordsRefusals } from '../refusals/refusal.guard.js';
import { Shredding } from './shredding.service.js';

export class RetentionSweepRequest {
  @ApiProperty({ example: 'annual retention sweep (情報提供等記録 7 years)', description: 'The ground or the operator\'s reference; no personal data. Trimmed, 1–200 characters.' })
  @IsDisplayText(DISPLAY_TEXT)
  reason!: string;
}

export class ErasureRequest {
  @ApiProperty({ description: 'The person\'s 個人番号: their key is destroyed, so every sealed field about them no longer opens. Never stored.', example: '123456789018' })
  @IsMyNumber()
  individualNumber!: string;

  @ApiProperty({ example: 'erasure ordered under the applicable law, ref. 2026-0042', description: 'The legal ground or the operator\'s reference; no personal data. Trimmed, 1–200 characters.' })
  @IsDisplayText(DISPLAY_TEXT)
  reason!: string;
}

export class ShreddedResponse {
  @ApiProperty({ description: '処理通番 of the KeysShredded event.' }) serial!: string;
  @ApiProperty({ enum: ['retention', 'erasure'] }) scope!: string;
  @ApiPropertyOptional({ description: 'Retention: every year up to this one (Japan time) lost its period key.' }) throughEpoch?: number;
  @ApiPropertyOptional({ type: [Number], description: 'Retention: the years whose keys this sweep shredded.' }) epochs?: number[];
  @ApiProperty({ format: 'date-time' }) shreddedAt!: string;
}

/** The operator's crypto-shredding commands (I10): each one an event, then carried out on the key ring. */
@ApiTags('retention')
@Controller('v1')
export class RetentionController {
  constructor(
    private readonly auth: Authenticator,
    private readonly shredding: Shredding,
  ) {}

  @Post('retention-sweeps')
  @RecordsRefusals('SweepRetention')
  @HttpCode(HttpStatus.CREATED)
  @ApiBearerAuth()
  @ApiOperation({ summary: 'Shred the period keys of every year past its seven years of retention (operator).', description: 'Provision records and notices of those years no longer open; the log, its tree and every checkpoint still verify.' })
  @ApiCreatedResponse({ type: ShreddedResponse })
  @ApiProblems(...BODY_PROBLEMS, 'UNAUTHENTICATED', 'FORBIDDEN', ...COMMON_PROBLEMS)
  async sweep(@Req() request: FastifyRequest, @Body() body: RetentionSweepRequest, @Meta() meta: RequestMeta): Promise<ShreddedResponse> {
    this.auth.operator(request);
    return { ...(await this.shredding.sweep(body.reason, { actor: 'operator:hub', ...meta })) } as ShreddedResponse;
  }

  @Post('erasures')
  @RecordsRefusals('ErasePerson')
  @HttpCode(HttpStatus.CREATED)
  @ApiBearerAuth()
  @ApiOperation({ summary: 'Shred one person\'s key where the law requires erasure (operator).', description: 'Every sealed field about the person (numbers, codes, records, notices) no longer opens, and the hub forgets them in its projections; everybody else\'s fields and every proof still verify.' })
  @ApiCreatedResponse({ type: ShreddedResponse })
  @ApiProblems(...BODY_PROBLEMS, 'UNAUTHENTICATED', 'FORBIDDEN', 'CHECK_DIGIT_MISMATCH', 'UNKNOWN_INDIVIDUAL_NUMBER', ...COMMON_PROBLEMS)
  async erase(@Req() request: FastifyRequest, @Body() body: ErasureRequest, @Meta() meta: RequestMeta): Promise<ShreddedResponse> {
    this.auth.operator(request);
    return { ...(await this.shredding.erase(body.individualNumber, body.reason, { actor: 'operator:hub', ...meta })) } as ShreddedResponse;
  }
}
